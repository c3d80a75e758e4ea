/**
 * The console's charts come from the metrics registry (prom-client): requests and 5xx from
 * minigate_http_requests_total, logins from minigate_logins_total{outcome="ok"}. The reading is
 * checked on a real registry (against its own exposition text); a running server's series counts what /metrics counts; with metrics.enabled false
 * the API says "off" and the page (in Chromium) says so instead of drawing empty charts.
 * `workers: 2` (each worker charts its own share) is in metrics.test.ts.
 */
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrometheus, type MetricSample } from '../src/core/index.js';
import { createAdminRecords, hashPassword } from '../src/admin/index.js';
import { readTraffic } from '../src/admin/traffic.js';
import { startHarness, type Harness } from './helpers/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const INTERNAL_TOKEN = 'internal-token-for-admin-charts-0123456789';
const PASSWORD = 'correct horse battery staple';
const NAMES = ['minigate_http_requests_total', 'minigate_logins_total'];

/** The named families' samples in exposition text (what an operator's scrape shows; our labels hold no quotes). */
function parseSamples(text: string, names: readonly string[]): Record<string, MetricSample[]> {
  const found: Record<string, MetricSample[]> = {};
  for (const line of text.split('\n')) {
    const match = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || !names.includes(match[1]!)) continue;
    const labels = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    (found[match[1]!] ??= []).push({ labels, value: Number(match[3]) });
  }
  return found;
}

describe('reading the counters', () => {
  it('sums requests, 5xx and successful logins across every label set', async () => {
    const prometheus = createPrometheus({ defaultMetrics: false });
    const requests = prometheus.counter('minigate_http_requests_total', 'h', ['listener', 'route', 'method', 'status']);
    const logins = prometheus.counter('minigate_logins_total', 'h', ['appid', 'outcome', 'code']);
    requests.inc({ listener: 'https', route: '/auth/login', method: 'POST', status: '200' }, 3);
    requests.inc({ listener: 'internal', route: '/v1/x', method: 'GET', status: '502' }, 2);
    requests.inc({ listener: 'https', route: '/api', method: 'GET', status: '404' });
    requests.inc({ listener: 'https', route: '/api', method: 'GET', status: '500' });
    logins.inc({ appid: 'wx1', outcome: 'ok', code: '' }, 2);
    logins.inc({ appid: 'wx1', outcome: 'refused', code: 'WECHAT_CODE_INVALID' });
    expect(await readTraffic(prometheus.samples)).toEqual({ requests: 7, errors: 3, logins: 2 });
    // What a scrape of the same registry shows.
    expect(parseSamples(await prometheus.registry.metrics(), NAMES)).toEqual(await prometheus.samples(NAMES));
    // No family registered yet (a feature off): zero, not an error.
    expect(await readTraffic(createPrometheus({ defaultMetrics: false }).samples)).toEqual({ requests: 0, errors: 0, logins: 0 });
  });
});

/** A harness with the console on and one admin; the console's API by cookie. */
async function consoleOn(config: Record<string, unknown>) {
  const h = await startHarness({ config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL_TOKEN }, ...config } });
  await createAdminRecords(h.server.store).addUser({ name: 'ops', passwordHash: await hashPassword(PASSWORD), totpSecret: null, createdAt: Date.now() });
  const admin = `${h.server.urls.internal}/admin/`;
  const login = await fetch(`${admin}api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ops', password: PASSWORD }) });
  expect(login.status).toBe(200);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';', 1)[0]!;
  const get = async (route: string) => (await (await fetch(`${admin}api/${route}`, { headers: { cookie } })).json()) as any;
  return { h, admin, get };
}

describe('a running server', () => {
  let on: Awaited<ReturnType<typeof consoleOn>> | undefined;
  let off: Awaited<ReturnType<typeof consoleOn>> | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    [on, off] = await Promise.all([consoleOn({}), consoleOn({ metrics: { enabled: false } })]);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await Promise.all([on?.h.close(), off?.h.close()]);
  });

  it('charts what /metrics counts (this process)', async () => {
    const { h, get } = on!;
    const counted = async () => readTraffic(async (names) => parseSamples((await h.internal('GET', '/metrics')).raw.toString('utf8'), names));
    const before = await counted();
    const { code } = await h.code();
    expect((await h.login({ code })).status).toBe(200);
    expect((await h.login({ code: 'no-such-code' })).status).toBeGreaterThanOrEqual(400);
    for (let i = 0; i < 5; i++) await h.get('/healthz');
    const expected = await counted();
    expect(expected.logins).toBe(1);
    expect(expected.requests - before.requests).toBeGreaterThanOrEqual(8);
    // The sampler reads every 10 s: wait for a point taken after the scrape.
    const started = Date.now();
    let series: any;
    for (;;) {
      series = await get('series');
      if (series.points.some((p: { at: number }) => p.at > started) || Date.now() - started > 15_000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(series.metrics).toBe('process');
    const total = (k: string) => series.points.reduce((sum: number, p: Record<string, number>) => sum + p[k]!, 0);
    expect(total('logins')).toBe(1);
    // The sampler's first reading was taken at start, before `before`.
    expect(total('requests')).toBeGreaterThanOrEqual(expected.requests - before.requests);
    expect(total('errors')).toBe(expected.errors);
    const overview = await get('overview');
    expect(overview.metrics).toBe('process');
    expect(overview.requestsPerSecond).toBeGreaterThan(0);
  }, 30_000);

  it('with metrics.enabled false: the API says off, the page says "metrics off" instead of charts', async () => {
    const { admin, get } = off!;
    const overview = await get('overview');
    expect(overview).toMatchObject({ metrics: 'off', requestsPerSecond: null, errorRate: null });
    expect(await get('series')).toEqual({ everySeconds: 10, metrics: 'off', points: [] });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 15_000 });
    const page = await (await browser.newContext({ locale: 'en-US' })).newPage();
    await page.goto(admin);
    await page.fill('input[name=name]', 'ops');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('#charts-note', { timeout: 15_000 });
    expect(await page.locator('#charts-note').textContent()).toContain('Metrics are off');
    expect(await page.locator('.charts').count()).toBe(0);
  }, 40_000);
});
