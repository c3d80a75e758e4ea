/**
 * What `minigate start` creates is for its own user only (the data directory 0700; the SQLite
 * database, its -wal and -shm, and the secret key 0600), and existing key or database files
 * that other users can read are named at start with the chmod that fixes them.
 */
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from './helpers/cli.js';
import { makeCa, makeLeaf, type TestCa } from './helpers/pki.js';

let dir: string;
let ca: TestCa;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-perm-'));
  ca = makeCa();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(ca.dir, { recursive: true, force: true });
});

const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);

async function run(file: string, check: (stderr: string) => void | Promise<void>) {
  const cli = startCli(['start', '-c', file]);
  try {
    await cli.waitForLine(/^minigate listening on/);
    await cli.waitForStderr('"msg":"minigate started"');
    await check(cli.stderr());
  } finally {
    expect(await cli.stop()).toBe(0);
  }
}

describe('file permissions', () => {
  it('creates the data directory 0700 and the database, its -wal/-shm and the secret key 0600; warns about readable ones later', async () => {
    const leaf = makeLeaf(ca, ['localhost'], { label: 'perm' });
    const file = path.join(dir, 'minigate.yaml');
    writeFileSync(
      file,
      [
        'dataDir: ./fresh/data',
        'listen:',
        '  http: 127.0.0.1:0',
        '  https: 127.0.0.1:0',
        'tls:',
        '  checkDomains: false',
        '  certificates:',
        `    - cert: ${leaf.fullchain}`,
        `      key: ${leaf.key}`,
        'apps:',
        '  - appid: wx00aa11bb22cc33dd',
        '    secret: secret',
        '',
      ].join('\n'),
    );
    const data = path.join(dir, 'fresh', 'data');
    const db = path.join(data, 'minigate.db');
    await run(file, () => {
      expect(modeOf(data)).toBe('700');
      expect(modeOf(path.join(dir, 'fresh'))).toBe('700');
      for (const name of ['minigate.db', 'minigate.db-wal', 'minigate.db-shm', 'secret.key']) expect(modeOf(path.join(data, name)), name).toBe('600');
    });

    chmodSync(leaf.key, 0o600);
    await run(file, (stderr) => expect(stderr).not.toContain('chmod 600'));

    // Files an operator made (or an older minigate left) readable by others.
    chmodSync(db, 0o644);
    chmodSync(path.join(data, 'secret.key'), 0o640);
    chmodSync(leaf.key, 0o644);
    await run(file, (stderr) => {
      const warnings = stderr.split('\n').filter((line) => line.includes('chmod 600'));
      expect(warnings).toHaveLength(3);
      expect(stderr).toContain(`the database file ${db} can be read by other users (mode 0644); run chmod 600 ${db}`);
      expect(stderr).toContain(`the secret key ${path.join(data, 'secret.key')} can be read by other users (mode 0640); run chmod 600 ${path.join(data, 'secret.key')}`);
      expect(stderr).toContain(`the private key ${leaf.key} can be read by other users (mode 0644); run chmod 600 ${leaf.key}`);
    });
    // Reported, not changed.
    expect(modeOf(db)).toBe('644');
  });
});
