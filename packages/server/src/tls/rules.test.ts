import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectCertificate } from './certificates.js';
import { atsFindings, chainFindings, describeKey, nameFindings, signatureHash, validityFindings } from './rules.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mg-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate for rules.test, made by openssl with the given key and signing options. */
function selfSigned(name: string, keyArgs: string[], signArgs: string[] = []): X509Certificate {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', key], { stdio: 'pipe' });
  execFileSync('openssl', ['req', '-x509', '-key', key, '-out', cert, '-days', '30', '-subj', '/CN=rules.test', '-addext', 'subjectAltName=DNS:rules.test', ...signArgs], { stdio: 'pipe' });
  return new X509Certificate(readFileSync(cert));
}

describe('certificate rules', () => {
  const weak = selfSigned('weak', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], ['-sha1']);
  const good = selfSigned('good', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha256']);
  const pss = selfSigned('pss', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha384']);
  const ed = selfSigned('ed', ['-algorithm', 'ED25519']);

  it('names the key and the signature hash, including RSA-PSS (hash in its parameters) and Ed25519', () => {
    expect([describeKey(weak), signatureHash(weak)]).toEqual(['RSA 1024', 'SHA-1']);
    expect([describeKey(good), signatureHash(good)]).toEqual(['EC prime256v1', 'SHA-256']);
    expect(signatureHash(pss)).toBe('SHA-384');
    expect([describeKey(ed), signatureHash(ed)]).toEqual(['ed25519', '?']);
  });

  it('finds what iOS ATS refuses: a small RSA key, a SHA-1 signature, an Ed25519 key', () => {
    expect(atsFindings(good)).toEqual([]);
    expect(atsFindings(weak).map((f) => f.rule)).toEqual(['key', 'signature']);
    expect(atsFindings(weak)[0]!.message).toContain('RSA key of 1024 bits (iOS ATS');
    expect(atsFindings(ed).map((f) => f.rule)).toEqual(['key', 'signature']);
  });

  it('finds dates and names, with the same thresholds the start-up checks and minigate check use', () => {
    const validTo = Date.parse(good.validTo);
    expect(validityFindings(good, validTo - 20 * 86_400_000)).toEqual([]);
    expect(validityFindings(good, validTo - 5 * 86_400_000).map((f) => [f.rule, f.severity])).toEqual([['expires-soon', 'warning']]);
    expect(validityFindings(good, validTo).map((f) => [f.rule, f.severity])).toEqual([['expired', 'error']]);
    expect(validityFindings(good, Date.parse(good.validFrom) - 1).map((f) => f.rule)).toEqual(['not-yet-valid']);
    expect(nameFindings(good, ['rules.test'])).toEqual([]);
    expect(nameFindings(good, ['other.test'])[0]!.message).toContain('does not cover "other.test"');
    expect(chainFindings([good]).map((f) => f.rule)).toEqual(['trust']);
    expect(chainFindings([good], { devCa: true })).toEqual([]);
  });

  it('the start-up inspection reports each finding as "<file>: <message>; <fix>"', () => {
    const { errors, warnings } = inspectCertificate({ source: 'weak.pem', keyPem: '', chainPem: [], chain: [weak], names: ['rules.test'] }, Date.now());
    expect(errors).toEqual([]);
    expect(warnings).toEqual([...atsFindings(weak), ...chainFindings([weak])].map((f) => `weak.pem: ${f.message}; ${f.fix}`));
  });
});
