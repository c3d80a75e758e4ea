/**
 * ACME against Debian's pebble: minigate orders a certificate over HTTP-01 on listen.http,
 * serves it without a restart, renews it when a third of its lifetime is left, and when the CA
 * is down keeps serving and backs off. Two instances sharing a database order once.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHarness, type Harness } from './helpers/harness.js';
import { handshake } from './helpers/https.js';
import { freePort, startPebble, type Pebble } from './helpers/pebble.js';

const DOMAIN = 'mg.minigate.test';
let pebble: Pebble;
let httpPort: number;
let dataDir: string;

beforeAll(async () => {
  httpPort = await freePort();
  pebble = await startPebble(httpPort);
  dataDir = mkdtempSync(path.join(tmpdir(), 'mg-acme-'));
});
afterAll(async () => {
  await pebble?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function acmeConfig() {
  return {
    config: {
      listen: { http: `127.0.0.1:${httpPort}`, https: '127.0.0.1:0' },
      tls: { checkDomains: false, acme: { email: 'ops@minigate.test', domains: [DOMAIN], directory: pebble.directory, caFile: pebble.caFile } },
    },
    serverDeps: { acmeCheckIntervalMs: 200 },
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('ACME with pebble', () => {
  let h: Harness;
  let root: string;
  // Real time plus an offset the tests move forward (to make a certificate due) and back.
  let offset = 0;
  const clock = {
    now: () => Date.now() + offset,
    advance(ms: number) {
      offset += ms;
    },
  };

  beforeAll(async () => {
    h = await startHarness({ ...acmeConfig(), dataDir, clock });
    root = await pebble.root();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Renewals logged as begun and not yet logged as done or failed. */
  const ordersInFlight = () => {
    const messages = h.logs.entries().map((e) => e.msg);
    const begun = messages.filter((m) => m === 'acme: renewing the certificate').length;
    const ended = messages.filter((m) => m === 'acme: renewal failed; the current certificate stays in use').length
      + messages.filter((m) => m === 'acme: certificate in use').length - 1; // the first one is the order, not a renewal
    return begun - ended;
  };

  const served = async () => {
    const shake = await handshake(Number(new URL(h.server.urls.https!).port), { servername: DOMAIN, ca: root });
    return shake.authorized ? shake.chain[0]! : undefined;
  };

  it('obtains a certificate over HTTP-01 and serves it without a restart', async () => {
    const leaf = await until('the ACME certificate', served);
    expect(leaf.subjectaltname).toContain(`DNS:${DOMAIN}`);
    expect(h.logs.text()).toContain('acme: ordering a certificate');
    // A copy for operators under dataDir.
    expect(readFileSync(path.join(dataDir, 'acme', DOMAIN, 'fullchain.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
  });

  it('renews once a third of the lifetime is left, and serves the new one', async () => {
    const before = (await served())!;
    const lifetime = Date.parse(before.valid_to) - Date.parse(before.valid_from);
    clock.advance(Date.parse(before.valid_to) - Date.now() - lifetime / 3 + 60_000);
    const after = await until('the renewed certificate', async () => {
      const leaf = await served();
      return leaf && leaf.serialNumber !== before.serialNumber ? leaf : undefined;
    });
    expect(Date.parse(after.valid_to)).toBeGreaterThan(Date.parse(before.valid_to) - 1000);
    expect(h.logs.text()).toContain('acme: renewing the certificate');
    // Back to real time: the new certificate is not due. While the clock was ahead a fresh
    // certificate could be due too (the advance has a minute to spare), so another renewal may have
    // begun. A check decides and logs "renewing" in one synchronous step after its last look at the
    // clock, so every renewal that will run has logged by now: wait for each one's outcome, or the
    // next test stops the CA in the middle of an order.
    offset = 0;
    await until('renewals begun with the clock ahead to finish', async () => (ordersInFlight() === 0 ? true : undefined));
  });

  it('keeps serving and backs off when the CA is down', async () => {
    const current = (await served())!;
    await pebble.stop();
    try {
      const lifetime = Date.parse(current.valid_to) - Date.parse(current.valid_from);
      clock.advance(lifetime); // due again
      await until('a failed renewal', async () => (h.logs.text().includes('acme: renewal failed; the current certificate stays in use') ? true : undefined));
      const failure = h.logs.entries().find((e) => e.msg === 'acme: renewal failed; the current certificate stays in use')!;
      expect(failure).toMatchObject({ attempt: 1, retryInMs: 60_000 });
      // No tight loop: within the back-off nothing more is attempted.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(h.logs.entries().filter((e) => e.msg === 'acme: renewal failed; the current certificate stays in use')).toHaveLength(1);
      expect((await served())?.serialNumber).toBe(current.serialNumber);
    } finally {
      offset = 0;
      await pebble.start();
    }
  });
});

describe('ACME with two instances sharing a database', () => {
  it('orders once; the other instance serves the same certificate from the store', async () => {
    const shared = mkdtempSync(path.join(tmpdir(), 'mg-acme-shared-'));
    const store = `sqlite:${path.join(shared, 'shared.db')}`;
    const a = await startHarness({ ...acmeConfig(), store, dataDir: path.join(shared, 'a') });
    const config = acmeConfig();
    const b = await startHarness({ ...config, config: { ...config.config, listen: { http: '127.0.0.1:0', https: '127.0.0.1:0' } }, store, dataDir: path.join(shared, 'a') });
    try {
      const root = await pebble.root();
      const servedBy = (h: Harness) => async () => {
        const shake = await handshake(Number(new URL(h.server.urls.https!).port), { servername: DOMAIN, ca: root });
        return shake.authorized ? shake.chain[0]!.serialNumber : undefined;
      };
      const serialA = await until('instance a', servedBy(a));
      const serialB = await until('instance b', servedBy(b));
      expect(serialB).toBe(serialA);
      const orders = [a, b].flatMap((h) => h.logs.entries().filter((e) => e.msg === 'acme: ordering a certificate'));
      expect(orders).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
      rmSync(shared, { recursive: true, force: true });
    }
  });
});
