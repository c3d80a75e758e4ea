/**
 * WeChat Pay v3's cryptography as the sandbox plays WeChat's side of it (docs/pay.md, rules):
 * request signatures checked with the merchant's public key, answers and notifications signed
 * with a platform key, resources sealed with AEAD_AES_256_GCM under the merchant's APIv3 key.
 * Written apart from the server's pay/ so that each side tests the other.
 */
import { createCipheriv, createPrivateKey, createSign, createVerify, generateKeyPairSync, randomBytes, webcrypto, type KeyObject } from 'node:crypto';

export const SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048';
/** The prefix of WeChat's deliberate probe signatures: a receiver must refuse them. */
export const PROBE_PREFIX = 'WECHATPAY/SIGNTEST/';

export interface PlatformKey {
  /** `PUB_KEY_ID_…` (public key mode) or a certificate's serial (hex, upper case). */
  serial: string;
  privateKey: KeyObject;
  publicKeyPem: string;
  /** The certificate (PEM), in certificate mode. */
  certificatePem?: string;
}

export function rsaSign(key: KeyObject | string, message: string): string {
  return createSign('RSA-SHA256').update(message).sign(key, 'base64');
}

export function rsaVerify(key: KeyObject | string, message: string, signature: string): boolean {
  try {
    return createVerify('RSA-SHA256').update(message).verify(key, signature, 'base64');
  } catch {
    return false;
  }
}

export function nonce(length = 32): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** AEAD_AES_256_GCM as WeChat seals resources: base64(ciphertext ‖ 16-byte tag), a 12-character nonce. */
export function sealResource(apiV3Key: string, plaintext: string, associatedData: string): { algorithm: string; ciphertext: string; nonce: string; associated_data: string } {
  const iv = nonce(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(iv, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { algorithm: 'AEAD_AES_256_GCM', ciphertext: sealed.toString('base64'), nonce: iv, associated_data: associatedData };
}

/** The headers WeChat Pay signs an answer or notification with: over `timestamp\nnonce\nbody\n`. */
export function signedHeaders(key: PlatformKey, body: string, nowMs: number, options: { badSignature?: boolean; probe?: boolean } = {}): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  const n = nonce(32);
  let signature = rsaSign(key.privateKey, `${timestamp}\n${n}\n${body}\n`);
  if (options.badSignature) signature = rsaSign(key.privateKey, `${timestamp}\n${n}\n${body}tampered\n`);
  if (options.probe) signature = `${PROBE_PREFIX}${signature}`;
  return {
    'wechatpay-timestamp': timestamp,
    'wechatpay-nonce': n,
    'wechatpay-signature': signature,
    'wechatpay-serial': key.serial,
    'wechatpay-signature-type': SIGNATURE_TYPE,
    'request-id': randomBytes(16).toString('hex').toUpperCase(),
  };
}

/** Parses `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"`. */
export function parseAuthorization(header: string | undefined): Record<string, string> | null {
  if (!header?.startsWith(`${SIGNATURE_TYPE} `)) return null;
  const fields: Record<string, string> = {};
  for (const match of header.slice(SIGNATURE_TYPE.length + 1).matchAll(/(\w+)="([^"]*)"/g)) fields[match[1]!] = match[2]!;
  return fields;
}

/** The public-key-mode key: `PUB_KEY_ID_` and digits, as the merchant platform shows it. */
export function makePublicKeyModeKey(): PlatformKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const serial = `PUB_KEY_ID_01${[...randomBytes(18)].map((b) => String(b % 10)).join('')}`;
  return { serial, privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A platform certificate (the older mode), self-signed, with a hex serial as WeChat's certificates have. */
export async function makeCertificateModeKey(now: number): Promise<PlatformKey> {
  // @peculiar/x509 loads only when a merchant is in certificate mode.
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const serial = randomBytes(20);
  // A positive INTEGER whose first byte is not zero: DER drops a leading zero byte, and the
  // certificate's serial would then read shorter than the one the answers name (1 run in 128).
  serial[0] = (serial[0]! & 0x7f) || 0x01;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: 'CN=Tenpay.com Root CA sandbox, O=minigate sandbox',
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 5 * 365 * 86_400_000),
    keys,
    signingAlgorithm: algorithm,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const publicKeyPem = new (await import('node:crypto')).X509Certificate(certificate.toString('pem')).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { serial: serial.toString('hex').toUpperCase(), privateKey, publicKeyPem, certificatePem: certificate.toString('pem') };
}
