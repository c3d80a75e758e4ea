/**
 * deploy/prometheus/alerts.yml and deploy/grafana/minigate.json name only metrics minigate
 * exports: each parses, and every `minigate_…` name in them is a family listed in docs/metrics.md
 * and registered somewhere in the server's source (a renamed metric breaks this, not the alerts
 * at 3 a.m.).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

function sources(dir: string): string {
  return readdirSync(dir)
    .map((name) => path.join(dir, name))
    .map((file) => (statSync(file).isDirectory() ? sources(file) : file.endsWith('.ts') && !file.endsWith('.test.ts') ? readFileSync(file, 'utf8') : ''))
    .join('\n');
}

const SOURCE = sources(path.join(ROOT, 'packages/server/src'));
const DOC = read('docs/metrics.md');
/** A family's name from a sample's (histograms add _bucket, _count and _sum). */
const family = (name: string) => name.replace(/_(bucket|count|sum)$/, '');
const namesIn = (text: string) => [...new Set([...text.matchAll(/\bminigate_[a-z0-9_]+/g)].map((m) => family(m[0])))];

function expectExported(name: string): void {
  if (/^minigate_(process|nodejs)_/.test(name)) return; // prom-client's defaults, prefixed minigate_
  expect(DOC, `${name} in docs/metrics.md`).toContain(`\`${name}\``);
  expect(SOURCE, `${name} registered in the source`).toContain(`'${name}'`);
}

describe('deploy files', () => {
  it('alerts.yml parses as Prometheus rule groups and names only exported metrics', () => {
    const rules = parse(read('deploy/prometheus/alerts.yml')) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(4);
    for (const rule of all) {
      expect(rule.alert).toMatch(/^Minigate[A-Za-z]+$/);
      const names = namesIn(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      names.forEach(expectExported);
    }
    // Backing up is measured where it happens: the outbox's depth, not a proxy such as failures.
    expect(all.find((r) => r.alert === 'MinigateOutboxBackingUp')?.expr).toContain('minigate_outbox_pending');
  });

  it('the Grafana dashboard is JSON and names only exported metrics', () => {
    const text = read('deploy/grafana/minigate.json');
    const dashboard = JSON.parse(text) as { panels: { targets: { expr: string }[] }[] };
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(6);
    namesIn(text).forEach(expectExported);
  });

  it('every family docs/metrics.md lists is registered in the source', () => {
    const listed = [...DOC.matchAll(/^\| `(minigate_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!);
    expect(listed.length).toBeGreaterThanOrEqual(10);
    listed.forEach(expectExported);
  });
});
