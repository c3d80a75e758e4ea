/**
 * WeChat's certificate rules (wechat-api.md §9.2) in one place, as pure functions over a parsed
 * chain: dates, names, iOS ATS key and signature strength, chain order and trusted root. The
 * start-up checks (certificates.ts) and `minigate check` (doctor/) both read their findings, so
 * the two never disagree on what is too weak, too old or not covered.
 */
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { certificateSignatureHash } from './der.js';

/** Warn when a certificate has fewer days than this left. */
export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;
/** EC curves iOS ATS accepts (256 bits or more). */
const ATS_CURVES: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521 };
const ATS_HASHES = ['SHA-256', 'SHA-384', 'SHA-512'];

export type CertificateRule = 'not-yet-valid' | 'expired' | 'expires-soon' | 'name' | 'ca-leaf' | 'key' | 'signature' | 'chain-order' | 'trust';

export interface CertificateFinding {
  rule: CertificateRule;
  /** `error`: the certificate cannot serve at all; `warning`: it serves, but some clients refuse it. */
  severity: 'error' | 'warning';
  /** What is wrong, one line, without the file name. */
  message: string;
  /** What to do, one line. */
  fix: string;
}

const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Whole days left until the certificate expires (negative once expired). */
export function daysLeft(leaf: X509Certificate, now: number): number {
  return Math.floor((Date.parse(leaf.validTo) - now) / DAY_MS);
}

/** Within its validity period, and not about to leave it. */
export function validityFindings(leaf: X509Certificate, now: number): CertificateFinding[] {
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  if (now < from) {
    return [{ rule: 'not-yet-valid', severity: 'error', message: `not valid before ${date(from)}`, fix: 'check the server clock and the certificate dates; wait, or reissue' }];
  }
  if (now >= to) {
    return [{
      rule: 'expired',
      severity: 'error',
      message: `expired on ${date(to)} (WeChat: the certificate must be within its validity period)`,
      fix: 'renew the certificate (tls.acme renews by itself) and reload the server',
    }];
  }
  const days = daysLeft(leaf, now);
  if (days < EXPIRY_WARNING_DAYS) {
    return [{ rule: 'expires-soon', severity: 'warning', message: `expires ${date(to)}, in ${days} days`, fix: 'renew now (tls.acme renews a third of the lifetime ahead)' }];
  }
  return [];
}

/**
 * The certificate served must be the site's own: a CA certificate (basicConstraints CA:TRUE)
 * issued by another CA as the leaf means the key given is an intermediate's, and clients get
 * the CA, not the site. (A self-signed one is often CA:TRUE by openssl's defaults; the trust
 * rule speaks about it.)
 */
export function leafFindings(leaf: X509Certificate): CertificateFinding[] {
  if (!leaf.ca || leaf.checkIssued(leaf)) return [];
  return [{
    rule: 'ca-leaf',
    severity: 'error',
    message: `the key belongs to a CA certificate ("${oneLine(leaf.subject)}"), not to the site's (WeChat: the certificate must be issued to the domain)`,
    fix: "give the site certificate's own private key (the intermediate goes in the chain, not in key)",
  }];
}

/** True when the certificate is valid for the DNS name or IP address (`*.example.com` asks for a wildcard). */
export function covers(leaf: X509Certificate, name: string): boolean {
  if (/^[\d.:]+$/.test(name)) return leaf.checkIP(name) !== undefined;
  return leaf.checkHost(name.replace(/^\*\./, 'wildcard-check.')) !== undefined;
}

/** Every name the server answers for must be in the certificate. */
export function nameFindings(leaf: X509Certificate, names: readonly string[]): CertificateFinding[] {
  return names
    .filter((name) => !covers(leaf, name))
    .map((name) => ({
      rule: 'name' as const,
      severity: 'warning' as const,
      message: `does not cover "${name}", it names ${leaf.subjectAltName ?? `CN=${commonName(leaf.subject)}`} (WeChat: ERR_CERT_COMMON_NAME_INVALID, the domain must match the certificate)`,
      fix: `get a certificate that names ${name} (a SAN), or use the domain it was issued for`,
    }));
}

/** The key as people name it: `RSA 2048`, `EC prime256v1`, `ed25519`. */
export function describeKey(leaf: X509Certificate): string {
  const key = leaf.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') return `RSA ${details.modulusLength}`;
  if (key.asymmetricKeyType === 'ec') return `EC ${details.namedCurve ?? '?'}`;
  return key.asymmetricKeyType ?? '?';
}

/** The hash the certificate is signed with (`SHA-256`, `SHA-1`, … or `?`). */
export function signatureHash(leaf: X509Certificate): string {
  try {
    return certificateSignatureHash(leaf.raw);
  } catch {
    return '?';
  }
}

/** iOS App Transport Security: RSA ≥ 2048 or EC ≥ 256 bits, signed with SHA-256 or stronger. */
export function atsFindings(leaf: X509Certificate): CertificateFinding[] {
  const findings: CertificateFinding[] = [];
  const key = leaf.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const weakKey = (message: string, fix: string) => findings.push({ rule: 'key', severity: 'warning', message, fix });
  if (key.asymmetricKeyType === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) weakKey(`RSA key of ${details.modulusLength} bits (iOS ATS needs RSA ≥ 2048 or EC ≥ 256)`, 'use a 2048-bit RSA or P-256 key');
  } else if (key.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve ?? '?';
    if (!ATS_CURVES[curve]) weakKey(`EC key on ${curve} (iOS ATS needs EC ≥ 256 bits)`, 'use a P-256 or P-384 key');
  } else {
    weakKey(`${key.asymmetricKeyType ?? 'unknown'} key (iOS ATS needs RSA ≥ 2048 or EC ≥ 256)`, 'use an RSA ≥ 2048 or ECDSA P-256 key');
  }
  const hash = signatureHash(leaf);
  if (!ATS_HASHES.includes(hash)) {
    findings.push({ rule: 'signature', severity: 'warning', message: `signed with ${hash} (iOS ATS needs SHA-256 or stronger)`, fix: 'use a certificate signed with SHA-256' });
  }
  return findings;
}

/**
 * The chain as a file holds it (leaf first): each certificate issued by the next, ending at a
 * root Node trusts (or one of `trusted`). `devCa`: the chain is the dev CA's, trusted only where
 * the developer installed it, so an unknown root is expected.
 */
export function chainFindings(
  chain: readonly X509Certificate[],
  options: { trusted?: readonly X509Certificate[]; devCa?: boolean; orderIsError?: boolean } = {},
): CertificateFinding[] {
  const findings: CertificateFinding[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!)) {
      findings.push({
        rule: 'chain-order',
        // Clients build the path from the order served: a chain out of order (or with a stranger
        // in it) fails on Android (WeChat -202 / ERR_CERT_AUTHORITY_INVALID).
        severity: options.orderIsError ? 'error' : 'warning',
        message: `certificate ${i + 2} of the chain did not issue certificate ${i + 1} (WeChat: the full chain must be served in order, leaf first, or Android clients fail with -202)`,
        fix: 'put the certificates in order: the site certificate, then the intermediate that issued it, then the next',
      });
      break;
    }
  }
  const last = chain[chain.length - 1];
  if (!last || options.devCa) return findings;
  const roots = [...(options.trusted ?? []), ...systemRoots()];
  const selfSigned = last.checkIssued(last) && last.verify(last.publicKey);
  const anchored = selfSigned ? roots.some((r) => r.fingerprint256 === last.fingerprint256) : roots.some((r) => last.checkIssued(r) && last.verify(r.publicKey));
  if (anchored) return findings;
  const trust = (message: string, fix: string) => findings.push({ rule: 'trust', severity: 'warning', message, fix });
  if (selfSigned && chain.length === 1) {
    trust('self-signed (WeChat on iOS rejects self-signed certificates)', 'use a CA-issued one or ACME');
  } else if (!selfSigned && chain.length === 1) {
    trust(
      `only the leaf certificate, and its issuer "${oneLine(last.issuer)}" is not a trusted root: the intermediate is missing (WeChat -202 / ERR_CERT_AUTHORITY_INVALID on Android)`,
      'serve the full chain, e.g. fullchain.pem or the _bundle.crt file',
    );
  } else if (!selfSigned) {
    trust(
      `the chain ends at an intermediate issued by "${oneLine(last.issuer)}", which is not in the system trust store: a private CA (clients must trust it) or a missing intermediate`,
      'serve the full chain, or make the clients trust the private CA',
    );
  } else {
    trust('issued by a CA that is not in the system trust store (WeChat: the root must be built into the OS)', 'use a certificate from a public CA, or ACME');
  }
  return findings;
}

let roots: X509Certificate[] | undefined;
function systemRoots(): X509Certificate[] {
  roots ??= rootCertificates.map((pem) => new X509Certificate(pem));
  return roots;
}

function oneLine(distinguishedName: string): string {
  return distinguishedName.split('\n').join(', ');
}

/** The CN of a distinguished name (Node writes one attribute a line), else the whole name. */
export function commonName(dn: string | undefined): string {
  return /CN=([^\n,]+)/.exec(dn ?? '')?.[1] ?? dn ?? '?';
}
