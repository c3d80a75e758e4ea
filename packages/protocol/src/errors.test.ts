import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_ERRORS, ERRORS, httpStatusErrorCode, isClientErrorCode, isErrorBody, isErrorCode } from './errors.js';

const CLIENT_HEADING = '## Errors the client SDK raises';
const whole = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const [doc, clientDoc = ''] = whole.split(CLIENT_HEADING) as [string, string?];
const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (.+?) \| (.+?) \|$/gm)].map((m) => ({
  code: m[1]!,
  status: Number(m[2]),
  meaning: m[3]!,
  fix: m[4]!,
}));
const clientRows = [...clientDoc.matchAll(/^\| `([A-Z_]+|HTTP_<status>)` \| (.+?) \| (.+?) \|$/gm)].map((m) => ({ code: m[1]!, meaning: m[2]!, fix: m[3]! }));

describe('error registry', () => {
  it('docs/errors.md has exactly one row per registered code, with its status', () => {
    expect(rows.map((r) => r.code).sort()).toEqual(Object.keys(ERRORS).sort());
    for (const row of rows) expect(row.status, row.code).toBe(ERRORS[row.code as keyof typeof ERRORS].status);
  });

  it('every row says what it means and what to do', () => {
    for (const row of rows) {
      expect(row.meaning.length, row.code).toBeGreaterThan(10);
      expect(row.fix.length, row.code).toBeGreaterThan(5);
    }
  });

  it('codes are upper snake case and messages are sentences', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
      expect(spec.message).toMatch(/^[A-Z].*\.$/);
      expect(spec.status).toBeGreaterThanOrEqual(400);
    }
  });

  it('docs/errors.md has a section with exactly one row per client SDK code, and one for HTTP_<status>', () => {
    expect(clientDoc).not.toBe('');
    expect(clientRows.map((r) => r.code).sort()).toEqual([...Object.keys(CLIENT_ERRORS), 'HTTP_<status>'].sort());
    for (const row of clientRows) {
      expect(row.meaning.length, row.code).toBeGreaterThan(10);
      expect(row.fix.length, row.code).toBeGreaterThan(5);
    }
  });

  it('client SDK codes are upper snake case, never a server code nor HTTP_<status>, and messages are sentences', () => {
    for (const [code, spec] of Object.entries(CLIENT_ERRORS)) {
      expect(code).toMatch(/^[A-Z]+(_[A-Z]+)*$/);
      expect(code).not.toMatch(/^HTTP_/);
      expect(isErrorCode(code), code).toBe(false);
      expect(spec.message).toMatch(/^[A-Z].*\.$/);
    }
    for (const code of Object.keys(ERRORS)) expect(code).not.toMatch(/^HTTP_/);
    expect(httpStatusErrorCode(502)).toBe('HTTP_502');
    expect(isClientErrorCode('NETWORK')).toBe(true);
    expect(isClientErrorCode('AUTH_CODE_USED')).toBe(false);
    expect(isClientErrorCode('toString')).toBe(false);
  });

  it('recognises codes and error bodies', () => {
    expect(isErrorCode('AUTH_CODE_USED')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorBody({ error: { code: 'X', message: 'y', requestId: 'z' } })).toBe(true);
    expect(isErrorBody({ code: -1 })).toBe(false);
    expect(isErrorBody(null)).toBe(false);
  });
});
