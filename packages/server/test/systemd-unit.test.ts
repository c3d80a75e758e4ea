/**
 * deploy/minigate.service passes `systemd-analyze verify` with no output at all, and keeps the
 * hardening and signals docs/operations.md promises.
 *
 * verify checks that ExecStart's program exists and is executable. The unit users get names
 * /usr/local/bin/minigate (where `npm install -g` puts it), which this machine need not have, so
 * the test verifies a copy in a temp dir whose ExecStart alone is rewritten to this checkout's
 * node and bin/minigate.js; every other line is the shipped file's, byte for byte.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/cli.js';

const run = promisify(execFile);
const UNIT = new URL('../../../deploy/minigate.service', import.meta.url);
const SHIPPED_EXEC_START = 'ExecStart=/usr/local/bin/minigate start -c /etc/minigate/minigate.yaml';
const text = readFileSync(UNIT, 'utf8');
const dir = mkdtempSync(path.join(tmpdir(), 'mg-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function directives(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

describe('deploy/minigate.service', () => {
  it('has the hardening, state directory, reload and stop settings', () => {
    const d = directives(text);
    expect(text).toContain(`\n${SHIPPED_EXEC_START}\n`);
    const expected: Record<string, string> = {
      DynamicUser: 'yes',
      StateDirectory: 'minigate',
      StateDirectoryMode: '0700',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
      ProtectSystem: 'strict',
      NoNewPrivileges: 'yes',
      Restart: 'on-failure',
      ExecReload: '/bin/kill -HUP $MAINPID',
      EnvironmentFile: '-/etc/minigate/minigate.env',
      KillSignal: 'SIGTERM',
    };
    for (const [key, value] of Object.entries(expected)) expect(d.get(key), key).toEqual([value]);
    // Longer than the workers' 20 s grace (cli/workers.ts), which is longer than a drain.
    expect(Number(d.get('TimeoutStopSec')?.[0])).toBeGreaterThan(20);
  });

  it('passes systemd-analyze verify with no output', async () => {
    expect(text.split('\n').filter((l) => l.startsWith('ExecStart='))).toEqual([SHIPPED_EXEC_START]);
    const copy = path.join(dir, 'minigate.service');
    writeFileSync(copy, text.replace(SHIPPED_EXEC_START, `ExecStart=${process.execPath} ${CLI} start -c /etc/minigate/minigate.yaml`));
    // Exit 0 is not enough: verify only warns (exit 0) about many mistakes, such as an unknown key.
    const result = await run('systemd-analyze', ['verify', copy], { cwd: dir }).catch((error: { code: number; stdout: string; stderr: string }) => error);
    expect(`${result.stdout}${result.stderr}`).toBe('');
  });

  it('the check itself catches a mistake', async () => {
    const copy = path.join(dir, 'minigate.service');
    writeFileSync(copy, text.replace(SHIPPED_EXEC_START, `ExecStart=${process.execPath} ${CLI} start\nProtectSystm=strict`));
    const result = await run('systemd-analyze', ['verify', copy], { cwd: dir }).catch((error: { stdout: string; stderr: string }) => error);
    expect(`${result.stdout}${result.stderr}`).toContain('ProtectSystm');
  });
});
