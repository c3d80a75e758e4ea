import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bmpPassword, Pkcs12Error, pkcs12Kdf, readPkcs12 } from './pkcs12.js';

describe('the PKCS#12 key derivation (RFC 7292 appendix B)', () => {
  // The vectors that PKCS#12 implementations have long shared (password "smeg" and "queeg").
  it.each([
    ['smeg', '0a58cf64530d823f', 1, 1, 24, '8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3'],
    ['smeg', '0a58cf64530d823f', 2, 1, 8, '79993dfe048d3b76'],
    ['queeg', '1682c0fc5b3f7ec5', 1, 1000, 24, '483dd6e919d7de2e8e648ba8f862f3fbfbdc2bcb2c02957f'],
  ] as const)('derives from %s, salt %s, id %i, %i iterations', (password, salt, id, iterations, size, expected) => {
    expect(pkcs12Kdf('sha1', bmpPassword(password), Buffer.from(salt, 'hex'), id, iterations, size).toString('hex')).toBe(expected);
  });
});

describe('reading PKCS#12 files as openssl writes them', () => {
  let dir: string;
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mg-p12-'));
    run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ec.key', '-out', 'ec.pem', '-subj', '/CN=ec.test', '-days', '2']);
    run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.pem', '-subj', '/CN=rsa.test', '-days', '2']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const pfx = (name: 'ec' | 'rsa', password: string, extra: string[] = []) => {
    const out = `${name}-${extra.join('').replace(/\W/g, '')}.p12`;
    run(['pkcs12', '-export', ...extra, '-in', `${name}.pem`, '-inkey', `${name}.key`, '-out', out, '-passout', `pass:${password}`]);
    return readFileSync(path.join(dir, out));
  };
  const matches = (name: string, contents: { keys: Buffer[]; certificates: Buffer[] }) => {
    expect(contents.keys).toHaveLength(1);
    expect(contents.certificates).toHaveLength(1);
    const certificate = new X509Certificate(contents.certificates[0]!);
    expect(certificate.raw.equals(new X509Certificate(readFileSync(path.join(dir, `${name}.pem`))).raw)).toBe(true);
    expect(certificate.checkPrivateKey(createPrivateKey({ key: contents.keys[0]!, format: 'der', type: 'pkcs8' }))).toBe(true);
  };

  it.each([
    ['ec', 'AES-256 + PBKDF2-SHA256 (OpenSSL 3 default)', []],
    ['ec', 'legacy RC2-40 + 3DES', ['-legacy']],
    ['ec', '3DES for both, SHA-1 MAC (IIS)', ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']],
    ['ec', 'no encryption (plain key bag)', ['-keypbe', 'NONE', '-certpbe', 'NONE']],
    ['rsa', 'AES-256', []],
    ['rsa', 'legacy', ['-legacy']],
  ] as const)('reads %s with %s', (name, _label, extra) => {
    matches(name, readPkcs12(pfx(name, 'pa55 wörd', [...extra]), 'pa55 wörd'));
  });

  it('reads an empty password', () => {
    matches('ec', readPkcs12(pfx('ec', '', ['-legacy']), ''));
    matches('ec', readPkcs12(pfx('ec', ''), ''));
  });

  it('names a wrong password and a file that is not PKCS#12', () => {
    const wrong = (() => {
      try {
        readPkcs12(pfx('ec', 'right'), 'wrong');
      } catch (error) {
        return error;
      }
    })();
    expect(wrong).toBeInstanceOf(Pkcs12Error);
    expect((wrong as Pkcs12Error).reason).toBe('wrong-password');
    expect(() => readPkcs12(Buffer.from('not a pfx'), 'x')).toThrow(expect.objectContaining({ reason: 'not-pkcs12' }));
  });
});
