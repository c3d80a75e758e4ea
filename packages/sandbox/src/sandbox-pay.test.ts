/**
 * The sandbox's WeChat Pay v3 over real HTTP, signed as a merchant signs (written here from the
 * docs, not with minigate's code): request signatures refused with 401 SIGN_ERROR, answers signed
 * by the platform key of the merchant's mode, the 2-hour prepay_id, paySign checked at the tap,
 * and the notification it sends: signed over timestamp, nonce and body, sealed with the APIv3 key.
 */
import { createDecipheriv, createSign, createVerify, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, createSandboxClock, type Sandbox, type SandboxClock } from './index.js';

const MCHID = '1900000109';
const SERIAL = 'ABCDEF0123456789';
const KEY = '0123456789abcdefghijklmnopqrstuv';
const APPID = 'wx1111111111111111';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const sign = (message: string) => createSign('RSA-SHA256').update(message).sign(privateKey, 'base64');

let sandbox: Sandbox;
let clock: SandboxClock;
let platformKey: string;
let receiver: Server;
let notifyUrl: string;
const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];

async function call(method: string, target: string, body?: unknown, tamper = false, skewMs = 0) {
  const text = body === undefined ? '' : JSON.stringify(body);
  const ts = String(Math.floor((clock.now() + skewMs) / 1000));
  const nonce = 'N0NCE0123456789';
  const signature = sign(`${method}\n${target}\n${ts}\n${nonce}\n${tamper ? `${text} ` : text}\n`);
  const response = await fetch(sandbox.url + target, {
    method,
    headers: { authorization: `WECHATPAY2-SHA256-RSA2048 mchid="${MCHID}",nonce_str="${nonce}",signature="${signature}",timestamp="${ts}",serial_no="${SERIAL}"`, 'content-type': 'application/json' },
    ...(text ? { body: text } : {}),
  });
  const raw = await response.text();
  return { status: response.status, headers: response.headers, raw, body: raw ? (JSON.parse(raw) as Record<string, any>) : {} };
}

const verifies = (pem: string, headers: Headers | Record<string, any>, raw: string) => {
  const get = (n: string) => (headers instanceof Headers ? headers.get(n) : headers[n]) as string;
  return createVerify('RSA-SHA256').update(`${get('wechatpay-timestamp')}\n${get('wechatpay-nonce')}\n${raw}\n`).verify(pem, get('wechatpay-signature'), 'base64');
};

const order = (outTradeNo: string, total = 100) => ({ appid: APPID, mchid: MCHID, description: 'tea', out_trade_no: outTradeNo, notify_url: notifyUrl, amount: { total }, payer: { openid: 'o_user' } });

beforeAll(async () => {
  clock = createSandboxClock();
  sandbox = createSandbox({ clock });
  await sandbox.start();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notify`;
  const registered = await fetch(`${sandbox.url}/__sandbox/pay/merchants`, { method: 'POST', body: JSON.stringify({ mchid: MCHID, serial: SERIAL, publicKey: publicKey.export({ type: 'spki', format: 'pem' }), apiV3Key: KEY }) });
  platformKey = ((await registered.json()) as { publicKey: string }).publicKey;
});
afterAll(async () => {
  await sandbox.close();
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
});

describe('sandbox WeChat Pay v3', () => {
  it('refuses a request whose signature, serial or timestamp is wrong with 401 SIGN_ERROR', async () => {
    expect((await call('POST', '/v3/pay/transactions/jsapi', order('T000000001'), true)).body).toMatchObject({ code: 'SIGN_ERROR' });
    const unsigned = await fetch(`${sandbox.url}/v3/pay/transactions/jsapi`, { method: 'POST', body: '{}' });
    expect(unsigned.status).toBe(401);
    // A signature made 10 minutes ago; the same one made now reaches the order lookup (404).
    expect(await call('GET', `/v3/pay/transactions/out-trade-no/X00000?mchid=${MCHID}`, undefined, false, -10 * 60_000)).toMatchObject({ status: 401, body: { code: 'SIGN_ERROR' } });
    expect((await call('GET', `/v3/pay/transactions/out-trade-no/X00000?mchid=${MCHID}`)).status).toBe(404);
  });

  it('signs its answers with the WeChat Pay public key (PUB_KEY_ID_…) and refuses bad parameters', async () => {
    const made = await call('POST', '/v3/pay/transactions/jsapi', order('T000000002'));
    expect(made.status).toBe(200);
    expect(made.body.prepay_id).toMatch(/^wx\d{14}/);
    expect(made.headers.get('wechatpay-serial')).toMatch(/^PUB_KEY_ID_/);
    expect(verifies(platformKey, made.headers, made.raw)).toBe(true);
    expect((await call('POST', '/v3/pay/transactions/jsapi', { ...order('T000000003'), amount: { total: 0 } })).body.code).toBe('PARAM_ERROR');
    expect((await call('POST', '/v3/pay/transactions/jsapi', { ...order('T000000002', 200) })).body.code).toBe('OUT_TRADE_NO_USED');
    const missing = await call('GET', `/v3/pay/transactions/out-trade-no/NOPE000001?mchid=${MCHID}`);
    expect(missing).toMatchObject({ status: 404, body: { code: 'ORDER_NOT_EXIST' } });
  });

  it('pays at the tap with a valid paySign, and sends a signed, sealed TRANSACTION.SUCCESS', async () => {
    const { body } = await call('POST', '/v3/pay/transactions/jsapi', order('T000000004', 321));
    const pkg = `prepay_id=${body.prepay_id}`;
    const params = { appId: APPID, timeStamp: String(Math.floor(clock.now() / 1000)), nonceStr: 'ABC', package: pkg, signType: 'RSA' };
    const paySign = sign(`${APPID}\n${params.timeStamp}\nABC\n${pkg}\n`);
    const bad = await fetch(`${sandbox.url}/__sandbox/pay/tap`, { method: 'POST', body: JSON.stringify({ ...params, paySign: sign('other') }) });
    expect(bad.status).toBe(400);
    const tap = await fetch(`${sandbox.url}/__sandbox/pay/tap`, { method: 'POST', body: JSON.stringify({ ...params, paySign }) });
    expect(((await tap.json()) as any).attempts).toEqual([{ status: 204, body: '' }]);
    const note = received.at(-1)!;
    expect(verifies(platformKey, note.headers, note.body)).toBe(true);
    const envelope = JSON.parse(note.body) as { event_type: string; resource: { ciphertext: string; nonce: string; associated_data: string } };
    expect(envelope.event_type).toBe('TRANSACTION.SUCCESS');
    const sealed = Buffer.from(envelope.resource.ciphertext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', Buffer.from(KEY), Buffer.from(envelope.resource.nonce));
    decipher.setAAD(Buffer.from(envelope.resource.associated_data));
    decipher.setAuthTag(sealed.subarray(-16));
    const transaction = JSON.parse(Buffer.concat([decipher.update(sealed.subarray(0, -16)), decipher.final()]).toString('utf8'));
    expect(transaction).toMatchObject({ out_trade_no: 'T000000004', trade_state: 'SUCCESS', amount: { total: 321 }, payer: { openid: 'o_user' } });
    const query = await call('GET', `/v3/pay/transactions/out-trade-no/T000000004?mchid=${MCHID}`);
    expect(query.body.trade_state).toBe('SUCCESS');
  });

  it('keeps a prepay_id 2 hours: a tap after that fails', async () => {
    const { body } = await call('POST', '/v3/pay/transactions/jsapi', order('T000000005'));
    clock.advance(2 * 3600_000 + 1_000);
    const pkg = `prepay_id=${body.prepay_id}`;
    const ts = String(Math.floor(clock.now() / 1000));
    const tap = await fetch(`${sandbox.url}/__sandbox/pay/tap`, { method: 'POST', body: JSON.stringify({ appId: APPID, timeStamp: ts, nonceStr: 'N', package: pkg, signType: 'RSA', paySign: sign(`${APPID}\n${ts}\nN\n${pkg}\n`) }) });
    expect(((await tap.json()) as any).error.code).toBe('PREPAY_EXPIRED');
  });

  it('in certificate mode serves the certificate sealed with the APIv3 key, and signs with it', async () => {
    await fetch(`${sandbox.url}/__sandbox/pay/merchants`, { method: 'POST', body: JSON.stringify({ mchid: MCHID, serial: SERIAL, publicKey: publicKey.export({ type: 'spki', format: 'pem' }), apiV3Key: KEY, verification: 'certificate' }) });
    const list = await call('GET', '/v3/certificates');
    const item = list.body.data[0];
    const sealed = Buffer.from(item.encrypt_certificate.ciphertext, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', Buffer.from(KEY), Buffer.from(item.encrypt_certificate.nonce));
    decipher.setAAD(Buffer.from(item.encrypt_certificate.associated_data));
    decipher.setAuthTag(sealed.subarray(-16));
    const certificate = new X509Certificate(Buffer.concat([decipher.update(sealed.subarray(0, -16)), decipher.final()]).toString('utf8'));
    expect(certificate.serialNumber.toUpperCase()).toBe(item.serial_no);
    expect(list.headers.get('wechatpay-serial')).toBe(item.serial_no);
    expect(verifies(certificate.publicKey.export({ type: 'spki', format: 'pem' }).toString(), list.headers, list.raw)).toBe(true);
  });

  it('lists its pay routes in GET /__sandbox', async () => {
    const routes = ((await (await fetch(`${sandbox.url}/__sandbox`)).json()) as { routes: string[] }).routes;
    expect(routes.some((r) => r.startsWith('POST /__sandbox/pay/tap'))).toBe(true);
  });
});
