/**
 * Open-data crypto (docs/wechat-api.md §3.1, §6, §7; docs/reliability.md#login-and-wechat-calls).
 *
 * Vectors: WeChat's public WXBizDataCrypt demo vector, the public rawData signature example, and
 * values recomputed once with the openssl CLI; the rest are built here with node:crypto or by the
 * sandbox's encryptor, which is written independently of the server's decryption.
 */
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { ERRORS, type ErrorCode } from 'minigate-protocol';
import { encryptUserData, sessionKeyHmac, type SandboxUserInfo } from 'minigate-sandbox';
import { describe, expect, it } from 'vitest';
import { AppError } from '../core/errors.js';
import { decryptOpenData, sessionKeySignature, verifyRawDataSignature, type DecryptOpenDataInput } from './crypto.js';

// ---- WeChat's official WXBizDataCrypt demo vector (public test data) ---------------------------

const DEMO = {
  appid: 'wx4f4bc4dec97d474b',
  sessionKey: 'tiihtNczf5v6AKRyjwEUhQ==',
  iv: 'r7BXXKkLb8qrSNn05n0qiA==',
  encryptedData:
    'CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+' +
    '3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6' +
    '/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs' +
    '8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns' +
    '/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG' +
    '20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==',
} as const;

/** The demo's plaintext, as the demo documents it (golden). */
const DEMO_PLAINTEXT = {
  openId: 'oGZUI0egBJY1zhBYw2KhdUfwVJJE',
  nickName: 'Band',
  gender: 1,
  language: 'zh_CN',
  city: 'Guangzhou',
  province: 'Guangdong',
  country: 'CN',
  avatarUrl:
    'http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0',
  unionId: 'ocMvos6NjeKLIBqg5Mr9QjxrP1FA',
  watermark: { timestamp: 1477314187, appid: 'wx4f4bc4dec97d474b' },
};

/** WeChat's public rawData signature example (signature.en.md); sha1 rechecked with `openssl dgst -sha1`. */
const SIGNATURE_EXAMPLE = {
  rawData:
    '{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN",' +
    '"avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}',
  sessionKey: 'HyVFkGl5F5OQWJZZaNzBBg==',
  signature: '75e81ceda165f4ffa64f4068af58c64b8f54b88c',
} as const;

/** `printf '' | openssl dgst -sha256 -hmac 'tiihtNczf5v6AKRyjwEUhQ=='` (key = the base64 text). */
const OPENSSL_HMAC_OF_KEY_TEXT = '7154f9f8b4b76b92f541cbf0e37d48840fa06e5e42da92a6f80168a1516a4735';
/** Same, keyed with the 16 decoded bytes (`-mac HMAC -macopt hexkey:…`): what a wrong implementation gives. */
const OPENSSL_HMAC_OF_KEY_BYTES = '96502defeaf026b55cdc22f97e6c092b0959a2f92c5ec30c571353bb88391bf0';
/** `printf '%s' '{"nickName":"微信用户","city":"广州"}tiihtNczf5v6AKRyjwEUhQ==' | openssl dgst -sha1` */
const NON_ASCII_RAW = '{"nickName":"微信用户","city":"广州"}';
const NON_ASCII_SHA1 = '3ceea4844dd981af1756a625e97e9013a6f21880';

// ---- helpers -------------------------------------------------------------------------------------

const APPID = 'wx0123456789abcdef';
const OTHER_APPID = 'wxfedcba9876543210';

const USER_INFO: SandboxUserInfo = {
  nickName: '小明 🐼',
  avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/abc/132',
  gender: 1,
  language: 'zh_CN',
  city: 'Guangzhou',
  province: 'Guangdong',
  country: 'CN',
};

function newSessionKey(): string {
  return randomBytes(16).toString('base64');
}

/** AES-128-CBC + PKCS#7 of any plaintext, built here (not with the code under test). */
function encryptText(plaintext: string | Buffer, sessionKey: string, iv = randomBytes(16)) {
  const cipher = createCipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), iv);
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { encryptedData: data.toString('base64'), iv: iv.toString('base64') };
}

function encryptJson(value: unknown, sessionKey: string) {
  return encryptText(JSON.stringify(value), sessionKey);
}

/** The AppError `fn` throws; fails the test when it returns or throws anything else. */
function appErrorOf(fn: () => unknown): AppError {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    expect(error, `threw ${String(error)}`).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error(`expected an AppError, got a result: ${JSON.stringify(result)?.slice(0, 200)}`);
}

function expectCode(fn: () => unknown, code: ErrorCode): AppError {
  const error = appErrorOf(fn);
  expect(error.code).toBe(code);
  expect(error.message).toBe(ERRORS[code].message);
  return error;
}

/** The generic decrypt failure: registry code and message, nothing attached that tells causes apart. */
function expectGenericDecryptFailure(fn: () => unknown): void {
  const error = expectCode(fn, 'AUTH_DECRYPT_FAILED');
  expect(error.cause).toBeUndefined();
  expect(error.details).toBeUndefined();
  expect(error.message).not.toMatch(/padding|bad decrypt|json|unexpected|token|base64|length/i);
}

function flipBit(base64: string, byteIndex: number, bit: number): string {
  const bytes = Buffer.from(base64, 'base64');
  bytes[byteIndex]! ^= 1 << bit;
  return bytes.toString('base64');
}

// ---- decryptOpenData -----------------------------------------------------------------------------

describe('decryptOpenData: known vectors (C1)', () => {
  it("decrypts WeChat's official WXBizDataCrypt demo vector to the documented JSON (golden)", () => {
    const data = decryptOpenData({ ...DEMO });
    expect(data).toStrictEqual(DEMO_PLAINTEXT);
    // Golden text, key order included, so a change in parsing or normalising shows up.
    expect(JSON.stringify(data)).toBe(
      '{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN",' +
        '"city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":' +
        '"http://wx.qlogo.cn/mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/0",' +
        '"unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}',
    );
  });

  it('decrypts the demo vector with an age check when "now" is within the window', () => {
    const now = (DEMO_PLAINTEXT.watermark.timestamp + 60) * 1000;
    expect(decryptOpenData({ ...DEMO, maxAgeSeconds: 600, now })).toStrictEqual(DEMO_PLAINTEXT);
  });

  it("decrypts vectors made by the sandbox's encryptor to the given userInfo plus the watermark", () => {
    for (let i = 0; i < 20; i++) {
      const sessionKey = newSessionKey();
      const timestampSeconds = 1_700_000_000 + i;
      const userInfo = { ...USER_INFO, nickName: `${USER_INFO.nickName} #${i}`, gender: i % 3 };
      const vector = encryptUserData({ appid: APPID, sessionKey, userInfo, timestampSeconds, random: randomBytes });
      const data = decryptOpenData({ appid: APPID, sessionKey, encryptedData: vector.encryptedData, iv: vector.iv });
      expect(data).toStrictEqual({ ...userInfo, watermark: { timestamp: timestampSeconds, appid: APPID } });
      // The rawData/signature pair made alongside verifies with the same key.
      expect(verifyRawDataSignature({ rawData: vector.rawData, sessionKey, signature: vector.signature })).toBe(true);
    }
  });

  it('keeps unknown fields (WeChat may add fields; §6)', () => {
    const sessionKey = newSessionKey();
    const plain = { nickName: 'x', futureField: { a: [1, 2] }, watermark: { appid: APPID, timestamp: 1 } };
    const data = decryptOpenData({ appid: APPID, sessionKey, ...encryptJson(plain, sessionKey) });
    expect(data).toStrictEqual(plain);
  });
});

describe('decryptOpenData: watermark (C2)', () => {
  it('rejects the demo vector when our appid is another one', () => {
    expectCode(() => decryptOpenData({ ...DEMO, appid: APPID }), 'AUTH_WATERMARK_MISMATCH');
  });

  it('rejects sandbox data encrypted for another appid', () => {
    const sessionKey = newSessionKey();
    const vector = encryptUserData({
      appid: OTHER_APPID,
      sessionKey,
      userInfo: USER_INFO,
      timestampSeconds: 1_700_000_000,
      random: randomBytes,
    });
    expectCode(
      () => decryptOpenData({ appid: APPID, sessionKey, encryptedData: vector.encryptedData, iv: vector.iv }),
      'AUTH_WATERMARK_MISMATCH',
    );
    // ...and the same data passes for the appid it was made for.
    expect(decryptOpenData({ appid: OTHER_APPID, sessionKey, encryptedData: vector.encryptedData, iv: vector.iv }).nickName).toBe(
      USER_INFO.nickName,
    );
  });

  it('rejects a watermark that spells the field "appId" instead of "appid"', () => {
    const sessionKey = newSessionKey();
    const input = encryptJson({ nickName: 'x', watermark: { appId: APPID, timestamp: 1_700_000_000 } }, sessionKey);
    expectCode(() => decryptOpenData({ appid: APPID, sessionKey, ...input }), 'AUTH_WATERMARK_MISMATCH');
  });

  it('rejects data without a watermark', () => {
    const sessionKey = newSessionKey();
    const input = encryptJson({ nickName: 'x', appid: APPID, timestamp: 1_700_000_000 }, sessionKey);
    expectCode(() => decryptOpenData({ appid: APPID, sessionKey, ...input }), 'AUTH_WATERMARK_MISMATCH');
  });

  it.each([
    ['null', null],
    ['a string', APPID],
    ['an array', [APPID]],
    ['an empty object', {}],
    ['appid as a number', { appid: 123, timestamp: 1 }],
    ['appid null', { appid: null, timestamp: 1 }],
    ['appid with a different case', { appid: APPID.toUpperCase(), timestamp: 1 }],
    ['appid with whitespace', { appid: ` ${APPID}`, timestamp: 1 }],
  ])('rejects a watermark that is %s', (_name, watermark) => {
    const sessionKey = newSessionKey();
    const input = encryptJson({ nickName: 'x', watermark }, sessionKey);
    expectCode(() => decryptOpenData({ appid: APPID, sessionKey, ...input }), 'AUTH_WATERMARK_MISMATCH');
  });

  it('does not take an appid from a "__proto__" key', () => {
    const sessionKey = newSessionKey();
    for (const text of [
      `{"nickName":"x","watermark":{"__proto__":{"appid":"${APPID}"},"timestamp":1}}`,
      `{"nickName":"x","__proto__":{"watermark":{"appid":"${APPID}","timestamp":1}}}`,
    ]) {
      const input = encryptText(text, sessionKey);
      expectCode(() => decryptOpenData({ appid: APPID, sessionKey, ...input }), 'AUTH_WATERMARK_MISMATCH');
    }
  });
});

describe('decryptOpenData: watermark age (C3)', () => {
  const sessionKey = newSessionKey();
  const T = 1_700_000_000;
  const vector = encryptUserData({ appid: APPID, sessionKey, userInfo: USER_INFO, timestampSeconds: T, random: randomBytes });
  const base: DecryptOpenDataInput = { appid: APPID, sessionKey, encryptedData: vector.encryptedData, iv: vector.iv };

  it('rejects data older than maxAgeSeconds with AUTH_DATA_EXPIRED', () => {
    expectCode(() => decryptOpenData({ ...base, maxAgeSeconds: 600, now: (T + 601) * 1000 }), 'AUTH_DATA_EXPIRED');
    expectCode(() => decryptOpenData({ ...base, maxAgeSeconds: 600, now: (T + 86_400 * 365) * 1000 }), 'AUTH_DATA_EXPIRED');
  });

  it('accepts data newer than maxAgeSeconds (and exactly at the limit)', () => {
    expect(decryptOpenData({ ...base, maxAgeSeconds: 600, now: (T + 599) * 1000 }).nickName).toBe(USER_INFO.nickName);
    expect(decryptOpenData({ ...base, maxAgeSeconds: 600, now: (T + 600) * 1000 }).nickName).toBe(USER_INFO.nickName);
    expect(decryptOpenData({ ...base, maxAgeSeconds: 600, now: T * 1000 }).nickName).toBe(USER_INFO.nickName);
  });

  it('does no age check without maxAgeSeconds', () => {
    expect(decryptOpenData({ ...base, now: (T + 86_400 * 3650) * 1000 }).nickName).toBe(USER_INFO.nickName);
  });

  it('uses Date.now() when "now" is not given', () => {
    // The demo vector is from 2016.
    expectCode(() => decryptOpenData({ ...DEMO, maxAgeSeconds: 86_400 }), 'AUTH_DATA_EXPIRED');
    const fresh = encryptUserData({
      appid: APPID,
      sessionKey,
      userInfo: USER_INFO,
      timestampSeconds: Math.floor(Date.now() / 1000),
      random: randomBytes,
    });
    expect(decryptOpenData({ appid: APPID, sessionKey, ...fresh, maxAgeSeconds: 600 }).nickName).toBe(USER_INFO.nickName);
  });

  it.each([
    ['missing', { appid: APPID }],
    ['a string', { appid: APPID, timestamp: String(T) }],
    ['null', { appid: APPID, timestamp: null }],
  ])('treats a timestamp that is %s as expired when maxAgeSeconds is given', (_name, watermark) => {
    const input = encryptJson({ nickName: 'x', watermark }, sessionKey);
    expectCode(
      () => decryptOpenData({ appid: APPID, sessionKey, ...input, maxAgeSeconds: 600, now: T * 1000 }),
      'AUTH_DATA_EXPIRED',
    );
    // Without an age check the same data passes: the timestamp is only needed for the check.
    expect(decryptOpenData({ appid: APPID, sessionKey, ...input }).nickName).toBe('x');
  });
});

describe('decryptOpenData: stale session key (C4)', () => {
  it('fails cleanly with AUTH_DECRYPT_FAILED for the demo vector and a different key', () => {
    expectGenericDecryptFailure(() => decryptOpenData({ ...DEMO, sessionKey: 'HyVFkGl5F5OQWJZZaNzBBg==' }));
  });

  it('never returns data for 50 random wrong keys; always an AppError with a re-login code', () => {
    const sessionKey = newSessionKey();
    const vector = encryptUserData({ appid: APPID, sessionKey, userInfo: USER_INFO, timestampSeconds: 1, random: randomBytes });
    for (let i = 0; i < 50; i++) {
      const wrongKey = newSessionKey();
      if (wrongKey === sessionKey) continue;
      const error = appErrorOf(() =>
        decryptOpenData({ appid: APPID, sessionKey: wrongKey, encryptedData: vector.encryptedData, iv: vector.iv }),
      );
      // Garbage never parses as JSON, so in practice this is always AUTH_DECRYPT_FAILED.
      expect(['AUTH_DECRYPT_FAILED', 'AUTH_WATERMARK_MISMATCH']).toContain(error.code);
      expect(error.message).toBe(ERRORS[error.code].message);
    }
  });
});

describe('decryptOpenData: malformed input (C5)', () => {
  const good = { ...DEMO };

  it.each<[string, Partial<Record<keyof DecryptOpenDataInput, unknown>>]>([
    ['empty encryptedData', { encryptedData: '' }],
    ['empty iv', { iv: '' }],
    ['empty sessionKey', { sessionKey: '' }],
    ['encryptedData with characters outside base64', { encryptedData: `${DEMO.encryptedData.slice(0, -4)}!!==` }],
    ['encryptedData in URL-safe base64', { encryptedData: DEMO.encryptedData.replace(/\+/g, '-').replace(/\//g, '_') }],
    ['encryptedData whose "+" became spaces (form decoding)', { encryptedData: DEMO.encryptedData.replace(/\+/g, ' ') }],
    ['encryptedData with a newline', { encryptedData: `${DEMO.encryptedData.slice(0, 64)}\n${DEMO.encryptedData.slice(64)}` }],
    ['encryptedData with a length that is not a multiple of 4', { encryptedData: DEMO.encryptedData.slice(0, -1) }],
    ['encryptedData with padding in the middle', { encryptedData: `AAAA==AA${DEMO.encryptedData.slice(8)}` }],
    ['iv of 12 bytes', { iv: randomBytes(12).toString('base64') }],
    ['iv of 17 bytes', { iv: randomBytes(17).toString('base64') }],
    ['iv of 32 bytes', { iv: randomBytes(32).toString('base64') }],
    ['iv that is not base64', { iv: 'r7BXXKkLb8qrSNn05n0qi%==' }],
    ['sessionKey of 24 bytes (AES-192 size)', { sessionKey: randomBytes(24).toString('base64') }],
    ['sessionKey of 32 bytes (AES-256 size)', { sessionKey: randomBytes(32).toString('base64') }],
    ['sessionKey of 15 bytes', { sessionKey: randomBytes(15).toString('base64') }],
    ['sessionKey that is not base64', { sessionKey: 'tiihtNczf5v6AKRy*wEUhQ==' }],
    ['ciphertext truncated by one block', { encryptedData: Buffer.from(DEMO.encryptedData, 'base64').subarray(0, -16).toString('base64') }],
    ['ciphertext truncated to one block', { encryptedData: Buffer.from(DEMO.encryptedData, 'base64').subarray(0, 16).toString('base64') }],
    ['ciphertext not a multiple of 16 bytes', { encryptedData: Buffer.from(DEMO.encryptedData, 'base64').subarray(0, -5).toString('base64') }],
    ['ciphertext with one extra byte', { encryptedData: Buffer.concat([Buffer.from(DEMO.encryptedData, 'base64'), Buffer.from([0])]).toString('base64') }],
    ['ciphertext with one extra random block', { encryptedData: Buffer.concat([Buffer.from(DEMO.encryptedData, 'base64'), randomBytes(16)]).toString('base64') }],
    ['ciphertext with its first block removed (IV shift)', { encryptedData: Buffer.from(DEMO.encryptedData, 'base64').subarray(16).toString('base64') }],
    ['the iv as encryptedData', { encryptedData: DEMO.iv }],
    ['encryptedData as a number', { encryptedData: 12345678 }],
    ['encryptedData as null', { encryptedData: null }],
    ['encryptedData as undefined', { encryptedData: undefined }],
    ['encryptedData as a Buffer', { encryptedData: Buffer.from(DEMO.encryptedData, 'base64') }],
    ['encryptedData as an array', { encryptedData: [DEMO.encryptedData] }],
    ['encryptedData as an object with toString', { encryptedData: { toString: () => DEMO.encryptedData } }],
    ['iv as a number', { iv: 16 }],
    ['iv as a Buffer', { iv: Buffer.from(DEMO.iv, 'base64') }],
    ['sessionKey as undefined', { sessionKey: undefined }],
    ['sessionKey as a Buffer', { sessionKey: Buffer.from(DEMO.sessionKey, 'base64') }],
    ['sessionKey as an object', { sessionKey: {} }],
  ])('rejects %s with the generic AUTH_DECRYPT_FAILED', (_name, override) => {
    expectGenericDecryptFailure(() => decryptOpenData({ ...good, ...override } as unknown as DecryptOpenDataInput));
  });

  it.each([
    ['invalid JSON', '{"nickName":'],
    ['a JSON array', `[{"watermark":{"appid":"${APPID}","timestamp":1}}]`],
    ['a JSON string', '"hello"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['an empty plaintext', ''],
    ['invalid UTF-8 around JSON', Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"')])],
  ])('rejects a plaintext that is %s with AUTH_DECRYPT_FAILED', (_name, plaintext) => {
    const sessionKey = newSessionKey();
    const input = encryptText(plaintext, sessionKey);
    expectGenericDecryptFailure(() => decryptOpenData({ appid: APPID, sessionKey, ...input }));
  });

  it('rejects bad PKCS#7 padding with the same error as everything else', () => {
    const sessionKey = newSessionKey();
    const iv = randomBytes(16);
    const json = Buffer.from(JSON.stringify({ a: 1, watermark: { appid: APPID, timestamp: 1 } }));
    const key = Buffer.from(sessionKey, 'base64');
    const paddings = [
      Buffer.alloc(16, 0), // pad byte 0
      Buffer.alloc(16, 17), // pad byte larger than the block
      Buffer.from([...Array<number>(15).fill(16), 15]), // inconsistent bytes
    ];
    for (const padding of paddings) {
      const padLength = 16 - (json.length % 16);
      const body = Buffer.concat([json, Buffer.alloc(padLength, 0x20)]); // whole blocks of JSON + spaces
      const cipher = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false);
      const data = Buffer.concat([cipher.update(Buffer.concat([body, padding])), cipher.final()]);
      expectGenericDecryptFailure(() =>
        decryptOpenData({ appid: APPID, sessionKey, encryptedData: data.toString('base64'), iv: iv.toString('base64') }),
      );
    }
  });

  it('flipping any single bit of the demo ciphertext or iv never throws anything but an AppError', () => {
    // CBC has no integrity check: a flip garbles one block and flips one bit of the next. Most
    // flips break the JSON or the padding; some land inside a string and still decrypt. What must
    // hold is that nothing but the registry's errors ever escapes.
    const outcomes = { AUTH_DECRYPT_FAILED: 0, AUTH_WATERMARK_MISMATCH: 0, returned: 0 };
    const dataLength = Buffer.from(DEMO.encryptedData, 'base64').length;
    const cases: DecryptOpenDataInput[] = [];
    for (let byte = 0; byte < dataLength; byte++) {
      cases.push({ ...DEMO, encryptedData: flipBit(DEMO.encryptedData, byte, byte % 8) });
    }
    for (let byte = 0; byte < 16; byte++) cases.push({ ...DEMO, iv: flipBit(DEMO.iv, byte, (byte * 3) % 8) });
    for (const input of cases) {
      let error: unknown;
      try {
        const data = decryptOpenData(input);
        expect(typeof data === 'object' && data !== null && !Array.isArray(data)).toBe(true);
        outcomes.returned++;
        continue;
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(AppError);
      const code = (error as AppError).code;
      expect(['AUTH_DECRYPT_FAILED', 'AUTH_WATERMARK_MISMATCH']).toContain(code);
      expect((error as AppError).message).toBe(ERRORS[code].message);
      expect((error as AppError).cause).toBeUndefined();
      outcomes[code as 'AUTH_DECRYPT_FAILED' | 'AUTH_WATERMARK_MISMATCH']++;
    }
    expect(outcomes.AUTH_DECRYPT_FAILED + outcomes.AUTH_WATERMARK_MISMATCH + outcomes.returned).toBe(cases.length);
    // Most flips are caught.
    expect(outcomes.AUTH_DECRYPT_FAILED).toBeGreaterThan(cases.length / 2);
  });

  it('flips in the last block always break the padding or the JSON (deterministic for the demo vector)', () => {
    const data = Buffer.from(DEMO.encryptedData, 'base64');
    // A flip in the last ciphertext block garbles the whole last plaintext block, which holds the
    // watermark's end and the padding.
    for (let byte = data.length - 16; byte < data.length; byte++) {
      for (const bit of [0, 7]) {
        expectGenericDecryptFailure(() => decryptOpenData({ ...DEMO, encryptedData: flipBit(DEMO.encryptedData, byte, bit) }));
      }
    }
  });

  it('a flip of the first iv byte turns "{" into something else: AUTH_DECRYPT_FAILED', () => {
    for (let bit = 0; bit < 8; bit++) {
      expectGenericDecryptFailure(() => decryptOpenData({ ...DEMO, iv: flipBit(DEMO.iv, 0, bit) }));
    }
  });

  it('KNOWN LIMITATION of the format: iv bit flips inside a string give altered data that still passes', () => {
    // encryptedData has no MAC: whoever holds it can rewrite plaintext bytes of the first block by
    // changing the iv, without the key. Block 0 of the demo is `{"openId":"oGZUI`, so the first 5
    // characters of openId can be chosen freely. Identity must come from code2Session, never from
    // decrypted data.
    const iv = Buffer.from(DEMO.iv, 'base64');
    const want = Buffer.from('EVIL!');
    const have = Buffer.from('oGZUI');
    for (let i = 0; i < 5; i++) iv[11 + i]! ^= have[i]! ^ want[i]!;
    const data = decryptOpenData({ ...DEMO, iv: iv.toString('base64') });
    expect(data.openId).toBe('EVIL!0egBJY1zhBYw2KhdUfwVJJE');
    expect(data.watermark).toStrictEqual(DEMO_PLAINTEXT.watermark);
  });

  it('gives the same error for a padding failure, a JSON failure and a base64 failure (no oracle in the error)', () => {
    const sessionKey = newSessionKey();
    const errors = [
      appErrorOf(() => decryptOpenData({ ...DEMO, encryptedData: flipBit(DEMO.encryptedData, Buffer.from(DEMO.encryptedData, 'base64').length - 1, 0) })),
      appErrorOf(() => decryptOpenData({ appid: APPID, sessionKey, ...encryptText('not json', sessionKey) })),
      appErrorOf(() => decryptOpenData({ ...DEMO, encryptedData: '!!!!' })),
      appErrorOf(() => decryptOpenData({ ...DEMO, iv: 'AAAA' })),
    ];
    const shapes = errors.map((e) => ({
      name: e.name,
      code: e.code,
      status: e.status,
      message: e.message,
      cause: e.cause,
      details: e.details,
      keys: Object.keys(e).sort(),
    }));
    for (const shape of shapes) expect(shape).toStrictEqual(shapes[0]);
    expect(shapes[0]).toMatchObject({ name: 'AppError', code: 'AUTH_DECRYPT_FAILED', status: 400 });
  });
});

// ---- verifyRawDataSignature -----------------------------------------------------------------------

describe('verifyRawDataSignature (C6)', () => {
  it("accepts WeChat's public signature example", () => {
    expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE })).toBe(true);
  });

  it('accepts the signature in uppercase hex', () => {
    expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, signature: SIGNATURE_EXAMPLE.signature.toUpperCase() })).toBe(true);
  });

  it('accepts signatures made by the sandbox', () => {
    const sessionKey = newSessionKey();
    const vector = encryptUserData({ appid: APPID, sessionKey, userInfo: USER_INFO, timestampSeconds: 1, random: randomBytes });
    expect(verifyRawDataSignature({ rawData: vector.rawData, sessionKey, signature: vector.signature })).toBe(true);
    expect(verifyRawDataSignature({ rawData: vector.rawData, sessionKey: newSessionKey(), signature: vector.signature })).toBe(false);
  });

  it('rejects a one-character change anywhere in rawData', () => {
    const raw = SIGNATURE_EXAMPLE.rawData;
    for (let i = 0; i < raw.length; i += 7) {
      const changed = raw.slice(0, i) + (raw[i] === 'a' ? 'b' : 'a') + raw.slice(i + 1);
      expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, rawData: changed })).toBe(false);
    }
    expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, rawData: `${raw} ` })).toBe(false);
    expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, rawData: raw.slice(0, -1) })).toBe(false);
  });

  it('rejects a one-character change anywhere in the signature', () => {
    const sig = SIGNATURE_EXAMPLE.signature;
    for (let i = 0; i < sig.length; i++) {
      const changed = sig.slice(0, i) + (sig[i] === '0' ? '1' : '0') + sig.slice(i + 1);
      expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, signature: changed })).toBe(false);
    }
  });

  it('rejects the signature with the wrong session key, or with the key placed first', () => {
    expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, sessionKey: DEMO.sessionKey })).toBe(false);
    const keyFirst = createHash('sha1').update(SIGNATURE_EXAMPLE.sessionKey + SIGNATURE_EXAMPLE.rawData).digest('hex');
    expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, signature: keyFirst })).toBe(false);
  });

  it.each<[string, unknown]>([
    ['empty', ''],
    ['39 hex characters', SIGNATURE_EXAMPLE.signature.slice(0, -1)],
    ['41 hex characters', `${SIGNATURE_EXAMPLE.signature}0`],
    ['80 hex characters', SIGNATURE_EXAMPLE.signature.repeat(2)],
    ['40 non-hex characters', 'g'.repeat(40)],
    ['hex with a trailing newline', `${SIGNATURE_EXAMPLE.signature}\n`],
    ['hex with spaces', ` ${SIGNATURE_EXAMPLE.signature.slice(1)}`],
    ['a sha256 hex digest', createHash('sha256').update(SIGNATURE_EXAMPLE.rawData + SIGNATURE_EXAMPLE.sessionKey).digest('hex')],
    ['base64 of the digest', createHash('sha1').update(SIGNATURE_EXAMPLE.rawData + SIGNATURE_EXAMPLE.sessionKey).digest('base64')],
    ['a number', 123],
    ['null', null],
    ['undefined', undefined],
    ['a Buffer of the digest', createHash('sha1').update(SIGNATURE_EXAMPLE.rawData + SIGNATURE_EXAMPLE.sessionKey).digest()],
  ])('returns false without throwing for a signature that is %s', (_name, signature) => {
    let result: unknown;
    expect(() => {
      result = verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, signature } as never);
    }).not.toThrow();
    expect(result).toBe(false);
  });

  it('returns false without throwing when rawData is not a string', () => {
    for (const rawData of [undefined, null, 42, { nickName: 'Band' }]) {
      expect(verifyRawDataSignature({ ...SIGNATURE_EXAMPLE, rawData } as never)).toBe(false);
    }
  });

  it('hashes non-ASCII rawData as UTF-8 (value pinned with the openssl CLI)', () => {
    expect(verifyRawDataSignature({ rawData: NON_ASCII_RAW, sessionKey: DEMO.sessionKey, signature: NON_ASCII_SHA1 })).toBe(true);
    // A latin1/UTF-16 encoding of the same text gives another digest, which must not pass.
    const latin1 = createHash('sha1').update(NON_ASCII_RAW + DEMO.sessionKey, 'latin1').digest('hex');
    expect(latin1).not.toBe(NON_ASCII_SHA1);
    expect(verifyRawDataSignature({ rawData: NON_ASCII_RAW, sessionKey: DEMO.sessionKey, signature: latin1 })).toBe(false);
    // And the sandbox's signatures over Chinese nicknames and emoji verify.
    const sessionKey = newSessionKey();
    const vector = encryptUserData({ appid: APPID, sessionKey, userInfo: USER_INFO, timestampSeconds: 1, random: randomBytes });
    expect(vector.rawData).toContain('小明 🐼');
    expect(verifyRawDataSignature({ rawData: vector.rawData, sessionKey, signature: vector.signature })).toBe(true);
  });
});

// ---- sessionKeySignature --------------------------------------------------------------------------

describe('sessionKeySignature (§3.1)', () => {
  it('is HMAC-SHA256 keyed with the session_key TEXT over "", as lowercase hex', () => {
    const key = DEMO.sessionKey;
    expect(sessionKeySignature(key)).toBe(createHmac('sha256', key).update('').digest('hex'));
    expect(sessionKeySignature(key, '')).toBe(sessionKeySignature(key));
    expect(sessionKeySignature(key)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('matches the value computed independently with the openssl CLI', () => {
    expect(sessionKeySignature(DEMO.sessionKey)).toBe(OPENSSL_HMAC_OF_KEY_TEXT);
  });

  it('is NOT the HMAC keyed with the base64-decoded bytes', () => {
    const decodedKeyed = createHmac('sha256', Buffer.from(DEMO.sessionKey, 'base64')).update('').digest('hex');
    expect(decodedKeyed).toBe(OPENSSL_HMAC_OF_KEY_BYTES);
    expect(sessionKeySignature(DEMO.sessionKey)).not.toBe(decodedKeyed);
  });

  it("agrees with the sandbox's checksession verifier for random keys and a non-empty body", () => {
    for (let i = 0; i < 10; i++) {
      const key = newSessionKey();
      expect(sessionKeySignature(key)).toBe(sessionKeyHmac(key));
    }
    expect(sessionKeySignature(DEMO.sessionKey, '{"a":"中"}')).toBe(
      createHmac('sha256', DEMO.sessionKey).update(Buffer.from('{"a":"中"}', 'utf8')).digest('hex'),
    );
  });
});
