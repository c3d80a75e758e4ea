/**
 * Which keys prove a message is WeChat Pay's, by `Wechatpay-Serial`: the WeChat Pay public key
 * (`PUB_KEY_ID_…`, the current mode) and/or the platform certificates downloaded from
 * `/v3/certificates` (the older mode), so a merchant migrating from one to the other accepts
 * both while WeChat switches. Verifying a signature here checks the serial, the signature and the
 * timestamp window, and refuses WeChat's probe signatures.
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { PROBE_PREFIX, rsaVerify } from './crypto.js';

/** A notification or answer more than this far from our clock is refused (replay). */
export const PAY_SKEW_MS = 5 * 60_000;

export interface SignedHeaders {
  timestamp: string;
  nonce: string;
  signature: string;
  serial: string;
}

export type VerifyOutcome = 'ok' | 'probe' | 'unknown-serial' | 'bad-signature' | 'stale';

export interface PayVerifier {
  /** Adds platform certificates (PEM) downloaded for this merchant. */
  addCertificates(pems: string[]): void;
  /** True when a certificate is known (the certificate mode has its keys). */
  hasCertificates(): boolean;
  verify(headers: SignedHeaders, body: string, nowMs: number): VerifyOutcome;
}

/**
 * A serial as a key: upper case, and for a certificate's hex serial without leading zero bytes
 * (a DER INTEGER has none, so Node prints `0012AB` as `12AB`; a sender may write either).
 */
function serialKey(serial: string): string {
  const upper = serial.toUpperCase();
  return /^[0-9A-F]+$/.test(upper) ? upper.replace(/^(00)+(?=.)/, '') : upper;
}

export function createVerifier(publicKey: { id: string; pem: string } | undefined): PayVerifier {
  const keys = new Map<string, KeyObject>();
  if (publicKey) keys.set(publicKey.id, createPublicKey(publicKey.pem));
  let certificates = 0;
  return {
    addCertificates(pems) {
      for (const pem of pems) {
        const certificate = new X509Certificate(pem);
        keys.set(serialKey(certificate.serialNumber), certificate.publicKey);
        certificates++;
      }
    },
    hasCertificates: () => certificates > 0,
    verify(headers, body, nowMs) {
      // The probe is refused as it comes, whatever else it carries: WeChat checks that it is.
      if (headers.signature.startsWith(PROBE_PREFIX)) return 'probe';
      const key = keys.get(serialKey(headers.serial));
      if (!key) return 'unknown-serial';
      const seconds = Number(headers.timestamp);
      if (!/^\d{1,12}$/.test(headers.timestamp) || Math.abs(nowMs - seconds * 1000) > PAY_SKEW_MS) return 'stale';
      return rsaVerify(key, `${headers.timestamp}\n${headers.nonce}\n${body}\n`, headers.signature) ? 'ok' : 'bad-signature';
    },
  };
}

/** The four Wechatpay-* headers of a request or answer ('' for a missing one). */
export function signedHeadersOf(get: (name: string) => string | null | undefined): SignedHeaders {
  return {
    timestamp: get('wechatpay-timestamp') ?? '',
    nonce: get('wechatpay-nonce') ?? '',
    signature: get('wechatpay-signature') ?? '',
    serial: get('wechatpay-serial') ?? '',
  };
}
