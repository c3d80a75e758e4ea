/**
 * log.format and `minigate dev`'s output when stderr is not a terminal (as under an IDE, a
 * pipe or CI): pretty lines below the banner, never JSON, unless --json asks for JSON.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCli } from './helpers/cli.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function devLog(args: string[]): Promise<string[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-log-format-'));
  dirs.push(dir);
  const cli = startCli(['dev', '--data', dir, '--port', '0', '--https-port', '0', '--sandbox-port', '0', ...args]);
  try {
    await cli.waitForStderr('minigate started', 60_000);
  } finally {
    await cli.stop();
  }
  return cli.stderr().split('\n').filter(Boolean);
}

describe('minigate dev with stderr piped', () => {
  it('writes pretty lines, no JSON', { timeout: 90_000 }, async () => {
    const lines = await devLog([]);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d info  minigate started/.test(l))).toBe(true);
    expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
  });

  it('writes JSON lines with --json', { timeout: 90_000 }, async () => {
    const lines = await devLog(['--json']);
    const started = lines.map((l) => JSON.parse(l) as { msg?: string }).find((e) => e.msg === 'minigate started');
    expect(started).toBeDefined();
  });
});
