/**
 * PKCS#12 / PFX reading (RFC 7292) with the ASN.1 schemas of the @peculiar family (the one behind
 * @peculiar/x509) and node:crypto, so that RSA and EC keys load alike. It reads what exporters
 * write: PBES2 (PBKDF2 + AES-CBC, OpenSSL 3's default, Java 12+), the legacy PKCS#12 PBEs
 * (SHA-1 with 3DES or RC2: `openssl pkcs12 -legacy`, old Tomcat and IIS), the password MAC, cert
 * bags, key bags and shrouded key bags. The password is checked with the MAC before anything is
 * decrypted, so a wrong one is named as such.
 */
import { createDecipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { EncryptedContentInfo } from '@peculiar/asn1-cms';
import {
  AuthenticatedSafe,
  CertBag,
  PFX,
  PKCS8ShroudedKeyBag,
  SafeContents,
  id_SafeContents,
  id_certBag,
  id_keyBag,
  id_pkcs8ShroudedKeyBag,
  id_x509Certificate,
  type SafeBag,
} from '@peculiar/asn1-pfx';
import { AsnConvert, AsnProp, AsnPropTypes, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { rc2CbcDecrypt } from './rc2.js';

export class Pkcs12Error extends Error {
  constructor(
    readonly reason: 'not-pkcs12' | 'wrong-password' | 'unsupported',
    message: string,
  ) {
    super(message);
    this.name = 'Pkcs12Error';
  }
}

export interface Pkcs12Contents {
  /** PKCS#8 DER of each private key, in file order. */
  keys: Buffer[];
  /** DER of each X.509 certificate, in file order. */
  certificates: Buffer[];
}

const ID_DATA = '1.2.840.113549.1.7.1';
const ID_ENCRYPTED_DATA = '1.2.840.113549.1.7.6';
const ID_PBES2 = '1.2.840.113549.1.5.13';
const ID_PBKDF2 = '1.2.840.113549.1.5.12';

/** Digest OIDs (MAC) and HMAC OIDs (PBKDF2's prf) to Node's names. */
const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};

/** PBES2 encryption schemes: Node cipher and key length. */
const PBES2_CIPHERS: Record<string, { cipher: string; keyLength: number }> = {
  '2.16.840.1.101.3.4.1.2': { cipher: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { cipher: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { cipher: 'aes-256-cbc', keyLength: 32 },
  '1.2.840.113549.3.7': { cipher: 'des-ede3-cbc', keyLength: 24 },
};

/** RFC 7292 appendix C: the PKCS#12 PBEs (all with SHA-1). RC2 is decrypted by ./rc2.ts. */
const LEGACY_PBES: Record<string, { cipher: string; keyLength: number; rc2Bits?: number }> = {
  '1.2.840.113549.1.12.1.3': { cipher: 'des-ede3-cbc', keyLength: 24 },
  '1.2.840.113549.1.12.1.4': { cipher: 'des-ede-cbc', keyLength: 16 },
  '1.2.840.113549.1.12.1.5': { cipher: 'rc2-cbc', keyLength: 16, rc2Bits: 128 },
  '1.2.840.113549.1.12.1.6': { cipher: 'rc2-cbc', keyLength: 5, rc2Bits: 40 },
};

// The parameter structures are not in the installed schema packages: declared here, with the
// schema library's decorators applied as functions (no decorator syntax needed in this build).
class EncryptedData {
  version = 0;
  encryptedContentInfo = new EncryptedContentInfo();
}
AsnProp({ type: AsnPropTypes.Integer })(EncryptedData.prototype, 'version');
AsnProp({ type: EncryptedContentInfo })(EncryptedData.prototype, 'encryptedContentInfo');

/** pkcs-12PbeParams (RFC 7292 appendix C). */
class PbeParams {
  salt = new OctetString();
  iterations = 0;
}
AsnProp({ type: OctetString })(PbeParams.prototype, 'salt');
AsnProp({ type: AsnPropTypes.Integer })(PbeParams.prototype, 'iterations');

/** PBES2-params and PBKDF2-params (RFC 8018 appendix A). */
class Pbes2Params {
  keyDerivationFunc = new AlgorithmIdentifier();
  encryptionScheme = new AlgorithmIdentifier();
}
AsnProp({ type: AlgorithmIdentifier })(Pbes2Params.prototype, 'keyDerivationFunc');
AsnProp({ type: AlgorithmIdentifier })(Pbes2Params.prototype, 'encryptionScheme');
class Pbkdf2Params {
  salt = new OctetString();
  iterationCount = 0;
  keyLength?: number;
  prf?: AlgorithmIdentifier;
}
AsnProp({ type: OctetString })(Pbkdf2Params.prototype, 'salt');
AsnProp({ type: AsnPropTypes.Integer })(Pbkdf2Params.prototype, 'iterationCount');
AsnProp({ type: AsnPropTypes.Integer, optional: true })(Pbkdf2Params.prototype, 'keyLength');
AsnProp({ type: AlgorithmIdentifier, optional: true })(Pbkdf2Params.prototype, 'prf');

/** A password as PKCS#12 hashes it: BMPString (UTF-16BE) with a two-byte terminator. */
export function bmpPassword(password: string): Buffer {
  const bytes = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) bytes.writeUInt16BE(password.charCodeAt(i), i * 2);
  return bytes;
}

/**
 * The PKCS#12 key derivation (RFC 7292 appendix B.2): `id` 1 for a key, 2 for an IV, 3 for the
 * MAC key; `password` already in BMP form.
 */
export function pkcs12Kdf(hash: string, password: Buffer, salt: Buffer, id: 1 | 2 | 3, iterations: number, size: number): Buffer {
  const v = /^sha(384|512)$/.test(hash) ? 128 : 64;
  const repeat = (source: Buffer) => {
    const out = Buffer.alloc(v * Math.ceil(source.length / v));
    for (let i = 0; i < out.length; i++) out[i] = source[i % source.length]!;
    return out;
  };
  const input = Buffer.concat([repeat(salt), repeat(password)]);
  const diversifier = Buffer.alloc(v, id);
  const out: Buffer[] = [];
  for (let produced = 0; produced < size; ) {
    let a = createHash(hash).update(diversifier).update(input).digest();
    for (let i = 1; i < iterations; i++) a = createHash(hash).update(a).digest();
    out.push(a);
    produced += a.length;
    if (produced >= size) break;
    // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I, B being A repeated to v bytes.
    const b = Buffer.alloc(v);
    for (let i = 0; i < v; i++) b[i] = a[i % a.length]!;
    for (let block = 0; block < input.length; block += v) {
      let carry = 1;
      for (let i = v - 1; i >= 0; i--) {
        const sum = input[block + i]! + b[i]! + carry;
        input[block + i] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, size);
}

function octets(value: ArrayBuffer): Buffer {
  return Buffer.from(AsnConvert.parse(value, OctetString).buffer);
}

function hashOf(oid: string, what: string): string {
  const hash = HASHES[oid];
  if (!hash) throw new Pkcs12Error('unsupported', `its ${what} uses algorithm ${oid}, which minigate cannot read; re-export it with AES-256 and SHA-256`);
  return hash;
}

/** Decrypts content encrypted under `algorithm` with the password (BMP form for the legacy PBEs). */
function decrypt(algorithm: AlgorithmIdentifier, data: Buffer, password: string, bmp: Buffer): Buffer {
  const parameters = algorithm.parameters;
  const legacy = LEGACY_PBES[algorithm.algorithm];
  try {
    if (legacy && parameters) {
      const params = AsnConvert.parse(parameters, PbeParams);
      const salt = Buffer.from(params.salt.buffer);
      const key = pkcs12Kdf('sha1', bmp, salt, 1, params.iterations, legacy.keyLength);
      const iv = pkcs12Kdf('sha1', bmp, salt, 2, params.iterations, 8);
      if (legacy.rc2Bits) return rc2CbcDecrypt(key, legacy.rc2Bits, iv, data);
      const decipher = createDecipheriv(legacy.cipher, key, iv);
      return Buffer.concat([decipher.update(data), decipher.final()]);
    }
    if (algorithm.algorithm === ID_PBES2 && parameters) {
      const params = AsnConvert.parse(parameters, Pbes2Params);
      const scheme = PBES2_CIPHERS[params.encryptionScheme.algorithm];
      if (params.keyDerivationFunc.algorithm !== ID_PBKDF2 || !params.keyDerivationFunc.parameters || !scheme || !params.encryptionScheme.parameters) {
        throw new Pkcs12Error('unsupported', `it is encrypted with ${params.keyDerivationFunc.algorithm} / ${params.encryptionScheme.algorithm}, which minigate cannot read; re-export it with AES-256`);
      }
      const kdf = AsnConvert.parse(params.keyDerivationFunc.parameters, Pbkdf2Params);
      const hash = kdf.prf ? hashOf(kdf.prf.algorithm, 'key derivation') : 'sha1';
      // PBKDF2 takes the password as bytes (UTF-8), not the BMP form of the PKCS#12 KDF.
      const key = pbkdf2Sync(Buffer.from(password, 'utf8'), Buffer.from(kdf.salt.buffer), kdf.iterationCount, kdf.keyLength ?? scheme.keyLength, hash);
      const decipher = createDecipheriv(scheme.cipher, key, octets(params.encryptionScheme.parameters));
      return Buffer.concat([decipher.update(data), decipher.final()]);
    }
  } catch (error) {
    if (error instanceof Pkcs12Error) throw error;
    // Bad padding: the password opened the MAC but not this content (or there was no MAC).
    throw new Pkcs12Error('wrong-password', 'wrong passphrase');
  }
  throw new Pkcs12Error('unsupported', `it is encrypted with ${algorithm.algorithm}, which minigate cannot read; re-export it with AES-256 (openssl pkcs12 -export)`);
}

/** Checks the MAC; returns the BMP form of the password that matched it. */
function checkMac(pfx: PFX, content: Buffer, password: string): Buffer {
  const candidates = [bmpPassword(password)];
  // Some exporters hash an empty password as no bytes at all instead of a lone terminator.
  if (password === '') candidates.push(Buffer.alloc(0));
  if (!pfx.macData) return candidates[0]!;
  const hash = hashOf(pfx.macData.mac.digestAlgorithm.algorithm, 'MAC');
  const expected = Buffer.from(pfx.macData.mac.digest.buffer);
  const salt = Buffer.from(pfx.macData.macSalt.buffer);
  for (const bmp of candidates) {
    const key = pkcs12Kdf(hash, bmp, salt, 3, pfx.macData.iterations || 1, createHash(hash).digest().length);
    const mac = createHmac(hash, key).update(content).digest();
    if (mac.length === expected.length && timingSafeEqual(mac, expected)) return bmp;
  }
  throw new Pkcs12Error('wrong-password', 'wrong passphrase');
}

/** Reads the keys and certificates of a PKCS#12 file. */
export function readPkcs12(data: Buffer, password: string): Pkcs12Contents {
  let pfx: PFX;
  let content: Buffer;
  let safe: AuthenticatedSafe;
  try {
    pfx = AsnConvert.parse(data, PFX);
    if (pfx.authSafe.contentType !== ID_DATA) throw new Error(`public-key integrity (${pfx.authSafe.contentType}) is not supported`);
    content = octets(pfx.authSafe.content);
    safe = AsnConvert.parse(content, AuthenticatedSafe);
  } catch (error) {
    throw new Pkcs12Error('not-pkcs12', (error as Error).message || 'unreadable');
  }
  const bmp = checkMac(pfx, content, password);
  const out: Pkcs12Contents = { keys: [], certificates: [] };
  const readBags = (bags: SafeBag[]) => {
    for (const bag of bags) {
      if (bag.bagId === id_certBag) {
        const cert = AsnConvert.parse(bag.bagValue, CertBag);
        if (cert.certId === id_x509Certificate) out.certificates.push(octets(cert.certValue));
      } else if (bag.bagId === id_keyBag) {
        out.keys.push(Buffer.from(bag.bagValue));
      } else if (bag.bagId === id_pkcs8ShroudedKeyBag) {
        const shrouded = AsnConvert.parse(bag.bagValue, PKCS8ShroudedKeyBag);
        out.keys.push(decrypt(shrouded.encryptionAlgorithm, Buffer.from(shrouded.encryptedData.buffer), password, bmp));
      } else if (bag.bagId === id_SafeContents) {
        readBags(AsnConvert.parse(bag.bagValue, SafeContents));
      }
    }
  };
  try {
    for (const info of safe) {
      let contents: Buffer;
      if (info.contentType === ID_DATA) contents = octets(info.content);
      else if (info.contentType === ID_ENCRYPTED_DATA) {
        const encrypted = AsnConvert.parse(info.content, EncryptedData).encryptedContentInfo;
        const value = encrypted.encryptedContent;
        const bytes = value?.value ? Buffer.from(value.value.buffer) : Buffer.concat((value?.constructedValue ?? []).map((part) => Buffer.from(part.buffer)));
        contents = decrypt(encrypted.contentEncryptionAlgorithm, bytes, password, bmp);
      } else continue; // enveloped (public-key privacy): not something a server certificate comes in
      readBags(AsnConvert.parse(contents, SafeContents));
    }
    // Keys as PKCS#8 DER, checked readable.
    out.keys = out.keys.map((der) => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'der', type: 'pkcs8' }));
  } catch (error) {
    if (error instanceof Pkcs12Error) throw error;
    throw new Pkcs12Error('not-pkcs12', `damaged content (${(error as Error).message})`);
  }
  return out;
}
