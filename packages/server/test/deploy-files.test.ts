/**
 * The container files agree with each other and with the config schema: deploy/minigate.yaml
 * (the container's sample config) validates, deploy/compose.yaml gives it every secret it reads,
 * publishes 80/443 but not listen.internal, and starts minigate only once MariaDB and Redis are
 * healthy; the Dockerfile's final stage carries no compiler and runs as a non-root user. The image
 * itself is built and run by `npm run test:container` (podman).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/index.js';

const read = (name: string) => readFileSync(new URL(`../../../deploy/${name}`, import.meta.url), 'utf8');
const sample = read('minigate.yaml');
const compose = parse(read('compose.yaml')) as {
  services: Record<string, { ports?: string[]; secrets?: string[]; volumes?: string[]; healthcheck?: { test: string[] }; depends_on?: Record<string, { condition: string }> }>;
  secrets: Record<string, { file: string }>;
};

function loadSample() {
  const dir = mkdtempSync(path.join(tmpdir(), 'mg-deploy-'));
  const values: Record<string, string> = {
    wx_app_secret: 'an-app-secret',
    internal_token: 'i'.repeat(40),
    minigate_store: 'mysql://minigate:pw@mariadb:3306/minigate',
  };
  const text = sample.replace(/\/run\/secrets\/(\w+)/g, (_m, name: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, `${values[name] ?? `${name}-value`}\n`);
    return file;
  });
  return loadConfig({ text, file: '/etc/minigate/minigate.yaml', env: {} });
}

describe('deploy/minigate.yaml (the container config)', () => {
  it('validates once its secrets exist, with its state on the /data volume', () => {
    const config = loadSample();
    expect(config.dataDir).toBe('/data');
    expect(config.store).toBe('mysql://minigate:pw@mariadb:3306/minigate');
    expect(config.redis).toBe('redis://redis:6379');
    expect(config.listen.https?.port).toBe(443);
  });
});

describe('deploy/compose.yaml', () => {
  const minigate = compose.services.minigate!;

  it('runs minigate, MariaDB and Redis, each with a health check; minigate waits for healthy ones', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['mariadb', 'minigate', 'redis']);
    for (const [name, service] of Object.entries(compose.services)) expect(service.healthcheck?.test.length, name).toBeGreaterThan(1);
    expect(minigate.depends_on).toEqual({ mariadb: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(minigate.healthcheck!.test.join(' ')).toContain('/healthz');
  });

  it('publishes 80 and 443, never listen.internal', () => {
    const config = loadSample();
    const published = (minigate.ports ?? []).map((p) => Number(p.split(':').pop()));
    expect(published.sort()).toEqual([config.listen.http!.port, config.listen.https!.port].sort());
    expect(published).not.toContain(config.listen.internal!.port);
  });

  it('mounts every secret file the config reads, from files', () => {
    const wanted = [...sample.matchAll(/^[^#\n]*\/run\/secrets\/(\w+)/gm)].map((m) => m[1]!);
    expect(wanted.length).toBeGreaterThan(0);
    for (const name of wanted) {
      expect(minigate.secrets, name).toContain(name);
      expect(compose.secrets[name]?.file, name).toMatch(/^\.\/secrets\//);
    }
    expect(compose.services.mariadb!.secrets).toContain('db_password');
  });

  it('mounts the config where the image looks and keeps /data on a volume', () => {
    expect(minigate.volumes).toContain('./minigate.yaml:/etc/minigate/minigate.yaml:ro');
    expect(minigate.volumes).toContain('minigate-data:/data');
  });
});

describe('deploy/Dockerfile', () => {
  const text = read('Dockerfile');
  const stages = text.split(/^FROM /m).slice(1);
  const final = stages.at(-1)!;

  it('builds on node:20-bookworm-slim in two stages, the compilers only in the first', () => {
    expect(stages.length).toBe(2);
    for (const stage of stages) expect(stage.startsWith('node:20-bookworm-slim')).toBe(true);
    expect(stages[0]).toMatch(/apt-get install[^\n]*python3 make g\+\+/);
    expect(final).not.toMatch(/\b(g\+\+|gcc|make|python3)\b/);
  });

  it('runs minigate start as a non-root user under tini, with a /healthz health check', () => {
    expect(final).toMatch(/^USER minigate$/m);
    expect(final).toMatch(/setcap cap_net_bind_service=\+ep \/usr\/local\/bin\/node/);
    expect(final).toMatch(/install -d -m 0700 -o minigate -g minigate \/data/);
    expect(final).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    expect(final).toMatch(/^CMD \["minigate", "start", "-c", "\/etc\/minigate\/minigate.yaml"\]$/m);
    expect(final).toMatch(/^HEALTHCHECK [\s\S]*HEALTHCHECK_URL/m);
    expect(final).toMatch(/HEALTHCHECK_URL=http:\/\/127\.0\.0\.1:80\/healthz/);
  });
});
