/**
 * Certificates from the formats users have — PEM (nginx), PKCS#12/PFX (Tomcat, IIS, Aliyun),
 * JKS (Spring Boot) — turned into one shape, and checked against WeChat's rules (rules.ts).
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CertificateConfig } from '../config/index.js';
import { toPem } from './der.js';
import { KeystoreError, isJks, readJks } from './jks.js';
import { Pkcs12Error, readPkcs12 } from './pkcs12.js';
import { atsFindings, chainFindings, leafFindings, nameFindings, validityFindings, type CertificateFinding } from './rules.js';

export { EXPIRY_WARNING_DAYS } from './rules.js';

export interface CertificateMaterial {
  /** The files it came from, for messages. */
  source: string;
  keyPem: string;
  /** Leaf first, then intermediates. */
  chainPem: string[];
  chain: X509Certificate[];
  /** Names it serves by SNI: the configured ones, else its DNS names. */
  names: string[];
}

/** A certificate that cannot be used: the message names the file and what to do. */
export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateError';
  }
}

function read(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CertificateError(`${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code}`);
  }
}

function splitPem(text: string, file: string): string[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new CertificateError(`${file}: no PEM certificate in it`);
  return blocks.map((b) => `${b}\n`);
}

function parseChain(pems: string[], source: string): X509Certificate[] {
  return pems.map((pem) => {
    try {
      return new X509Certificate(pem);
    } catch {
      throw new CertificateError(`${source}: a certificate in it cannot be parsed`);
    }
  });
}

/** Loads and pairs the key and chain of one configured certificate. */
export function loadCertificate(config: CertificateConfig): CertificateMaterial {
  let source: string;
  let keyPem: string;
  let chainPem: string[];
  if (config.cert) {
    source = config.chain ? `${config.cert} + ${config.chain}` : config.cert;
    chainPem = splitPem(read(config.cert).toString('utf8'), config.cert);
    if (config.chain) chainPem.push(...splitPem(read(config.chain).toString('utf8'), config.chain));
    keyPem = read(config.key!).toString('utf8');
    try {
      createPrivateKey(keyPem);
    } catch {
      throw new CertificateError(`${config.key}: not a readable PEM private key (encrypted keys are not supported; decrypt it with openssl first)`);
    }
  } else if (config.pfx) {
    source = config.pfx;
    ({ keyPem, chainPem } = readPfx(read(config.pfx), config.passphrase ?? '', config.pfx));
  } else {
    source = config.jks!;
    const data = read(config.jks!);
    if (!isJks(data)) {
      // keytool writes PKCS#12 by default since Java 9, even into a .jks file.
      ({ keyPem, chainPem } = readPfx(data, config.password ?? '', config.jks!));
    } else {
      try {
        ({ keyPem, chainPem } = readJks(data, config.password ?? '', config.alias));
      } catch (error) {
        if (error instanceof KeystoreError) throw new CertificateError(`${config.jks}: ${error.message}`);
        throw error;
      }
    }
  }
  const chain = parseChain(chainPem, source);
  const key = createPrivateKey(keyPem);
  // The leaf is the certificate that matches the key, wherever the file put it.
  const leafIndex = chain.findIndex((c) => c.checkPrivateKey(key));
  if (leafIndex === -1) throw new CertificateError(`${source}: the private key does not match the certificate`);
  if (leafIndex > 0) {
    chain.unshift(...chain.splice(leafIndex, 1));
    chainPem.unshift(...chainPem.splice(leafIndex, 1));
  }
  const names = config.names ?? dnsNames(chain[0]!);
  return { source, keyPem, chainPem, chain, names };
}

function readPfx(data: Buffer, passphrase: string, file: string): { keyPem: string; chainPem: string[] } {
  let contents: ReturnType<typeof readPkcs12>;
  try {
    contents = readPkcs12(data, passphrase);
  } catch (error) {
    if (!(error instanceof Pkcs12Error)) throw error;
    if (error.reason === 'wrong-password') throw new CertificateError(`${file}: wrong passphrase`);
    if (error.reason === 'not-pkcs12') throw new CertificateError(`${file}: not a PKCS#12/PFX file (${error.message})`);
    throw new CertificateError(`${file}: ${error.message}`);
  }
  const key = contents.keys[0];
  if (!key) throw new CertificateError(`${file}: no private key in it`);
  if (!contents.certificates.length) throw new CertificateError(`${file}: no certificate in it`);
  return { keyPem: toPem('PRIVATE KEY', key), chainPem: contents.certificates.map((der) => toPem('CERTIFICATE', der)) };
}

/** The DNS names (and IPs) a certificate is for. */
export function dnsNames(certificate: X509Certificate): string[] {
  const names = (certificate.subjectAltName ?? '')
    .split(/,\s*/)
    .map((entry) => /^(?:DNS:|IP Address:)(.+)$/.exec(entry)?.[1]?.toLowerCase())
    .filter((n): n is string => Boolean(n));
  if (names.length) return names;
  const cn = /CN=([^\n,]+)/.exec(certificate.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

export interface Inspection {
  /** The certificate cannot serve (expired, not yet valid). */
  errors: string[];
  /** It serves, but WeChat (or iOS) will refuse some clients: each names the rule. */
  warnings: string[];
}

/**
 * Checks a certificate against WeChat's rules (rules.ts, shared with `minigate check`).
 * `trusted` adds roots besides Node's store; `devCa` is true for the dev CA, whose untrusted
 * root is known.
 */
export function inspectCertificate(
  material: CertificateMaterial,
  now: number,
  options: { trusted?: X509Certificate[]; devCa?: boolean } = {},
): Inspection {
  const where = material.source;
  const leaf = material.chain[0];
  if (!leaf) return { errors: [`${where}: no certificate`], warnings: [] };
  const findings = [
    ...validityFindings(leaf, now),
    ...leafFindings(leaf),
    ...nameFindings(leaf, material.names),
    ...atsFindings(leaf),
    // Our own files: a chain out of order is refused (what a remote server sends is only reported, by check).
    ...chainFindings(material.chain, { ...options, orderIsError: true }),
  ];
  const line = (f: CertificateFinding) => `${where}: ${f.message}; ${f.fix}`;
  return {
    errors: findings.filter((f) => f.severity === 'error').map(line),
    warnings: findings.filter((f) => f.severity === 'warning').map(line),
  };
}

/** The private key object of a material (for tests and the dev CA). */
export function keyOf(material: CertificateMaterial): KeyObject {
  return createPrivateKey(material.keyPem);
}
