import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS, createPrometheus } from './prometheus.js';

/** The same observations through prom-client's own calls, for comparison. */
async function reference(kind: 'counter' | 'histogram', record: (m: Counter | Histogram) => void): Promise<string> {
  const registry = new Registry();
  const m =
    kind === 'counter'
      ? new Counter({ name: 'x_total', help: 'h', labelNames: ['a', 'b'], registers: [registry] })
      : new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['a', 'b'], buckets: LATENCY_BUCKETS, registers: [registry] });
  record(m);
  return registry.metrics();
}

const SAMPLES = [0, 0.0005, 0.001, 0.003, 0.2, 0.2, 1, 9.99, 10, 20, 1e6];

describe('bound metrics (the request path)', () => {
  it('a bound histogram exposes exactly what prom-client would for the same observations', async () => {
    const p = createPrometheus({ defaultMetrics: false });
    const h = p.histogram('x_seconds', 'h', ['a', 'b']);
    const one = h.bind({ a: '1', b: 'x' });
    const two = h.bind({ a: '2', b: 'y' });
    for (const s of SAMPLES) one.observe(s);
    two.observe(0.02);
    h.observe(0.5, { a: '1', b: 'x' }); // the unbound call adds to the same series
    const expected = await reference('histogram', (m) => {
      for (const s of SAMPLES) (m as Histogram).observe({ a: '1', b: 'x' }, s);
      (m as Histogram).observe({ a: '2', b: 'y' }, 0.02);
      (m as Histogram).observe({ a: '1', b: 'x' }, 0.5);
    });
    expect(await p.scrape()).toBe(expected);
  });

  it('a bound histogram keeps counting after the registry is reset, and refuses a non-number', async () => {
    const p = createPrometheus({ defaultMetrics: false });
    const one = p.histogram('x_seconds', 'h', ['a', 'b']).bind({ a: '1', b: 'x' });
    one.observe(0.1);
    p.registry.resetMetrics();
    one.observe(0.3);
    one.observe(0.004);
    expect(() => one.observe(Number.NaN)).toThrow();
    const expected = await reference('histogram', (m) => {
      (m as Histogram).observe({ a: '1', b: 'x' }, 0.3);
      (m as Histogram).observe({ a: '1', b: 'x' }, 0.004);
    });
    expect(await p.scrape()).toBe(expected);
  });

  it('a bound counter shows its count at each scrape, and a series never counted does not appear', async () => {
    const p = createPrometheus({ defaultMetrics: false });
    const c = p.counter('x_total', 'h', ['a', 'b']);
    const one = c.bind({ a: '1', b: 'x' });
    c.bind({ a: 'never', b: 'x' });
    one.inc();
    one.inc(2);
    c.inc({ a: '1', b: 'x' });
    expect(await p.scrape()).toBe(await reference('counter', (m) => (m as Counter).inc({ a: '1', b: 'x' }, 4)));
    one.inc();
    expect(await p.scrape()).toBe(await reference('counter', (m) => (m as Counter).inc({ a: '1', b: 'x' }, 5)));
  });

  it('binding a label the family does not have fails at once', () => {
    const p = createPrometheus({ defaultMetrics: false });
    expect(() => p.counter('x_total', 'h', ['a']).bind({ nope: '1' })).toThrow();
  });
});
