import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type ConfigProblem } from './load.js';
import { envKeyPath } from './load.js';
import { configReference } from './reference.js';

const APP = 'apps:\n  - appid: wx0123456789abcdef\n    secret: s3cret\n';

function problems(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    loadConfig({ text, file: 'minigate.yaml', env, cwd: '/srv' });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the config to be refused');
}

describe('loadConfig', () => {
  it('fills defaults: durations in ms, addresses parsed, store in dataDir, frozen', () => {
    const config = loadConfig({ text: APP, file: '/etc/minigate/minigate.yaml', env: {} });
    expect(config.dataDir).toBe('/etc/minigate/.minigate');
    expect(config.store).toBe('sqlite:/etc/minigate/.minigate/minigate.db');
    expect(config.listen.http).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.wechat).toEqual({ apiBase: 'https://api.weixin.qq.com', timeout: 5000 });
    expect(config.apps[0]!.session).toEqual({ idle: 7 * 86_400_000, absolute: 30 * 86_400_000, maxPerUser: 10 });
    expect(Object.isFrozen(config.apps[0]!.session)).toBe(true);
  });

  it('reports every problem with file:line:col and key path, unknown keys with a suggestion', () => {
    const found = problems(`
listen:
  http: not-an-address
wechat:
  timeot: 5s
apps:
  - appid: 123
    secret: x
    session:
      idle: 7days
      absolute: 1m
`);
    expect(found).toEqual([
      { where: 'minigate.yaml:3:3', path: 'listen.http', message: expect.stringContaining('expected a port or host:port') },
      { where: 'minigate.yaml:5:3', path: 'wechat.timeot', message: expect.stringMatching(/^unknown key \(did you mean "timeout"\?\)/) },
      { where: 'minigate.yaml:7:5', path: 'apps[0].appid', message: expect.any(String) },
      { where: 'minigate.yaml:10:7', path: 'apps[0].session.idle', message: 'expected a duration such as "30s", "15m" or "7d"' },
    ]);
  });

  it('checks absolute >= idle, durations >= 1m, maxPerUser bounds, duplicate appids', () => {
    const found = problems(`
apps:
  - appid: wx0123456789abcdef
    secret: a
    session: { idle: 2d, absolute: 1d, maxPerUser: 0 }
  - appid: wx0123456789abcdef
    secret: b
    session: { idle: 10s }
`);
    expect(found.map((p) => p.path)).toEqual([
      'apps',
      'apps[0].session.absolute',
      'apps[0].session.maxPerUser',
      'apps[1].session.idle',
    ]);
  });

  it('checks that a push room can be joined: channels on, a rule for it, a room name', () => {
    const app = (room: string) => `apps:\n  - appid: wx0123456789abcdef\n    secret: s\n    push: { token: t, room: "${room}" }\n`;
    const loaded = loadConfig({ text: app('user:{openid}'), file: 'minigate.yaml', env: {} });
    expect(loaded.apps[0]!.push?.room).toBe('user:{openid}');
    expect(() => loadConfig({ text: app('ops:push') + 'channel:\n  rooms: [{ match: "ops:*", publish: server }]\n', file: 'minigate.yaml', env: {} })).not.toThrow();
    const [noRule] = problems(app('ops:push'));
    expect(noRule).toMatchObject({ path: 'apps[0].push.room', message: expect.stringContaining('no channel.rooms rule covers ops:push') });
    const [off] = problems(app('user:{openid}') + 'channel:\n  enabled: false\n');
    expect(off).toMatchObject({ path: 'apps[0].push.room', message: expect.stringContaining('channel.enabled') });
  });

  it('relay: `relay: {}` turns it on with defaults; tunnel routes need it, it needs listen.https, names are checked', () => {
    const https = 'listen:\n  https: 0.0.0.0:443\ntls:\n  devCa: true\n';
    const loaded = loadConfig({ text: `${APP}${https}relay: {}\nroutes:\n  - { path: /dev, tunnel: alice }\n`, file: 'minigate.yaml', env: {} });
    expect(loaded.relay).toEqual({ maxStreams: 256, helloTimeout: 10_000, pingInterval: 20_000, idleTimeout: 300_000, uploadTimeout: 3_600_000, handoffAddress: '127.0.0.1' });
    // The hand-off listener's address: an IP other instances can reach, never a wildcard or a host:port.
    expect(loadConfig({ text: `${APP}${https}relay: { handoffAddress: "10.0.0.7" }\n`, file: 'minigate.yaml', env: {} }).relay?.handoffAddress).toBe('10.0.0.7');
    expect(loadConfig({ text: `${APP}${https}relay: { handoffAddress: "fd00::7" }\n`, file: 'minigate.yaml', env: {} }).relay?.handoffAddress).toBe('fd00::7');
    for (const bad of ['0.0.0.0', '::', '10.0.0.7:9000', 'relay.internal', '']) {
      expect(problems(`${APP}${https}relay: { handoffAddress: "${bad}" }\n`)[0], bad).toMatchObject({ path: 'relay.handoffAddress' });
    }
    expect(loadConfig({ text: `${APP}${https}`, file: 'minigate.yaml', env: {} }).relay).toBeUndefined();
    expect(problems(`${APP}${https}routes:\n  - { path: /dev, tunnel: alice }\n`)).toEqual([
      expect.objectContaining({ path: 'routes[0].tunnel', message: expect.stringContaining('relay: {}') }),
    ]);
    expect(problems(`${APP}relay: {}\n`)).toEqual([expect.objectContaining({ path: 'relay', message: expect.stringContaining('listen.https') })]);
    expect(problems(`${APP}${https}relay: {}\nroutes:\n  - { path: /dev, tunnel: Alice_1 }\n`)[0]).toMatchObject({ path: 'routes[0].tunnel' });
    expect(problems(`${APP}${https}relay: {}\nroutes:\n  - { path: /dev, tunnel: alice, proxy: "http://127.0.0.1:1" }\n`)[0]!.message).toContain('exactly one of');
    expect(problems(`${APP}${https}relay: {}\nroutes:\n  - { path: /dev, tunnel: alice, auth: required }\n`)[0]).toMatchObject({ path: 'routes[0].auth', message: expect.stringContaining('upstreamSecret') });
  });

  it('names a missing required key at its parent', () => {
    expect(problems('apps:\n  - appid: wx0123456789abcdef\n')).toEqual([
      { where: 'minigate.yaml:2:5', path: 'apps[0].secret', message: 'is required' },
    ]);
    expect(problems('listen: {}\n')).toEqual([{ where: 'minigate.yaml', path: 'apps', message: 'is required' }]);
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    expect(problems('apps: [\n')[0]!.where).toMatch(/^minigate\.yaml:\d+:\d+$/);
    const dup = problems(`${APP}store: sqlite:a.db\nstore: sqlite:b.db\n`);
    expect(dup[0]).toMatchObject({ where: 'minigate.yaml:5:1' });
    expect(problems('- a\n- b\n')).toEqual([{ where: 'minigate.yaml', path: '', message: 'the file must hold a mapping of keys' }]);
  });

  it('interpolates ${VAR} and ${VAR:-fallback}; $$ is a dollar; an unset VAR is one error', () => {
    const config = loadConfig({
      text: 'apps:\n  - appid: wx0123456789abcdef\n    secret: ${SECRET}$$x\nwechat:\n  apiBase: ${API:-http://127.0.0.1:9}\n',
      file: 'f.yaml',
      env: { SECRET: 'abc' },
    });
    expect(config.apps[0]!.secret).toBe('abc$x');
    expect(config.wechat.apiBase).toBe('http://127.0.0.1:9');
    const found = problems('apps:\n  - appid: wx0123456789abcdef\n    secret: ${NOPE}\n');
    expect(found).toEqual([
      { where: 'minigate.yaml:3:5', path: 'apps[0].secret', message: expect.stringContaining('NOPE is not set') },
    ]);
  });

  it('reads any secret from …File, relative to the config file; both or unreadable is an error', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mg-config-'));
    writeFileSync(path.join(dir, 'secret.txt'), 'from-a-file\n');
    writeFileSync(path.join(dir, 'store.txt'), 'mysql://u:p@db:3306/x');
    const file = path.join(dir, 'minigate.yaml');
    writeFileSync(file, 'apps:\n  - appid: wx0123456789abcdef\n    secretFile: secret.txt\nstoreFile: store.txt\n');
    const config = loadConfig({ file, env: {} });
    expect(config.apps[0]!.secret).toBe('from-a-file');
    expect(config.store).toBe('mysql://u:p@db:3306/x');

    writeFileSync(file, 'apps:\n  - appid: wx0123456789abcdef\n    secret: a\n    secretFile: secret.txt\n  - appid: wxfedcba9876543210\n    secretFile: missing.txt\n');
    const error = (() => {
      try {
        loadConfig({ file, env: {} });
      } catch (e) {
        return e as ConfigError;
      }
    })()!;
    expect(error.problems).toEqual([
      { where: `${file}:4:5`, path: 'apps[0].secretFile', message: 'give either secret or secretFile, not both' },
      { where: `${file}:6:5`, path: 'apps[1].secretFile', message: expect.stringMatching(/cannot read .*missing\.txt \(no such file\)/) },
    ]);
    // A key that is not a secret cannot come from a file.
    expect(problems(`${APP}dataDirFile: x\n`)[0]).toMatchObject({ path: 'dataDirFile', message: expect.stringContaining('unknown key') });
  });

  it('applies MINIGATE_<KEY_PATH> overrides, typed by the schema, and names the variable in errors', () => {
    const config = loadConfig({
      text: APP,
      file: 'f.yaml',
      env: {
        MINIGATE_STORE: 'postgres://u@h/db',
        MINIGATE_LISTEN_HTTP: '0.0.0.0:9000',
        MINIGATE_APPS_0_SESSION_MAX_PER_USER: '3',
        MINIGATE_APPS_0_SESSION_IDLE: '1h',
        MINIGATE_WECHAT_APIBASE: 'http://127.0.0.1:1',
        MINIGATE_CONFIG: 'ignored.yaml',
      },
    });
    expect(config.store).toBe('postgres://u@h/db');
    expect(config.listen.http).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(config.apps[0]!.session).toMatchObject({ maxPerUser: 3, idle: 3_600_000 });
    expect(config.wechat.apiBase).toBe('http://127.0.0.1:1');

    expect(problems(APP, { MINIGATE_APPS_0_SESSION_MAXPERUSER: 'lots', MINIGATE_STOER: 'x', MINIGATE_STORE: 'ftp://x' })).toEqual([
      { where: 'env MINIGATE_APPS_0_SESSION_MAXPERUSER', path: 'apps[0].session.maxPerUser', message: 'expected a number, got "lots"' },
      { where: 'env MINIGATE_STOER', path: '', message: 'does not name a config key; remove it or fix its name' },
      { where: 'env MINIGATE_STORE', path: 'store', message: expect.stringContaining('expected sqlite:PATH') },
    ]);
  });

  it('builds a whole app from env vars, including a secret from a file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mg-config-'));
    writeFileSync(path.join(dir, 's'), 'file-secret');
    const config = loadConfig({
      text: '',
      file: path.join(dir, 'minigate.yaml'),
      env: { MINIGATE_APPS_0_APPID: 'wx0123456789abcdef', MINIGATE_APPS_0_SECRET_FILE: path.join(dir, 's') },
    });
    expect(config.apps[0]).toMatchObject({ appid: 'wx0123456789abcdef', secret: 'file-secret' });
    expect(loadConfig({ text: '', file: 'x', env: { MINIGATE_APPS: '[{"appid":"wx0123456789abcdef","secret":"j"}]' } }).apps[0]!.secret).toBe('j');
  });

  it('maps env names to key paths', () => {
    expect(envKeyPath('MINIGATE_APPS_12_SESSION_ABSOLUTE')?.path).toEqual(['apps', 12, 'session', 'absolute']);
    expect(envKeyPath('MINIGATE_SECRET_KEY')?.path).toEqual(['secretKey']);
    expect(envKeyPath('MINIGATE_SECRETKEY_FILE')?.path).toEqual(['secretKeyFile']);
    expect(envKeyPath('MINIGATE_LOG_LEVEL')?.path).toEqual(['log', 'level']);
    expect(envKeyPath('MINIGATE_NOTHING')).toBeNull();
    expect(envKeyPath('OTHER_STORE')).toBeNull();
  });

  it('never puts a secret value into an error message', () => {
    const found = problems('apps:\n  - appid: wx0123456789abcdef\n    secret: ""\nsecretKey: hunter2-hunter2\nstore: "ftp://user:topsecretpw@x"\n');
    const text = JSON.stringify(found);
    expect(found.map((p) => p.path)).toEqual(['apps[0].secret', 'secretKey', 'store']);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('topsecretpw');
  });
});

describe('configuration reference', () => {
  it('docs/configuration.md is generated from the schema (run `npm run docs:config`)', () => {
    const doc = readFileSync(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8');
    expect(doc).toBe(configReference());
  });
});
