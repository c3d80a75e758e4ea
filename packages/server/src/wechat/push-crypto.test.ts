/**
 * Message push crypto (docs/wechat-api.md §11.2–11.4).
 *
 * The fixed vector was computed once with the openssl CLI (`openssl enc -aes-256-cbc -nopad`
 * over a hand-padded plaintext); the rest are made by the sandbox's encryptor, which is written
 * independently of the server's decryption, so each checks the other.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { encryptPush } from 'minigate-sandbox';
import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.js';
import { decryptPushMessage, encryptPushMessage, verifyPushSignature } from './push-crypto.js';

const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const APPID = 'wx0123456789abcdef';
const TOKEN = 'push-token';

/** openssl, random = "0123456789abcdef": 108 bytes of content, so 32 bytes of padding (a full block). */
const OPENSSL_VECTOR = {
  message: '{"ToUserName":"gh_97417a04a28d","MsgType":"event","Event":"debug_demo","debug_str":"xxxx"}',
  encrypt:
    'Q3stYC6hdFzMh9T8HCvyDHJhObWJ983AJeLpLZTClD5Sy4bj78QBurLjrkiho/tlRi8axpGtdskJ2D/jdfUAKLGVFt5tC63XnxHSaoixYt5S' +
    'cyoWZel2EZOa7aVBr/cSOHUyc1qvvZoMAiwCB6JkQuoKxesHPRq9AxbHHHA2e2xZLYT2cbYFKA7j/JllMz8AeKd4ccwCefUmno/Fm8wK2Q==',
};

const sha1 = (parts: string[]) => createHash('sha1').update([...parts].sort().join('')).digest('hex');

function envelope(encrypt: string, timestamp = '1714037059', nonce = '1320562132') {
  return { token: TOKEN, encodingAESKey: KEY, appid: APPID, encrypt, timestamp, nonce, msgSignature: sha1([TOKEN, timestamp, nonce, encrypt]) };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).code;
  }
  throw new Error('expected an error');
}

/** The pad the sender used, found by decrypting without removing it. */
function padOf(encrypt: string): number {
  const key = Buffer.from(`${KEY}=`, 'base64');
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(Buffer.from(encrypt, 'base64')), decipher.final()]);
  return plain[plain.length - 1]!;
}

describe('verifyPushSignature', () => {
  it('accepts sha1 of the sorted token, timestamp and nonce, in either case', () => {
    const signature = sha1([TOKEN, '1714037059', '1320562132']);
    expect(verifyPushSignature({ token: TOKEN, timestamp: '1714037059', nonce: '1320562132', signature })).toBe(true);
    expect(verifyPushSignature({ token: TOKEN, timestamp: '1714037059', nonce: '1320562132', signature: signature.toUpperCase() })).toBe(true);
  });

  it('sorts as strings, not numbers', () => {
    // "9" sorts after "10" as a string; a numeric sort would give another signature.
    const signature = createHash('sha1').update(['10', '9', 'tok'].sort().join('')).digest('hex');
    expect(['10', '9', 'tok'].sort()).toEqual(['10', '9', 'tok']);
    expect(verifyPushSignature({ token: 'tok', timestamp: '9', nonce: '10', signature })).toBe(true);
  });

  it('refuses a wrong token, an altered nonce, and signatures that are not 40 hex digits', () => {
    const signature = sha1([TOKEN, '1714037059', '1320562132']);
    expect(verifyPushSignature({ token: 'other', timestamp: '1714037059', nonce: '1320562132', signature })).toBe(false);
    expect(verifyPushSignature({ token: TOKEN, timestamp: '1714037059', nonce: '1320562133', signature })).toBe(false);
    for (const bad of ['', signature.slice(0, 39), `${signature}0`, 'z'.repeat(40), undefined as unknown as string]) {
      expect(verifyPushSignature({ token: TOKEN, timestamp: '1714037059', nonce: '1320562132', signature: bad })).toBe(false);
    }
  });
});

describe('decryptPushMessage', () => {
  it('opens the openssl vector, whose padding is a whole 32-byte block (Node auto-padding fails on it)', () => {
    expect(padOf(OPENSSL_VECTOR.encrypt)).toBe(32);
    expect(decryptPushMessage(envelope(OPENSSL_VECTOR.encrypt))).toBe(OPENSSL_VECTOR.message);
    // The trap the issue warns about: 16-byte PKCS#7 rejects it.
    const key = Buffer.from(`${KEY}=`, 'base64');
    const auto = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
    expect(() => Buffer.concat([auto.update(Buffer.from(OPENSSL_VECTOR.encrypt, 'base64')), auto.final()])).toThrow();
  });

  it('opens what the sandbox encrypts, for every padding from 1 to 32, JSON, XML and Chinese text', () => {
    const seen = new Set<number>();
    for (let n = 0; n < 64; n++) {
      const message = n % 2 ? `<xml><Content><![CDATA[你好${'x'.repeat(n)}]]></Content></xml>` : JSON.stringify({ Content: `你好${'y'.repeat(n)}` });
      const encrypt = encryptPush(KEY, APPID, message);
      seen.add(padOf(encrypt));
      expect(decryptPushMessage(envelope(encrypt))).toBe(message);
    }
    expect([...seen].filter((p) => p > 16).length).toBeGreaterThan(0);
    expect(seen.size).toBe(32);
  });

  it('round-trips its own envelopes, with the given or a fresh timestamp and nonce', () => {
    const sealed = encryptPushMessage({ token: TOKEN, encodingAESKey: KEY, appid: APPID, message: '{"a":1}', timestamp: '1700000000', nonce: '42' });
    expect(sealed.timestamp).toBe('1700000000');
    expect(sealed.nonce).toBe('42');
    expect(sealed.msgSignature).toBe(sha1([TOKEN, '1700000000', '42', sealed.encrypt]));
    expect(decryptPushMessage({ token: TOKEN, encodingAESKey: KEY, appid: APPID, ...sealed })).toBe('{"a":1}');
    const fresh = encryptPushMessage({ token: TOKEN, encodingAESKey: KEY, appid: APPID, message: '' });
    expect(Math.abs(Number(fresh.timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(decryptPushMessage({ token: TOKEN, encodingAESKey: KEY, appid: APPID, ...fresh })).toBe('');
    expect(Buffer.from(fresh.encrypt, 'base64').length % 32).toBe(0);
  });

  it('says PUSH_SIGNATURE_MISMATCH for a wrong msg_signature, token or altered ciphertext', () => {
    const good = envelope(OPENSSL_VECTOR.encrypt);
    expect(codeOf(() => decryptPushMessage({ ...good, msgSignature: sha1(['x']) }))).toBe('PUSH_SIGNATURE_MISMATCH');
    expect(codeOf(() => decryptPushMessage({ ...good, token: 'other' }))).toBe('PUSH_SIGNATURE_MISMATCH');
    expect(codeOf(() => decryptPushMessage({ ...good, encrypt: `A${good.encrypt.slice(1)}` }))).toBe('PUSH_SIGNATURE_MISMATCH');
  });

  it('says PUSH_APPID_MISMATCH for a message sealed for another app', () => {
    const encrypt = encryptPush(KEY, 'wxfedcba9876543210', '{"a":1}');
    expect(codeOf(() => decryptPushMessage(envelope(encrypt)))).toBe('PUSH_APPID_MISMATCH');
  });

  it('says PUSH_DECRYPT_FAILED for another key, bad base64, torn blocks and bad padding', () => {
    const otherKey = encryptPush('ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210abcdefg', APPID, '{"a":1}');
    expect(codeOf(() => decryptPushMessage(envelope(otherKey)))).toBe('PUSH_DECRYPT_FAILED');
    expect(codeOf(() => decryptPushMessage(envelope('not base64!')))).toBe('PUSH_DECRYPT_FAILED');
    expect(codeOf(() => decryptPushMessage(envelope(OPENSSL_VECTOR.encrypt.slice(0, 20))))).toBe('PUSH_DECRYPT_FAILED');
    expect(codeOf(() => decryptPushMessage(envelope('')))).toBe('PUSH_DECRYPT_FAILED');
    expect(codeOf(() => decryptPushMessage({ ...envelope(OPENSSL_VECTOR.encrypt), encodingAESKey: 'short' }))).toBe('PUSH_DECRYPT_FAILED');

    // Well-formed AES, but the padding bytes disagree, the pad is 0 or 33, or the length runs past the end.
    const key = Buffer.from(`${KEY}=`, 'base64');
    const seal = (plain: Buffer) => {
      const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
      cipher.setAutoPadding(false);
      return Buffer.concat([cipher.update(plain), cipher.final()]).toString('base64');
    };
    const head = Buffer.concat([Buffer.alloc(16, 1), Buffer.from([0, 0, 0, 2]), Buffer.from('{}'), Buffer.from(APPID)]); // 40 bytes
    const padded = (pad: Buffer) => seal(Buffer.concat([head, pad]));
    expect(decryptPushMessage(envelope(padded(Buffer.alloc(24, 24))))).toBe('{}');
    expect(codeOf(() => decryptPushMessage(envelope(padded(Buffer.concat([Buffer.alloc(23, 7), Buffer.from([24])])))))).toBe('PUSH_DECRYPT_FAILED');
    expect(codeOf(() => decryptPushMessage(envelope(padded(Buffer.alloc(24, 0)))))).toBe('PUSH_DECRYPT_FAILED');
    expect(codeOf(() => decryptPushMessage(envelope(seal(Buffer.concat([head, Buffer.alloc(24, 33)])))))).toBe('PUSH_DECRYPT_FAILED');
    const long = Buffer.concat([Buffer.alloc(16, 1), Buffer.from([0, 0, 1, 0]), Buffer.from('{}'), Buffer.from(APPID), Buffer.alloc(24, 24)]);
    expect(codeOf(() => decryptPushMessage(envelope(seal(long))))).toBe('PUSH_DECRYPT_FAILED');
  });

  it('never puts the key, token or plaintext into its errors', () => {
    const encrypt = encryptPush(KEY, 'wxfedcba9876543210', '{"secret":"value"}');
    let caught: AppError | undefined;
    try {
      decryptPushMessage(envelope(encrypt));
    } catch (error) {
      caught = error as AppError;
    }
    const text = JSON.stringify({ message: caught?.message, details: caught?.details, stack: caught?.stack });
    expect(caught?.code).toBe('PUSH_APPID_MISMATCH');
    for (const secret of [KEY, TOKEN, 'value']) expect(text).not.toContain(secret);
  });
});
