import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, isErrorBody, isErrorCode } from './errors.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (.+?) \| (.+?) \|$/gm)].map((m) => ({
  code: m[1]!,
  status: Number(m[2]),
  meaning: m[3]!,
  fix: m[4]!,
}));

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

  it('recognises codes and error bodies', () => {
    expect(isErrorCode('AUTH_CODE_USED')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorBody({ error: { code: 'X', message: 'y', requestId: 'z' } })).toBe(true);
    expect(isErrorBody({ code: -1 })).toBe(false);
    expect(isErrorBody(null)).toBe(false);
  });
});
