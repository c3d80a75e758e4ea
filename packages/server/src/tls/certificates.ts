/**
 * Certificates from the formats users have — PEM (nginx), PKCS#12/PFX (Tomcat, IIS, Aliyun),
 * JKS (Spring Boot) — turned into one shape, and checked against WeChat's rules (wechat-api.md
 * §9.2): trusted root, complete chain, names, validity, ATS key and signature strength.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { CertificateConfig } from '../config/index.js';
import { certificateSignatureAlgorithm, toPem } from './der.js';
import { KeystoreError, isJks, readJks } from './jks.js';
import { Pkcs12Error, readPkcs12 } from './pkcs12.js';

/** Warn when a certificate has fewer days than this left. */
export const EXPIRY_WARNING_DAYS = 14;

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
 * Checks a certificate against the rules of wechat-api.md §9.2. `trusted` adds roots besides
 * Node's store (the dev CA); `selfIssuedOk` is true for the dev CA, whose untrusted root is known.
 */
export function inspectCertificate(
  material: CertificateMaterial,
  now: number,
  options: { trusted?: X509Certificate[]; devCa?: boolean } = {},
): Inspection {
  const errors: string[] = [];
  const warnings: string[] = [];
  const [leaf, ...rest] = material.chain;
  const where = material.source;
  if (!leaf) return { errors: [`${where}: no certificate`], warnings };

  const validTo = Date.parse(leaf.validTo);
  const validFrom = Date.parse(leaf.validFrom);
  if (now >= validTo) errors.push(`${where}: expired on ${leaf.validTo} (WeChat: the certificate must be within its validity period)`);
  else if (now < validFrom) errors.push(`${where}: not valid before ${leaf.validFrom}`);
  else {
    const days = Math.floor((validTo - now) / 86_400_000);
    if (days < EXPIRY_WARNING_DAYS) warnings.push(`${where}: expires in ${days} days (${leaf.validTo}); renew it`);
  }

  for (const name of material.names) {
    const covered = /^[\d.:]+$/.test(name) ? leaf.checkIP(name) : leaf.checkHost(name.replace(/^\*\./, 'wildcard-check.'));
    if (!covered) {
      warnings.push(`${where}: does not cover "${name}" (WeChat: ERR_CERT_COMMON_NAME_INVALID, the domain must match the certificate)`);
    }
  }

  const details = leaf.publicKey.asymmetricKeyDetails;
  const type = leaf.publicKey.asymmetricKeyType;
  if (type === 'rsa' && (details?.modulusLength ?? 0) < 2048) {
    warnings.push(`${where}: RSA key of ${details?.modulusLength} bits (iOS ATS needs RSA ≥ 2048 or EC ≥ 256)`);
  }
  if (type === 'ec' && details?.namedCurve && !['prime256v1', 'secp384r1', 'secp521r1'].includes(details.namedCurve)) {
    warnings.push(`${where}: EC key on ${details.namedCurve} (iOS ATS needs EC ≥ 256 bits)`);
  }
  const algorithm = certificateSignatureAlgorithm(leaf.raw);
  if (/sha1|md5/i.test(algorithm)) warnings.push(`${where}: signed with ${algorithm} (iOS ATS needs SHA-256 or stronger)`);

  // Chain: each certificate issued by the next, ending at a root Node trusts.
  for (let i = 0; i + 1 < material.chain.length; i++) {
    if (!material.chain[i]!.checkIssued(material.chain[i + 1]!)) {
      warnings.push(`${where}: certificate ${i + 2} of the file did not issue certificate ${i + 1}; check the order and content of the chain`);
      break;
    }
  }
  const last = material.chain[material.chain.length - 1]!;
  const roots = [...(options.trusted ?? []), ...systemRoots()];
  const selfSigned = last.checkIssued(last) && last.verify(last.publicKey);
  const anchored = selfSigned ? roots.some((r) => r.fingerprint256 === last.fingerprint256) : roots.some((r) => last.checkIssued(r) && last.verify(r.publicKey));
  if (!anchored) {
    if (options.devCa) {
      // Expected: the dev CA is trusted only where the developer installed it.
    } else if (selfSigned && rest.length === 0) {
      warnings.push(`${where}: self-signed (WeChat on iOS rejects self-signed certificates; use a CA-issued one or ACME)`);
    } else if (!selfSigned && rest.length === 0) {
      warnings.push(
        `${where}: only the leaf certificate, and its issuer "${oneLine(last.issuer)}" is not a trusted root: the intermediate is missing (WeChat -202 / ERR_CERT_AUTHORITY_INVALID on Android). Serve the full chain, e.g. fullchain.pem or the _bundle.crt file`,
      );
    } else if (!selfSigned) {
      warnings.push(
        `${where}: the chain ends at an intermediate issued by "${oneLine(last.issuer)}", which is not in the system trust store: a private CA (clients must trust it) or a missing intermediate`,
      );
    } else {
      warnings.push(`${where}: issued by a CA that is not in the system trust store (WeChat: the root must be built into the OS)`);
    }
  }
  return { errors, warnings };
}

let roots: X509Certificate[] | undefined;
function systemRoots(): X509Certificate[] {
  roots ??= rootCertificates.map((pem) => new X509Certificate(pem));
  return roots;
}

function oneLine(distinguishedName: string): string {
  return distinguishedName.split('\n').join(', ');
}

/** The private key object of a material (for tests and the dev CA). */
export function keyOf(material: CertificateMaterial): KeyObject {
  return createPrivateKey(material.keyPem);
}
