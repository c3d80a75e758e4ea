/**
 * Java KeyStore (JKS) reading, for Spring Boot users' `.jks` files. Format facts: magic
 * 0xFEEDFEED, version 2, entries (1 = private key with its chain, 2 = trusted certificate), and
 * a trailing SHA-1 over UTF-16BE(password) + "Mighty Aphrodite" + the body; keys are protected
 * with Sun's JKS key protector (SHA-1 keystream XOR, salt 20 bytes, check 20 bytes).
 * A keystore that is really PKCS#12 (keytool's default since Java 9) is handed back as such.
 */
import { createHash, createPrivateKey, timingSafeEqual } from 'node:crypto';
import { children, oidText, readTlv, toPem } from './der.js';

const MAGIC = 0xfeedfeed;
const KEY_PROTECTOR_OID = '1.3.6.1.4.1.42.2.17.1.1';

export class KeystoreError extends Error {
  constructor(
    readonly reason: 'not-jks' | 'wrong-password' | 'no-key' | 'no-alias' | 'corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'KeystoreError';
  }
}

export interface KeystoreEntry {
  alias: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  /** Leaf first, as PEM. */
  chainPem: string[];
}

export function isJks(buffer: Buffer): boolean {
  return buffer.length >= 4 && buffer.readUInt32BE(0) === MAGIC;
}

function passwordBytes(password: string): Buffer {
  const bytes = Buffer.alloc(password.length * 2);
  for (let i = 0; i < password.length; i++) bytes.writeUInt16BE(password.charCodeAt(i), i * 2);
  return bytes;
}

function sha1(...parts: Buffer[]): Buffer {
  const hash = createHash('sha1');
  for (const p of parts) hash.update(p);
  return hash.digest();
}

/** Reads the key entry `alias` (or the only key entry) of a JKS keystore. */
export function readJks(buffer: Buffer, password: string, alias?: string): KeystoreEntry {
  if (!isJks(buffer)) throw new KeystoreError('not-jks', 'not a JKS keystore');
  const pass = passwordBytes(password);
  if (buffer.length < 32) throw new KeystoreError('corrupt', 'the keystore is truncated');
  const body = buffer.subarray(0, buffer.length - 20);
  const digest = sha1(pass, Buffer.from('Mighty Aphrodite', 'utf8'), body);
  if (!timingSafeEqual(digest, buffer.subarray(buffer.length - 20))) {
    throw new KeystoreError('wrong-password', 'wrong keystore password (or a damaged file)');
  }

  let offset = 4;
  const u32 = () => {
    const v = body.readUInt32BE(offset);
    offset += 4;
    return v;
  };
  const utf = () => {
    const length = body.readUInt16BE(offset);
    const text = body.toString('utf8', offset + 2, offset + 2 + length);
    offset += 2 + length;
    return text;
  };
  const bytes = (length: number) => {
    const value = body.subarray(offset, offset + length);
    offset += length;
    return value;
  };

  const keys: { alias: string; protectedKey: Buffer; chain: Buffer[] }[] = [];
  try {
    const version = u32();
    if (version !== 2) throw new KeystoreError('corrupt', `unsupported JKS version ${version}`);
    const count = u32();
    for (let i = 0; i < count; i++) {
      const tag = u32();
      const entryAlias = utf();
      offset += 8; // timestamp
      if (tag === 1) {
        const protectedKey = bytes(u32());
        const chain: Buffer[] = [];
        const chainLength = u32();
        for (let c = 0; c < chainLength; c++) {
          utf(); // "X.509"
          chain.push(bytes(u32()));
        }
        keys.push({ alias: entryAlias, protectedKey, chain });
      } else if (tag === 2) {
        utf();
        bytes(u32());
      } else {
        throw new KeystoreError('corrupt', `unknown keystore entry type ${tag}`);
      }
    }
  } catch (error) {
    if (error instanceof KeystoreError) throw error;
    throw new KeystoreError('corrupt', 'the keystore is damaged');
  }

  const entry = alias === undefined ? (keys.length === 1 ? keys[0] : undefined) : keys.find((k) => k.alias === alias);
  if (!entry) {
    if (alias !== undefined) throw new KeystoreError('no-alias', `no key entry "${alias}" (the keystore has: ${keys.map((k) => k.alias).join(', ') || 'none'})`);
    throw new KeystoreError('no-key', keys.length ? `several key entries (${keys.map((k) => k.alias).join(', ')}); set alias` : 'the keystore has no private key entry');
  }

  // EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }
  const [algorithm, encrypted] = children(readTlv(entry.protectedKey).value);
  if (!algorithm || !encrypted || oidText(children(algorithm.value)[0]!.value) !== KEY_PROTECTOR_OID) {
    throw new KeystoreError('corrupt', 'the key is protected with an algorithm other than the JKS key protector');
  }
  const data = encrypted.value;
  const salt = data.subarray(0, 20);
  const cipher = data.subarray(20, data.length - 20);
  const check = data.subarray(data.length - 20);
  const plain = Buffer.alloc(cipher.length);
  let block = salt;
  for (let i = 0; i < cipher.length; i += 20) {
    block = sha1(pass, block);
    for (let j = 0; j < 20 && i + j < cipher.length; j++) plain[i + j] = cipher[i + j]! ^ block[j]!;
  }
  if (!timingSafeEqual(sha1(pass, plain), check)) {
    throw new KeystoreError('wrong-password', 'the key password differs from the store password');
  }
  const key = createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
  return {
    alias: entry.alias,
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
    chainPem: entry.chain.map((der) => toPem('CERTIFICATE', der)),
  };
}
