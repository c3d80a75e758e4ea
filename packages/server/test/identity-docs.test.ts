/**
 * docs/upstream-identity.md's verification programs (Node, Python, Java), run against the
 * headers minigate really sends: they accept them, and refuse a tampered or stale copy.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers/harness.js';

const SECRET = 'a-secret-shared-with-the-upstream';
const doc = readFileSync(new URL('../../../docs/upstream-identity.md', import.meta.url), 'utf8');
const block = (language: string) => new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(doc)![1]!;

let dir: string;
let h: Harness;
let headers: IncomingHttpHeaders;
let openid: string;
let close: () => Promise<void>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-identity-docs-'));
  writeFileSync(path.join(dir, 'verify.mjs'), block('js'));
  writeFileSync(path.join(dir, 'verify.py'), block('python'));
  writeFileSync(path.join(dir, 'Verify.java'), block('java'));
  const upstream = createServer((req, res) => {
    headers = req.headers;
    res.end('ok');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  close = () => new Promise((resolve) => upstream.close(() => resolve()));
  h = await startHarness({
    config: { upstreamSecret: SECRET, routes: [{ path: '/api', proxy: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, auth: 'required' }] },
  });
  const code = await h.code();
  openid = code.openid;
  const { token } = (await h.login({ code: code.code })).body;
  await fetch(`${h.url}/api/who`, { headers: { authorization: `Bearer ${token}` } });
});
afterAll(async () => {
  await h?.close();
  await close?.();
  rmSync(dir, { recursive: true, force: true });
});

function run(command: string, args: string[], input: IncomingHttpHeaders): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { cwd: dir, env: { ...process.env, UPSTREAM_SECRET: SECRET }, timeout: 60_000 }, (error, stdout) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: stdout.trim() }),
    );
    child.stdin!.end(JSON.stringify(input));
  });
}

describe.each([
  ['Node', 'node', ['verify.mjs']],
  ['Python', 'python3', ['verify.py']],
  ['Java', 'java', ['Verify.java']],
] as const)('the %s example', (_name, command, args) => {
  it('accepts what minigate sent and prints the openid', async () => {
    expect(await run(command, [...args], headers)).toEqual({ code: 0, out: openid });
  });

  it('refuses a changed openid and a stale timestamp', async () => {
    expect((await run(command, [...args], { ...headers, 'x-minigate-openid': 'o-someone-else' })).code).not.toBe(0);
    const stale = String(Number(headers['x-minigate-timestamp']) - 3600);
    expect((await run(command, [...args], { ...headers, 'x-minigate-timestamp': stale })).code).not.toBe(0);
  });
});
