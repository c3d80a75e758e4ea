/**
 * minigate's side of WeChat Pay's cryptography against the sandbox's side (written apart from each
 * other): what one signs or seals, the other verifies or opens, and a changed byte fails.
 */
import { createPrivateKey, createPublicKey, createSign, generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { makePublicKeyModeKey, parseAuthorization, payHeaders as signedHeaders, PROBE_PREFIX as SANDBOX_PROBE, rsaVerify as sandboxVerify, sealResource } from 'minigate-sandbox';
import { describe, expect, it } from 'vitest';
import { authorization, openResource, paymentParams, PROBE_PREFIX } from './crypto.js';
import { createVerifier } from './verifier.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY = '0123456789abcdefghijklmnopqrstuv';

describe('WeChat Pay cryptography', () => {
  it('signs a request the way the sandbox checks it: five lines, the Authorization fields', () => {
    const header = authorization({ mchid: '1900000109', serial: 'ABC123', key: privateKey, method: 'POST', target: '/v3/pay/transactions/jsapi', body: '{"a":1}', nowMs: 1_700_000_000_000 });
    const fields = parseAuthorization(header)!;
    expect(fields).toMatchObject({ mchid: '1900000109', serial_no: 'ABC123', timestamp: '1700000000', nonce_str: expect.stringMatching(/^[A-Z0-9]{32}$/) });
    const message = (body: string) => `POST\n/v3/pay/transactions/jsapi\n1700000000\n${fields.nonce_str}\n${body}\n`;
    expect(sandboxVerify(publicKey, message('{"a":1}'), fields.signature!)).toBe(true);
    expect(sandboxVerify(publicKey, message('{"a":2}'), fields.signature!)).toBe(false);
  });

  it('signs the wx.requestPayment parameters over appId, timeStamp, nonceStr and package', () => {
    const params = paymentParams('wx0123456789abcdef', 'wx2026prepay', privateKey, 1_700_000_000_999);
    expect(params).toMatchObject({ timeStamp: '1700000000', package: 'prepay_id=wx2026prepay', signType: 'RSA' });
    expect(sandboxVerify(publicKey, `wx0123456789abcdef\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`, params.paySign)).toBe(true);
    expect(sandboxVerify(publicKey, `wxfedcba9876543210\n${params.timeStamp}\n${params.nonceStr}\n${params.package}\n`, params.paySign)).toBe(false);
  });

  it('opens what the sandbox seals, and nothing altered, under another key or associated data', () => {
    const sealed = sealResource(KEY, '{"trade_state":"SUCCESS"}', 'transaction');
    expect(openResource(KEY, sealed)).toBe('{"trade_state":"SUCCESS"}');
    expect(openResource('X'.repeat(32), sealed)).toBeNull();
    expect(openResource(KEY, { ...sealed, associated_data: 'refund' })).toBeNull();
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    bytes[0] = bytes[0]! ^ 1;
    expect(openResource(KEY, { ...sealed, ciphertext: bytes.toString('base64') })).toBeNull();
    for (const bad of [{}, { ...sealed, algorithm: 'AES_128' }, { ...sealed, ciphertext: 'AAAA' }, { ...sealed, nonce: 42 }]) expect(openResource(KEY, bad)).toBeNull();
  });

  it('verifies answers by serial: the public key, stale timestamps, probes, unknown serials, changed bodies', () => {
    const platform = makePublicKeyModeKey();
    const verifier = createVerifier({ id: platform.serial, pem: platform.publicKeyPem });
    const now = 1_700_000_000_000;
    const headersOf = (h: Record<string, string>) => ({ timestamp: h['wechatpay-timestamp']!, nonce: h['wechatpay-nonce']!, signature: h['wechatpay-signature']!, serial: h['wechatpay-serial']! });
    const good = headersOf(signedHeaders(platform, '{"x":1}', now));
    expect(verifier.verify(good, '{"x":1}', now)).toBe('ok');
    expect(verifier.verify(good, '{"x":2}', now)).toBe('bad-signature');
    expect(verifier.verify(good, '{"x":1}', now + 5 * 60_000 + 1_000)).toBe('stale');
    expect(verifier.verify({ ...good, serial: 'PUB_KEY_ID_OTHER' }, '{"x":1}', now)).toBe('unknown-serial');
    expect(SANDBOX_PROBE).toBe(PROBE_PREFIX);
    expect(verifier.verify(headersOf(signedHeaders(platform, '{"x":1}', now, { probe: true })), '{"x":1}', now)).toBe('probe');
    expect(verifier.verify({ ...good, timestamp: '1e9' }, '{"x":1}', now)).toBe('stale');
    expect(createPublicKey(platform.publicKeyPem).asymmetricKeyType).toBe('rsa');
  });

  it('finds a platform certificate whose serial begins with a zero byte, written either way', async () => {
    // DER drops the leading zero byte of the INTEGER: Node reads `00…` as the shorter serial.
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const serial = '0012AB34CD56EF7890123456789ABCDEF0123456';
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: serial, name: 'CN=platform', notBefore: new Date(0), notAfter: new Date(4e12), keys, signingAlgorithm: algorithm });
    const verifier = createVerifier(undefined);
    verifier.addCertificates([certificate.toString('pem')]);
    const key = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' });
    const now = 1_700_000_000_000;
    const headers = { timestamp: String(now / 1000), nonce: 'n0nce', signature: createSign('RSA-SHA256').update(`${now / 1000}\nn0nce\n{}\n`).sign(key, 'base64') };
    expect(verifier.verify({ ...headers, serial }, '{}', now)).toBe('ok');
    expect(verifier.verify({ ...headers, serial: serial.slice(2) }, '{}', now)).toBe('ok');
    expect(verifier.verify({ ...headers, serial: serial.slice(2).toLowerCase() }, '{}', now)).toBe('ok');
    expect(verifier.verify({ ...headers, serial: `FF${serial.slice(2)}` }, '{}', now)).toBe('unknown-serial');
  });
});
