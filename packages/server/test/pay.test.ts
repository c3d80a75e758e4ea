/**
 * WeChat Pay v3 end to end against the sandbox playing WeChat Pay and the user: a business
 * service makes an order on the internal API, the SDK's pay() in the wx shim pays it (the sandbox
 * checks paySign as WeChat's client does), and the notification is verified, decrypted, checked and
 * delivered once to the merchant's webhook; forged notifications are refused with nothing
 * delivered; refunds; the reconciliation finds a payment whose notification was dropped; the
 * public key mode, the certificate mode and a merchant migrating between them; secrets never
 * leave. The paid flow runs on SQLite, PostgreSQL and MariaDB.
 */
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, MinigateError, type PaymentParams } from 'minigate-client';
import { createSandbox, createSandboxClock, payHeaders, sealResource, type NotifyFault, type Sandbox } from 'minigate-sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { payConfigIssues } from '../src/pay/index.js';
import { createTestDatabase, type TestDatabase } from './helpers/databases.js';
import { OTHER_APPID, OTHER_SECRET, startHarness, TEST_APPID, TEST_SECRET, type Harness } from './helpers/harness.js';
import { RecordingWebhook } from './helpers/webhook.js';
import { createWx, type WxShim } from './helpers/wx-shim.js';

const INTERNAL_TOKEN = 'pay-internal-token-0123456789abcdef0123';
const UPSTREAM_SECRET = 'pay-upstream-secret-0123456789abcdef';
const MCHID = '1900000109';
const CERT_MCHID = '1900000110';
const API_V3_KEY = 'a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6';
const CERT_API_V3_KEY = 'Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4';
const PUSH_TOKEN = 'pay-push-token';
const SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
const CERT_SERIAL = '6157F09EFDC096DE15EBE81A47057A7232F1B8E2';

/** The merchants' webhook (helpers/webhook.ts), with the events of one order picked out. */
class Webhook extends RecordingWebhook {
  constructor() {
    super('/pay-events');
  }
  of(outTradeNo: string, event = 'TRANSACTION.SUCCESS') {
    return this.deliveries.filter((d) => d.body.event === event && (d.body.order?.outTradeNo === outTradeNo || d.body.refund?.outTradeNo === outTradeNo));
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: () => T | Promise<T>, ok: (value: T) => boolean, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await what();
    if (ok(value) || Date.now() > end) return value;
    await pause(25);
  }
}

async function freePort(): Promise<number> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Merchant {
  mchid: string;
  serial: string;
  apiV3Key: string;
  keyFile: string;
  publicKeyPem: string;
  privateKeyPem: string;
}

function makeMerchant(dir: string, mchid: string, serial: string, apiV3Key: string): Merchant {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const keyFile = path.join(dir, `apiclient_key_${mchid}.pem`);
  writeFileSync(keyFile, privateKeyPem, { mode: 0o600 });
  return { mchid, serial, apiV3Key, keyFile, privateKeyPem, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

interface World {
  h: Harness;
  sandbox: Sandbox;
  webhook: Webhook;
  merchant: Merchant;
  certMerchant: Merchant;
  publicKeyFile: string;
  publicKeyId: string;
  dir: string;
  /** What the user does in the cashier next (a fault on the notification, or cancel). */
  next: { fault?: NotifyFault; cancel?: boolean };
  close(): Promise<void>;
}

async function registerAtSandbox(sandbox: Sandbox, m: Merchant, verification: 'publicKey' | 'certificate') {
  const response = await fetch(`${sandbox.url}/__sandbox/pay/merchants`, { method: 'POST', body: JSON.stringify({ mchid: m.mchid, serial: m.serial, publicKey: m.publicKeyPem, apiV3Key: m.apiV3Key, verification }) });
  expect(response.status).toBe(200);
  return (await response.json()) as { publicKeyId: string; publicKey: string };
}

async function startWorld(store?: string): Promise<World> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-pay-'));
  const clock = createSandboxClock();
  const sandbox = createSandbox({ clock, apps: [{ appid: TEST_APPID, secret: TEST_SECRET }, { appid: OTHER_APPID, secret: OTHER_SECRET }] });
  await sandbox.start();
  const merchant = makeMerchant(dir, MCHID, SERIAL, API_V3_KEY);
  const certMerchant = makeMerchant(dir, CERT_MCHID, CERT_SERIAL, CERT_API_V3_KEY);
  const platform = await registerAtSandbox(sandbox, merchant, 'publicKey');
  await registerAtSandbox(sandbox, certMerchant, 'certificate');
  const publicKeyFile = path.join(dir, 'pub_key.pem');
  writeFileSync(publicKeyFile, platform.publicKey);
  const webhook = new Webhook();
  const hook = await webhook.start();
  const port = await freePort();
  const h = await startHarness({
    sandbox,
    clock,
    apps: [
      // Message pushes too: trade-management events (发货信息管理) come that way.
      { appid: TEST_APPID, secret: TEST_SECRET, push: { token: PUSH_TOKEN, webhook: hook } } as never,
      { appid: OTHER_APPID, secret: OTHER_SECRET },
    ],
    ...(store ? { store } : {}),
    config: {
      listen: { http: `127.0.0.1:${port}`, internal: '127.0.0.1:0' },
      internal: { token: INTERNAL_TOKEN },
      upstreamSecret: UPSTREAM_SECRET,
      pay: {
        apiBase: sandbox.url,
        notifyBase: `http://127.0.0.1:${port}`,
        reconcileAfter: '10m',
        merchants: [
          // Migrating: the public key and the certificates are both accepted.
          { mchid: MCHID, appids: [TEST_APPID], privateKey: merchant.privateKeyPem, serial: SERIAL, apiV3Key: API_V3_KEY, publicKeyId: platform.publicKeyId, publicKeyFile, certificates: true, webhook: hook },
          { mchid: CERT_MCHID, appids: [OTHER_APPID], privateKey: certMerchant.privateKeyPem, serial: CERT_SERIAL, apiV3Key: CERT_API_V3_KEY, certificates: true, webhook: hook },
        ],
      },
    },
    serverDeps: { payReconcileIntervalMs: 200 } as never,
  });
  const world: World = {
    h,
    sandbox,
    webhook,
    merchant,
    certMerchant,
    publicKeyFile,
    publicKeyId: platform.publicKeyId,
    dir,
    next: {},
    async close() {
      await h.close();
      await sandbox.close();
      await webhook.close();
    },
  };
  return world;
}

/** A phone: the wx shim whose cashier taps 支付 at the sandbox (or cancels). */
function phone(w: World, appid = TEST_APPID): { wx: WxShim; client: ReturnType<typeof createClient>; taps: { status: number; body: any }[] } {
  const taps: { status: number; body: any }[] = [];
  const wx = createWx({
    dev: true,
    login: async () => (await w.h.code({ appid })).code,
    pay: async (params) => {
      const next = w.next;
      w.next = {};
      if (next.cancel) return 'cancel';
      const response = await fetch(`${w.sandbox.url}/__sandbox/pay/tap`, { method: 'POST', body: JSON.stringify({ appId: appid, ...params, ...(next.fault ? { fault: next.fault } : {}) }) });
      const body = (await response.json()) as any;
      taps.push({ status: response.status, body });
      return response.ok ? 'ok' : { fail: body.error.message };
    },
  });
  const client = createClient({ wx, baseUrl: w.h.url, appid });
  return { wx, client, taps };
}

const orderNo = () => `T${randomBytes(8).toString('hex')}`;

async function createOrder(w: World, body: Record<string, unknown>, appid = TEST_APPID) {
  return w.h.internal('POST', `/v1/apps/${appid}/pay/orders`, body);
}

function webhookSignatureOk(d: { headers: IncomingHttpHeaders; raw: string }): boolean {
  const timestamp = String(d.headers['x-minigate-timestamp']);
  const expected = `v1=${createHmac('sha256', UPSTREAM_SECRET).update(`v1\n${timestamp}\n${d.raw}`).digest('hex')}`;
  return d.headers['x-minigate-signature'] === expected;
}

/** Makes an order for a logged-in user and pays it through client.pay(). */
async function payOnce(w: World, fault?: NotifyFault) {
  const { client, taps, wx } = phone(w);
  const session = await client.login();
  const outTradeNo = orderNo();
  const made = await createOrder(w, { session: session.token, outTradeNo, description: '拿铁 coffee', amount: 1800, attach: 'table=7' });
  expect(made.status, JSON.stringify(made.body)).toBe(200);
  if (fault) w.next = { fault };
  const result = await client.pay(made.body.payment as PaymentParams);
  wx.close();
  return { outTradeNo, result, taps, session, payment: made.body.payment as PaymentParams };
}

describe.each(['sqlite', 'postgres', 'mysql'] as const)('paying end to end (%s)', (dialect) => {
  let w: World;
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = dialect === 'sqlite' ? undefined : await createTestDatabase(dialect);
    w = await startWorld(db?.url);
  });
  afterAll(async () => {
    await w?.close();
    await db?.drop();
  });

  it('an order paid with client.pay() reaches the webhook once, signed, even when WeChat repeats the notification', async () => {
    const { outTradeNo, result, taps } = await payOnce(w, { repeat: 3 });
    expect(result).toEqual({ outcome: 'paid' });
    // WeChat got 204 each time; the repeats were taken as repeats.
    expect(taps[0]!.body.attempts.map((a: { status: number }) => a.status)).toEqual([204, 204, 204]);
    const deliveries = await until(() => w.webhook.of(outTradeNo), (d) => d.length > 0);
    await pause(300);
    expect(w.webhook.of(outTradeNo)).toHaveLength(1);
    const [event] = deliveries;
    expect(webhookSignatureOk(event!)).toBe(true);
    expect(event!.headers['x-minigate-appid']).toBe(TEST_APPID);
    expect(event!.body).toMatchObject({
      event: 'TRANSACTION.SUCCESS',
      source: 'notification',
      order: { mchid: MCHID, appid: TEST_APPID, outTradeNo, amount: 1800, attach: 'table=7', state: 'SUCCESS', transactionId: expect.stringMatching(/^42/) },
      transaction: { trade_state: 'SUCCESS', amount: { total: 1800 }, attach: 'table=7' },
    });
    const query = await w.h.internal('GET', `/v1/apps/${TEST_APPID}/pay/orders/${outTradeNo}`);
    expect(query.body).toMatchObject({ state: 'SUCCESS', fresh: true, outTradeNo });
  });

  it('a refund completes and its REFUND.SUCCESS reaches the webhook; a retry with the same outRefundNo is the same refund', async () => {
    const { outTradeNo } = await payOnce(w);
    const refund = { outTradeNo, outRefundNo: `R${outTradeNo}`, amount: 800, reason: '少了一杯' };
    const first = await w.h.internal('POST', `/v1/apps/${TEST_APPID}/pay/refunds`, refund);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ status: 'PROCESSING', amount: 800, total: 1800, refundId: expect.any(String) });
    const again = await w.h.internal('POST', `/v1/apps/${TEST_APPID}/pay/refunds`, refund);
    expect(again.body.refundId).toBe(first.body.refundId);
    const events = await until(() => w.webhook.of(outTradeNo, 'REFUND.SUCCESS'), (d) => d.length > 0);
    expect(events).toHaveLength(1);
    expect(events[0]!.body.refund).toMatchObject({ outRefundNo: `R${outTradeNo}`, amount: 800, status: 'SUCCESS' });
    expect((await w.h.internal('GET', `/v1/apps/${TEST_APPID}/pay/refunds/R${outTradeNo}`)).body).toMatchObject({ status: 'SUCCESS', fresh: true });
    expect((await w.h.server.store.db.selectFrom('pay_orders').select('state').where('out_trade_no', '=', outTradeNo).executeTakeFirst())?.state).toBe('REFUND');
    // A different refund under the same number is refused.
    expect((await w.h.internal('POST', `/v1/apps/${TEST_APPID}/pay/refunds`, { ...refund, amount: 100 })).body.error.code).toBe('PAY_ORDER_CONFLICT');
  });
});

describe('WeChat Pay (sqlite)', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    await w?.close();
  });

  it('an order is idempotent on outTradeNo within the prepay life (re-signed), refused after it and for other content', async () => {
    const { client } = phone(w);
    const session = await client.login();
    const outTradeNo = orderNo();
    const body = { session: session.token, outTradeNo, description: 'tea', amount: 500 };
    const first = await createOrder(w, body);
    expect(first.status).toBe(200);
    expect(first.body.payment).toMatchObject({ package: expect.stringMatching(/^prepay_id=wx/), signType: 'RSA', timeStamp: expect.stringMatching(/^\d{10}$/), nonceStr: expect.stringMatching(/^[A-Z0-9]{32}$/) });
    w.h.clock.advance(2_000);
    const second = await createOrder(w, body);
    expect(second.body.payment.package).toBe(first.body.payment.package);
    expect(second.body.payment.nonceStr).not.toBe(first.body.payment.nonceStr);
    expect(second.body.payment.timeStamp).not.toBe(first.body.payment.timeStamp);
    expect((await createOrder(w, { ...body, amount: 501 })).body.error.code).toBe('PAY_ORDER_CONFLICT');
    w.h.clock.advance(2 * 3600_000);
    const late = await createOrder(w, body);
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'PAY_PREPAY_EXPIRED' } } });
    const closed = await w.h.internal('POST', `/v1/apps/${TEST_APPID}/pay/orders/${outTradeNo}/close`);
    expect(closed.body).toMatchObject({ state: 'CLOSED' });
    expect((await createOrder(w, body)).body.error.code).toBe('PAY_ORDER_CLOSED');
  });

  it('refuses bad order input with BAD_REQUEST and an unknown app or merchant plainly', async () => {
    const base = { openid: 'o_user_1', outTradeNo: orderNo(), description: 'x', amount: 1 };
    for (const bad of [{ amount: 0 }, { amount: 1.5 }, { amount: '1' }, { outTradeNo: 'short' }, { outTradeNo: 'has space 123' }, { description: '' }, { description: 'x'.repeat(128) }, { openid: undefined }, { attach: 'a'.repeat(129) }]) {
      const answer = await createOrder(w, { ...base, ...bad });
      expect(answer.status, JSON.stringify(bad)).toBe(400);
      expect(answer.body.error.code).toBe('BAD_REQUEST');
    }
    expect((await createOrder(w, { ...base, mchid: '1234567890' })).body.error.code).toBe('PAY_NOT_CONFIGURED');
    expect((await w.h.internal('GET', `/v1/apps/${TEST_APPID}/pay/orders/NOPE12345`)).body.error.code).toBe('PAY_ORDER_UNKNOWN');
    expect((await w.h.internal('POST', '/v1/apps/wx00000000000000ff/pay/orders', base)).body.error.code).toBe('APP_UNKNOWN');
  });

  it('cancel in the cashier is an outcome, not an error; callback style gives the same outcomes', async () => {
    const { client } = phone(w);
    const session = await client.login();
    const made = await createOrder(w, { session: session.token, outTradeNo: orderNo(), description: 'cake', amount: 900 });
    w.next = { cancel: true };
    expect(await client.pay(made.body.payment)).toEqual({ outcome: 'cancelled' });
    // A tampered paySign is refused by the cashier: a failure.
    await expect(client.pay({ ...made.body.payment, paySign: made.body.payment.paySign.replace(/^./, (c: string) => (c === 'A' ? 'B' : 'A')) })).rejects.toMatchObject({ code: 'PAY_FAILED' });
    const outcome = await new Promise((resolve) => void client.pay(made.body.payment, { success: resolve, fail: (e: MinigateError) => resolve(e.code) }));
    expect(outcome).toEqual({ outcome: 'paid' });
  });

  it('forged notifications are refused and nothing is delivered: bad signature, probe, stale, wrong APIv3 key, amount that does not match', async () => {
    const cases: [NotifyFault, number][] = [
      [{ badSignature: true }, 401],
      [{ probe: true }, 401],
      [{ ageMs: 6 * 60_000 }, 401],
      [{ wrongKey: true }, 400],
      [{ amountDelta: -1700 }, 400],
    ];
    for (const [fault, status] of cases) {
      const { outTradeNo, taps, result } = await payOnce(w, fault);
      expect(result.outcome).toBe('paid');
      expect(taps[0]!.body.attempts.map((a: { status: number }) => a.status), JSON.stringify(fault)).toEqual([status]);
      await pause(150);
      expect(w.webhook.of(outTradeNo), JSON.stringify(fault)).toHaveLength(0);
      const stored = await w.h.server.store.db.selectFrom('pay_orders').select(['state']).where('out_trade_no', '=', outTradeNo).executeTakeFirst();
      expect(stored?.state).toBe('NOTPAY');
    }
    // A notification for an order minigate never made.
    const forged = await fetch(`${w.h.url}/pay/notify/${MCHID}`, { method: 'POST', headers: { 'content-type': 'application/json', 'wechatpay-serial': w.publicKeyId, 'wechatpay-signature': 'AAAA', 'wechatpay-timestamp': String(Math.floor(w.h.clock.now() / 1000)), 'wechatpay-nonce': 'n' }, body: '{"id":"x"}' });
    expect(forged.status).toBe(401);
    expect((await fetch(`${w.h.url}/pay/notify/0000000000`, { method: 'POST', body: '{}' })).status).toBe(404);
  });

  it('hostile notifications, even signed by WeChat Pay, are refused with a code and never a 500', async () => {
    const key = w.sandbox.pay.publicKeyMode;
    const post = async (body: string, signed = true) => {
      const response = await fetch(`${w.h.url}/pay/notify/${MCHID}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(signed ? payHeaders(key, body, w.h.clock.now()) : {}) }, body });
      return { status: response.status, code: ((await response.json().catch(() => ({}))) as any).error?.code as string | undefined };
    };
    const envelope = (resource: Record<string, unknown>, eventType = 'TRANSACTION.SUCCESS', apiV3Key = API_V3_KEY) =>
      JSON.stringify({ id: randomBytes(8).toString('hex'), event_type: eventType, resource_type: 'encrypt-resource', resource: { original_type: 'transaction', ...sealResource(apiV3Key, JSON.stringify(resource), 'transaction') } });
    expect(await post('[]')).toEqual({ status: 400, code: 'BAD_REQUEST' });
    expect(await post('not json')).toEqual({ status: 400, code: 'BAD_REQUEST' });
    expect(await post(JSON.stringify({ id: 'x', event_type: 'TRANSACTION.SUCCESS', resource: { original_type: 'transaction', ...sealResource(API_V3_KEY, 'not json', 'transaction') } }))).toEqual({ status: 400, code: 'PAY_DECRYPT_FAILED' });
    expect(await post(envelope({ mchid: '1900000999', out_trade_no: 'T1', appid: TEST_APPID, amount: { total: 1 } }))).toEqual({ status: 400, code: 'PAY_NOTIFY_MISMATCH' });
    expect(await post(envelope({ mchid: MCHID, out_trade_no: 'NEVER_MADE_1', appid: TEST_APPID, amount: { total: 1 } }))).toEqual({ status: 400, code: 'PAY_NOTIFY_MISMATCH' });
    expect(await post(envelope({ mchid: MCHID, out_refund_no: 'NEVER_MADE_1', out_trade_no: 'X' }, 'REFUND.SUCCESS'))).toEqual({ status: 400, code: 'PAY_NOTIFY_MISMATCH' });
    // An order made for this app, announced for the other appid, is refused too.
    const made = await createOrder(w, { openid: 'o_user_4', outTradeNo: orderNo(), description: 'x', amount: 50 });
    expect(await post(envelope({ mchid: MCHID, out_trade_no: made.body.outTradeNo, appid: OTHER_APPID, trade_state: 'SUCCESS', amount: { total: 50 } }))).toEqual({ status: 400, code: 'PAY_NOTIFY_MISMATCH' });
    expect((await post('x'.repeat(70 * 1024))).status).toBe(413);
    expect(w.webhook.of(made.body.outTradeNo)).toHaveLength(0);
  });

  it('two calls making the same order at once both give a payable prepay_id, and one order', async () => {
    const body = { openid: 'o_user_5', outTradeNo: orderNo(), description: 'race', amount: 70 };
    const [a, b] = await Promise.all([createOrder(w, body), createOrder(w, body)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const rows = await w.h.server.store.db.selectFrom('pay_orders').selectAll().where('out_trade_no', '=', body.outTradeNo).execute();
    expect(rows).toHaveLength(1);
    // Both prepay_ids are alive: the first tap pays; the second finds the order paid already.
    const tap = (payment: PaymentParams) => fetch(`${w.sandbox.url}/__sandbox/pay/tap`, { method: 'POST', body: JSON.stringify({ appId: TEST_APPID, ...payment }) });
    expect((await tap(a.body.payment)).status).toBe(200);
    const second = await tap(b.body.payment);
    expect({ status: second.status, code: ((await second.json()) as any).error.code }).toEqual({ status: 400, code: 'ORDER_STATE' });
    expect(await until(() => w.webhook.of(body.outTradeNo), (d) => d.length > 0)).toHaveLength(1);
  });

  it('a merchant key WeChat Pay does not know: the call fails as PAY_UNAVAILABLE and the log says what to check', async () => {
    // WeChat Pay is told of another key for this merchant: our signatures stop verifying there.
    const other = makeMerchant(w.dir, MCHID, SERIAL, API_V3_KEY);
    await registerAtSandbox(w.sandbox, { ...w.merchant, publicKeyPem: other.publicKeyPem }, 'publicKey');
    try {
      const made = await createOrder(w, { openid: 'o_user_6', outTradeNo: orderNo(), description: 'x', amount: 1 });
      expect(made).toMatchObject({ status: 503, body: { error: { code: 'PAY_UNAVAILABLE' } } });
      expect(w.h.logs.text()).toMatch(/WeChat Pay answered 401 \(SIGN_ERROR\?\): check pay\.merchants\[\]\.privateKey/);
    } finally {
      await registerAtSandbox(w.sandbox, w.merchant, 'publicKey');
    }
  });

  it('an unverifiable answer to an order is checked by a query before anything is reported', async () => {
    await fetch(`${w.sandbox.url}/__sandbox/pay/faults`, { method: 'POST', body: JSON.stringify({ badAnswerSignatures: 1 }) });
    const made = await createOrder(w, { openid: 'o_user_2', outTradeNo: orderNo(), description: 'x', amount: 100 });
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect(made.body.payment.package).toMatch(/^prepay_id=/);
    await fetch(`${w.sandbox.url}/__sandbox/pay/faults`, { method: 'POST', body: JSON.stringify({ badAnswerSignatures: 10 }) });
    const failed = await createOrder(w, { openid: 'o_user_2', outTradeNo: orderNo(), description: 'x', amount: 100 });
    expect(failed).toMatchObject({ status: 503, body: { error: { code: 'PAY_UNAVAILABLE' } } });
    await fetch(`${w.sandbox.url}/__sandbox/pay/faults`, { method: 'POST', body: JSON.stringify({ badAnswerSignatures: 0 }) });
  });

  it('the certificate mode: a merchant verifying with downloaded platform certificates only', async () => {
    const { client, wx } = phone(w, OTHER_APPID);
    const session = await client.login();
    const outTradeNo = orderNo();
    const made = await createOrder(w, { session: session.token, outTradeNo, description: 'cert', amount: 300 }, OTHER_APPID);
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    expect(await client.pay(made.body.payment)).toEqual({ outcome: 'paid' });
    wx.close();
    const events = await until(() => w.webhook.of(outTradeNo), (d) => d.length > 0);
    expect(events[0]!.body.order).toMatchObject({ mchid: CERT_MCHID, appid: OTHER_APPID, state: 'SUCCESS' });
    const platform = (await (await fetch(`${w.sandbox.url}/__sandbox/pay/platform`)).json()) as { certificateSerial: string };
    expect(w.sandbox.pay.sent.at(-1)).toMatchObject({ status: 204 });
    expect(platform.certificateSerial).toMatch(/^[0-9A-F]+$/);
  });

  it('a merchant migrating accepts both: payments signed with the public key, then with the platform certificate', async () => {
    const before = await payOnce(w);
    await until(() => w.webhook.of(before.outTradeNo), (d) => d.length > 0);
    // WeChat switches this merchant to its certificate.
    await registerAtSandbox(w.sandbox, w.merchant, 'certificate');
    try {
      const after = await payOnce(w);
      expect(after.taps[0]!.body.attempts.map((a: { status: number }) => a.status)).toEqual([204]);
      expect(await until(() => w.webhook.of(after.outTradeNo), (d) => d.length > 0)).toHaveLength(1);
    } finally {
      await registerAtSandbox(w.sandbox, w.merchant, 'publicKey');
    }
  });

  it('the reconciliation finds a paid order whose notification was dropped and delivers it once', async () => {
    const { outTradeNo, taps } = await payOnce(w, { drop: true });
    expect(taps[0]!.body.attempts).toEqual([]);
    await pause(400);
    expect(w.webhook.of(outTradeNo)).toHaveLength(0);
    w.h.clock.advance(11 * 60_000);
    const events = await until(() => w.webhook.of(outTradeNo), (d) => d.length > 0);
    expect(events).toHaveLength(1);
    expect(events[0]!.body).toMatchObject({ source: 'reconciliation', order: { state: 'SUCCESS', outTradeNo } });
    await pause(400);
    expect(w.webhook.of(outTradeNo)).toHaveLength(1);
  });

  it('shipping info: uploaded for a paid order through the token gateway, its state queried, and the settlement push delivered', async () => {
    const { outTradeNo } = await payOnce(w);
    const path = `/v1/apps/${TEST_APPID}/pay/orders/${outTradeNo}/shipping`;
    expect((await w.h.internal('GET', path)).body).toMatchObject({ outTradeNo, orderState: 1, state: 'to_ship' });
    const missing = await w.h.internal('POST', path, { logisticsType: 1, shippingList: [{ itemDesc: '拿铁' }] });
    expect(missing.body.error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/trackingNo/) });
    const uploaded = await w.h.internal('POST', path, { logisticsType: 1, shippingList: [{ itemDesc: '拿铁', trackingNo: 'SF1234567890', expressCompany: 'SF', contact: { receiverContact: '189****1234' } }] });
    expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(200);
    expect((await w.h.internal('GET', path)).body).toMatchObject({ orderState: 2, state: 'shipped', shipping: { shipping_list: [{ tracking_no: 'SF1234567890' }], payer: { openid: expect.any(String) } } });
    // An unpaid order has no shipping.
    const unpaid = await createOrder(w, { openid: 'o_user_3', outTradeNo: orderNo(), description: 'x', amount: 1 });
    expect((await w.h.internal('POST', `/v1/apps/${TEST_APPID}/pay/orders/${unpaid.body.outTradeNo}/shipping`, { logisticsType: 3, shippingList: [{ itemDesc: 'x' }] })).status).toBe(400);
    // The user confirms receipt: WeChat's trade_manage_order_settlement push reaches the app's push webhook.
    await w.h.control('push-target', { appid: TEST_APPID, url: `${w.h.url}/wechat/push/${TEST_APPID}`, token: PUSH_TOKEN });
    const confirmed = await w.h.control<{ attempts: { body: string }[] }>('pay/confirm-receipt', { mchid: MCHID, outTradeNo });
    expect(confirmed.attempts.map((a) => a.body)).toEqual(['success']);
    const push = await until(() => w.webhook.deliveries.filter((d) => d.body.message?.Event === 'trade_manage_order_settlement' && d.body.message?.merchant_trade_no === outTradeNo), (d) => d.length > 0);
    expect(push).toHaveLength(1);
    expect((await w.h.internal('GET', path)).body).toMatchObject({ orderState: 3, state: 'received' });
  });

  it('secrets (merchant key, APIv3 key) appear in no log line, answer or metric', async () => {
    const metrics = await w.h.internal('GET', '/metrics');
    const openapi = await w.h.internal('GET', '/openapi.json');
    const keyBody = (pem: string) => pem.split('\n')[1]!;
    const haystacks = [w.h.logs.text(), metrics.raw.toString('utf8'), openapi.raw.toString('utf8'), w.webhook.deliveries.map((d) => d.raw).join('\n')];
    for (const text of haystacks) {
      for (const secret of [API_V3_KEY, CERT_API_V3_KEY, keyBody(w.merchant.privateKeyPem), keyBody(w.certMerchant.privateKeyPem), INTERNAL_TOKEN]) expect(text.includes(secret)).toBe(false);
    }
    expect(w.h.logs.text()).toContain('pay: notification taken');
    // What the metrics do say: outcomes, never an order or a user (a merchant shows only in the outbox kind, pay.m<mchid>).
    const text = metrics.raw.toString('utf8');
    expect(text).toMatch(/minigate_pay_notifications_total\{outcome="taken"\} [1-9]/);
    expect(text).toMatch(/minigate_pay_notifications_total\{outcome="signature"\} [1-9]/);
    expect(text).toMatch(/minigate_pay_calls_total\{api="jsapi",outcome="unverified"\} [1-9]/);
    expect(text).not.toMatch(/o_user_|T[0-9a-f]{16}/);
    expect(text).toContain(`kind="pay.m${MCHID}"`);
  });
});

describe('pay config', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-pay-config-'));
  const m = makeMerchant(dir, MCHID, SERIAL, API_V3_KEY);
  const pub = path.join(dir, 'pub.pem');
  writeFileSync(pub, m.publicKeyPem);
  const base = (pay: Record<string, unknown>, merchant: Record<string, unknown> = {}) => ({
    dataDir: dir,
    listen: { internal: '127.0.0.1:0' },
    internal: { token: INTERNAL_TOKEN },
    upstreamSecret: UPSTREAM_SECRET,
    apps: [{ appid: TEST_APPID, secret: TEST_SECRET }, { appid: OTHER_APPID, secret: OTHER_SECRET }],
    pay: { notifyBase: 'https://api.example.com', merchants: [{ mchid: MCHID, appids: [TEST_APPID], privateKeyFile: m.keyFile, serial: SERIAL, apiV3Key: API_V3_KEY, publicKeyId: 'PUB_KEY_ID_0114232134912410000000000000', publicKeyFile: pub, ...merchant }], ...pay },
  });
  const problems = (object: Record<string, unknown>) => {
    try {
      loadConfig({ object, env: {}, checks: [payConfigIssues] });
      return [];
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return error.problems.map((p) => `${p.path}: ${p.message}`);
    }
  };

  it('accepts a merchant in public key mode, with the key from a file', () => {
    expect(problems(base({}))).toEqual([]);
  });

  it('an APIv3 key of the wrong length is refused at load, naming the key but never showing it', () => {
    const found = problems(base({}, { apiV3Key: API_V3_KEY.slice(0, 31) }));
    expect(found).toEqual([expect.stringMatching(/^pay\.merchants\[0\]\.apiV3Key: the APIv3 key is exactly 32 bytes/)]);
    expect(found.join()).not.toContain(API_V3_KEY.slice(0, 31));
  });

  it('refuses an appid under two merchants unless calls must name the merchant', () => {
    const two = base({});
    const pay = two.pay as { merchants: Record<string, unknown>[] };
    pay.merchants.push({ ...pay.merchants[0], mchid: '1900000999' });
    expect(problems(two).join('\n')).toMatch(/pay\.merchants\[1\]\.appids\[0\]: wx0123456789abcdef is under merchants 1900000109 and 1900000999/);
    expect(problems({ ...two, pay: { ...pay, mchidRequired: true } })).toEqual([]);
  });

  it('refuses a merchant with no way to verify WeChat Pay, a key file that is not a key, and an appid that is not configured', () => {
    expect(problems(base({}, { publicKeyId: undefined, publicKeyFile: undefined })).join()).toMatch(/say how to verify WeChat Pay/);
    const notKey = path.join(dir, 'not-a-key.pem');
    writeFileSync(notKey, 'hello');
    expect(problems(base({}, { privateKeyFile: notKey }))).toEqual([expect.stringMatching(/privateKey: not a PEM private key/)]);
    expect(problems(base({}, { publicKeyFile: path.join(dir, 'missing.pem') }))).toEqual([expect.stringMatching(/publicKeyFile: no such file/)]);
    expect(problems(base({}, { appids: ['wx1111111111111111'] })).join()).toMatch(/is not one of apps\[\]\.appid/);
  });
});
