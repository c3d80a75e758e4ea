import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createManualClock, type ManualClock } from '../core/clock.js';
import { createLogger, silentLogger } from '../core/logger.js';
import { createPrometheus, type Prometheus } from '../core/prometheus.js';
import { webhookSignature } from '../core/signature.js';
import { createStore, type Store } from '../store/index.js';
import { outboxMetrics } from './metrics.js';
import { createOutbox, type Outbox } from './outbox.js';

const APPID = 'wx0123456789abcdef';
const SECRET = 'outbox-test-secret';

describe('outbox', () => {
  let dir: string;
  let store: Store;
  let clock: ManualClock;
  let outbox: Outbox;
  let logs: string[];
  let url: string;
  let prometheus: Prometheus;
  /** minigate_outbox_deliveries_total for a kind and outcome (0 when not yet recorded). */
  const deliveries = async (kind: string, outcome: string) => {
    const text = await prometheus.scrape();
    const line = text.split('\n').find((l) => l.startsWith(`minigate_outbox_deliveries_total{kind="${kind}",outcome="${outcome}"}`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const statuses: number[] = [];
  const hook: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(statuses.shift() ?? 204).end();
    });
  });

  async function settled<T>(get: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
    const end = Date.now() + 3_000;
    for (;;) {
      const value = await get();
      if (ok(value)) return value;
      if (Date.now() > end) throw new Error(`timed out; last value ${JSON.stringify(value)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mg-outbox-'));
    store = await createStore({ url: `sqlite:${path.join(dir, 'db')}`, logger: silentLogger() });
    await store.migrate();
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/events`;
  });
  afterAll(async () => {
    await outbox?.close();
    hook.closeAllConnections();
    await new Promise((resolve) => hook.close(resolve));
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await outbox?.close();
    received.length = 0;
    statuses.length = 0;
    logs = [];
    clock = createManualClock();
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    prometheus = createPrometheus({ defaultMetrics: false });
    outbox = createOutbox({ store, clock, logger: createLogger({ level: 'info', destination }), pollMs: 20, metrics: outboxMetrics(prometheus) });
  });

  it('records an event of a kind nobody registered as failed, with the reason, and goes on with the others', async () => {
    outbox.target('push', () => ({ url, secret: SECRET }), { idHeader: 'x-minigate-push-id' });
    // Written by another instance (or version) that runs a feature this one does not.
    await store.outboxAdd({ id: 'unknown-kind-1', kind: 'pay.transaction', appid: APPID, dedupKey: 'pay.transaction:t1', payload: '{"amount":1}', now: clock.now() });
    const pushId = await outbox.enqueue({ kind: 'push', appid: APPID, dedupKey: 'msg:1', payload: { n: 1 } });
    outbox.start();
    const entry = await settled(() => store.outboxGet('unknown-kind-1'), (e) => e?.status === 'failed');
    expect(entry).toMatchObject({ attempts: 1, lastError: 'no delivery target for kind "pay.transaction"' });
    expect(await settled(() => store.outboxGet(pushId!), (e) => e?.status === 'delivered')).toBeTruthy();
    expect(received).toHaveLength(1);
    const line = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.id === 'unknown-kind-1');
    expect(line).toMatchObject({ level: 50, kind: 'pay.transaction', msg: 'pay.transaction: webhook delivery given up' });
    expect(await deliveries('pay.transaction', 'failed')).toBe(1);
    expect(await deliveries('push', 'delivered')).toBe(1);
  });

  it('sends a kind to the URL its target names, signed, with the id first in the body and in the target’s header', async () => {
    outbox.target('pay.transaction', (appid) => (appid === APPID ? { url, secret: SECRET } : null));
    const id = await outbox.enqueue({ kind: 'pay.transaction', appid: APPID, dedupKey: 'tx-1', payload: { transaction: { amount: 100 }, note: '你好' } });
    expect(id).toMatch(/^[0-9a-f]{24}$/);
    await settled(async () => received.length, (n) => n === 1);
    const [delivery] = received;
    expect(delivery!.body).toBe(`{"id":"${id}","transaction":{"amount":100},"note":"你好"}`);
    expect(delivery!.headers).toMatchObject({ 'content-type': 'application/json', 'x-minigate-event-id': id, 'x-minigate-appid': APPID });
    const timestamp = String(delivery!.headers['x-minigate-timestamp']);
    expect(delivery!.headers['x-minigate-signature']).toBe(webhookSignature(SECRET, timestamp, delivery!.body));
    expect(await settled(() => store.outboxGet(id!), (e) => e?.status === 'delivered')).toMatchObject({ kind: 'pay.transaction', attempts: 0 });
  });

  it('drops a repeat within a kind, keeps the same key of two kinds apart, and marks an app without a destination done', async () => {
    outbox.target('push', () => null);
    outbox.target('pay.refund', () => null);
    const first = await outbox.enqueue({ kind: 'push', appid: APPID, dedupKey: 'shared-key', payload: {} });
    expect(first).not.toBeNull();
    expect(await outbox.enqueue({ kind: 'push', appid: APPID, dedupKey: 'shared-key', payload: {} })).toBeNull();
    const other = await outbox.enqueue({ kind: 'pay.refund', appid: APPID, dedupKey: 'shared-key', payload: {} });
    expect(other).not.toBeNull();
    expect(await store.outboxGet(first!)).toMatchObject({ dedupKey: 'shared-key' }); // push keys are stored as before
    expect(await store.outboxGet(other!)).toMatchObject({ dedupKey: 'pay.refund:shared-key' });
    outbox.start();
    await settled(() => store.outboxGet(other!), (e) => e?.status === 'delivered');
    expect(await store.outboxGet(first!)).toMatchObject({ status: 'delivered', attempts: 0 });
    expect(received).toEqual([]);
  });

  it('retries a failing delivery on the back-off schedule and records the failure', async () => {
    outbox.target('push', () => ({ url, secret: SECRET }), { idHeader: 'x-minigate-push-id' });
    statuses.push(500);
    const id = await outbox.enqueue({ kind: 'push', appid: APPID, dedupKey: 'msg:retry', payload: { n: 2 } });
    const failed = await settled(() => store.outboxGet(id!), (e) => e?.attempts === 1);
    expect(failed).toMatchObject({ status: 'pending', lastError: 'HTTP 500', nextAttemptAt: clock.now() + 1_000 });
    expect(received[0]!.headers['x-minigate-push-id']).toBe(id);
    clock.advance(1_000);
    outbox.kick();
    expect(await settled(() => store.outboxGet(id!), (e) => e?.status === 'delivered')).toMatchObject({ attempts: 1, lastError: null });
    expect(logs.join('\n')).toContain('push: webhook delivery failed; will retry');
    expect([await deliveries('push', 'retried'), await deliveries('push', 'delivered'), await deliveries('push', 'failed')]).toEqual([1, 1, 0]);
  });

  it('refuses what is a programming error: a bad or doubled kind, an unregistered kind, a payload with its own id', async () => {
    outbox.target('push', () => null);
    expect(() => outbox.target('push', () => null)).toThrow('already has a target');
    expect(() => outbox.target('Pay Transaction', () => null)).toThrow('is not a kind');
    await expect(outbox.enqueue({ kind: 'pay.transaction', appid: APPID, dedupKey: 'k', payload: {} })).rejects.toThrow('no target registered for kind "pay.transaction"');
    await expect(outbox.enqueue({ kind: 'push', appid: APPID, dedupKey: 'k', payload: { id: 'x' } })).rejects.toThrow('has its own id');
  });
});
