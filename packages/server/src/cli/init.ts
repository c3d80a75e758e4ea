/**
 * `minigate init`: a first minigate.yaml and a .env for its secrets, from a few answers (asked on
 * a terminal, or given as flags with --yes). Everything is checked before anything is written, so
 * a bad answer leaves the directory as it was.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export const APPID = /^wx[0-9a-zA-Z]{16}$/;
/** A DNS name with a dot: what WeChat's 服务器域名 takes (no scheme, path, port or IP). */
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

export interface InitAnswers {
  domain: string;
  appid: string;
  /** The AppSecret lives in .env under this name, or in this file. */
  secret: { env: string; value: string } | { file: string };
  /** 'sqlite' or a mysql:// / postgres:// URL. */
  store: string;
  tls: { acmeEmail: string } | { cert: string; key: string } | { pfx: string; password: string } | { jks: string; password: string };
  upstream?: string;
}

type Ask = (question: string, fallback?: string) => Promise<string>;

/** Checks one answer; the message says what a good one looks like. */
function checked(name: string, value: string, ok: boolean, example: string): string {
  if (!ok) throw new UsageError(`${name}: ${JSON.stringify(value.slice(0, 100))} is not valid; expected ${example}`);
  return value;
}

export function checkDomain(value: string): string {
  const v = value.trim().toLowerCase();
  if (/^[a-z]+:\/\//.test(v) || /[/:?#]/.test(v)) {
    throw new UsageError(`--domain: give the bare name (e.g. api.example.com), without scheme, port or path: ${JSON.stringify(value.slice(0, 100))}`);
  }
  return checked('--domain', v, DOMAIN.test(v), 'a domain name such as api.example.com (WeChat takes names, not IP addresses)');
}

export function checkAppid(value: string): string {
  return checked('--appid', value.trim(), APPID.test(value.trim()), 'wx followed by 16 letters or digits (开发管理 → 开发设置 → AppID)');
}

export function checkStore(value: string): string {
  const v = value.trim();
  if (v === '' || v === 'sqlite') return 'sqlite';
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    // reported below
  }
  const ok = !!url && ['mysql:', 'postgres:', 'postgresql:'].includes(url.protocol) && url.hostname !== '';
  return checked('--store', v, ok, 'sqlite, mysql://user:password@host:3306/db or postgres://user:password@host:5432/db');
}

export function checkUpstream(value: string): string {
  const v = value.trim();
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    // reported below
  }
  return checked('--upstream', v, !!url && ['http:', 'https:'].includes(url.protocol) && url.hostname !== '', 'an http(s) URL such as http://127.0.0.1:3000');
}

function checkEnvName(value: string): string {
  return checked('--secret-env', value, ENV_NAME.test(value), 'an environment variable name such as WX_APP_SECRET');
}

function checkSecretValue(value: string): string {
  // An AppSecret is 32 hex characters; anything with a newline or quote would break .env.
  // Never echoed: a wrong secret is still a secret.
  const v = value.trim();
  if (!/^[0-9A-Za-z]{16,64}$/.test(v)) throw new UsageError(`the AppSecret (${v.length} characters) is not valid; expected 32 letters and digits (开发管理 → 开发设置 → AppSecret)`);
  return v;
}

/** `"…"` for YAML: JSON strings are valid YAML double-quoted scalars. */
const q = (s: string) => JSON.stringify(s);

export function renderConfig(a: InitAnswers): string {
  const out: string[] = [
    `# minigate.yaml for ${a.domain}, written by \`minigate init\`. Every key: docs/configuration.md.`,
    '# Secrets are not in this file: they come from .env beside it (minigate reads it at start;',
    '# systemd EnvironmentFile= and compose env_file read the same file). ${NAME} takes a variable.',
    '',
    '# Plain HTTP on 80 answers ACME challenges and redirects everything else to HTTPS on 443.',
    '# Ports below 1024 need root or CAP_NET_BIND_SERVICE (deploy/ has systemd and container files).',
    'listen:',
    '  http: 0.0.0.0:80',
    '  https: 0.0.0.0:443',
    '',
    '# WeChat requires HTTPS with a complete certificate chain and TLS 1.2 or later.',
    'tls:',
  ];
  if ('acmeEmail' in a.tls) {
    out.push(
      "  acme:                        # Let's Encrypt, renewed automatically (needs port 80 reachable)",
      `    email: ${q(a.tls.acmeEmail)}`,
      `    domains: [${q(a.domain)}]`,
    );
  } else if ('cert' in a.tls) {
    out.push('  certificates:                # PEM: the full chain (leaf first) and its key', `    - cert: ${q(a.tls.cert)}`, `      key: ${q(a.tls.key)}`);
  } else if ('pfx' in a.tls) {
    out.push('  certificates:                # PKCS#12 / PFX (the Tomcat/IIS download)', `    - pfx: ${q(a.tls.pfx)}`, '      passphrase: ${TLS_PASSWORD}');
  } else {
    out.push('  certificates:                # Java keystore (as Spring Boot uses)', `    - jks: ${q(a.tls.jks)}`, '      password: ${TLS_PASSWORD}');
  }
  out.push('', '# The mini program: its AppID and AppSecret (开发管理 → 开发设置).', 'apps:', `  - appid: ${a.appid}`);
  if ('env' in a.secret) out.push(`    secret: \${${a.secret.env}}`);
  else out.push(`    secretFile: ${q(a.secret.file)}      # the file holds only the AppSecret`);
  out.push('');
  if (a.store === 'sqlite') {
    out.push('# SQLite in dataDir (relative to this file). For several instances use MySQL or PostgreSQL.', 'dataDir: ./data');
  } else {
    out.push('# The database (its URL, with the password, is in .env). Local state (keys) stays in dataDir.', 'store: ${STORE_URL}', 'dataDir: ./data');
  }
  if (a.upstream) {
    out.push(
      '',
      '# Your service behind /api: minigate checks the session and tells it who is calling',
      '# (X-Minigate-OpenId and friends, signed with upstreamSecret; docs/upstream-identity.md).',
      'upstreamSecret: ${UPSTREAM_SECRET}',
      'routes:',
      `  - { path: /api, proxy: ${q(a.upstream)}, auth: required }`,
    );
  }
  return `${out.join('\n')}\n`;
}

export function renderEnv(a: InitAnswers, random: () => string = () => randomBytes(32).toString('hex')): string {
  const lines = ['# Secrets for minigate.yaml, written by `minigate init`. Keep this file 0600 and out of git.'];
  if ('env' in a.secret) lines.push(`${a.secret.env}=${a.secret.value}`);
  if (a.store !== 'sqlite') lines.push(`STORE_URL=${a.store}`);
  if ('password' in a.tls) lines.push(`TLS_PASSWORD=${a.tls.password}`);
  if (a.upstream) lines.push(`UPSTREAM_SECRET=${random()}`);
  return `${lines.join('\n')}\n`;
}

export function nextSteps(a: InitAnswers, configPath: string): string {
  const c = configPath.includes(' ') ? q(configPath) : configPath;
  return [
    '',
    'Next:',
    `  minigate validate -c ${c}`,
    `  sudo minigate start -c ${c}      # or deploy/: systemd, pm2, a container (ports 80 and 443)`,
    `  minigate check https://${a.domain}`,
    '',
    'In the WeChat console (mp.weixin.qq.com → 开发管理 → 开发设置 → 服务器域名), paste:',
    `  request合法域名     https://${a.domain}`,
    `  socket合法域名      wss://${a.domain}`,
    `  uploadFile合法域名  https://${a.domain}`,
    `  downloadFile合法域名 https://${a.domain}`,
    '(the domain must be ICP-filed (备案) and its certificate trusted by phones).',
    '',
  ].join('\n');
}

const OPTIONS = {
  domain: { type: 'string' },
  appid: { type: 'string' },
  'secret-env': { type: 'string' },
  'secret-file': { type: 'string' },
  store: { type: 'string' },
  'acme-email': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  pfx: { type: 'string' },
  jks: { type: 'string' },
  upstream: { type: 'string' },
  config: { type: 'string', short: 'c' },
  yes: { type: 'boolean', short: 'y', default: false },
  force: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** Gathers the answers: flags first, then questions (a terminal), else an error naming the flag. */
export async function gather(values: Values, ask: Ask | undefined, env: NodeJS.ProcessEnv): Promise<InitAnswers> {
  const need = async (flag: string, given: string | undefined, question: string, fallback?: string): Promise<string> => {
    if (given !== undefined) return given;
    if (ask) return ask(question, fallback);
    if (fallback !== undefined) return fallback;
    throw new UsageError(`--${flag} is required with --yes (or run minigate init on a terminal to be asked)`);
  };
  const domain = checkDomain(await need('domain', values.domain, 'Domain of this server (ICP-filed, e.g. api.example.com)'));
  const appid = checkAppid(await need('appid', values.appid, 'AppID of the mini program (wx…)'));

  let secret: InitAnswers['secret'];
  if (values['secret-file'] !== undefined && values['secret-env'] !== undefined) throw new UsageError('give --secret-env or --secret-file, not both');
  const secretFile = values['secret-file'] ?? (values['secret-env'] === undefined && ask ? await ask('AppSecret: a file that holds it (empty: keep it in .env)', '') : '');
  if (secretFile) {
    secret = { file: path.resolve(secretFile) };
  } else {
    const name = checkEnvName(values['secret-env'] ?? 'WX_APP_SECRET');
    const fromEnv = env[name];
    const value = fromEnv ?? (ask ? await ask(`AppSecret (written to .env as ${name})`) : undefined);
    if (value === undefined) throw new UsageError(`the AppSecret: set ${name} in the environment of minigate init (it goes into .env), or give --secret-file`);
    secret = { env: name, value: checkSecretValue(value) };
  }

  const store = checkStore(await need('store', values.store, 'Store: sqlite, or a mysql:// or postgres:// URL', 'sqlite'));

  const kinds = (['acme-email', 'cert', 'pfx', 'jks'] as const).filter((k) => values[k] !== undefined);
  if (kinds.length > 1) throw new UsageError(`give one of --acme-email, --cert (+ --key), --pfx or --jks, not ${kinds.map((k) => `--${k}`).join(' and ')}`);
  let kind: string = kinds[0] ?? '';
  if (!kind) {
    if (!ask) throw new UsageError('certificates: give --acme-email EMAIL (Let\'s Encrypt), --cert FILE --key FILE, --pfx FILE or --jks FILE');
    kind = (await ask('Certificates: acme, pem, pfx or jks', 'acme')).trim().toLowerCase();
  }
  const password = async (): Promise<string> => {
    const v = env.TLS_PASSWORD ?? (ask ? await ask('Keystore password (written to .env as TLS_PASSWORD)') : undefined);
    if (v === undefined || v === '' || /[\r\n]/.test(v)) throw new UsageError('the keystore password: set TLS_PASSWORD in the environment of minigate init (it goes into .env)');
    return v;
  };
  let tls: InitAnswers['tls'];
  if (kind === 'acme' || kind === 'acme-email') {
    const email = (await need('acme-email', values['acme-email'], "E-mail for Let's Encrypt")).trim();
    tls = { acmeEmail: checked('--acme-email', email, /^[^\s@"]+@[^\s@"]+\.[^\s@"]+$/.test(email), 'an e-mail address') };
  } else if (kind === 'pem' || kind === 'cert') {
    const cert = await need('cert', values.cert, 'PEM certificate file (full chain)');
    const key = await need('key', values.key, 'PEM private key file');
    tls = { cert: path.resolve(cert), key: path.resolve(key) };
  } else if (kind === 'pfx') {
    tls = { pfx: path.resolve(await need('pfx', values.pfx, 'PFX file')), password: await password() };
  } else if (kind === 'jks') {
    tls = { jks: path.resolve(await need('jks', values.jks, 'JKS file')), password: await password() };
  } else {
    throw new UsageError(`certificates: ${JSON.stringify(kind.slice(0, 20))} is not one of acme, pem, pfx, jks`);
  }
  if (values.key !== undefined && !('cert' in tls)) throw new UsageError('--key goes with --cert');

  const upstreamText = await need('upstream', values.upstream, 'Upstream URL for /api (empty: none)', '');
  const upstream = upstreamText.trim() ? checkUpstream(upstreamText) : undefined;
  return { domain, appid, secret, store, tls, ...(upstream ? { upstream } : {}) };
}

export async function init(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: OPTIONS });
  const configPath = path.resolve(values.config ?? 'minigate.yaml');
  const envPath = path.join(path.dirname(configPath), '.env');
  // Before any question: an answer given for nothing is worse than an early no.
  if (!values.force) {
    for (const file of [configPath, envPath]) {
      if (existsSync(file)) throw new UsageError(`${file} exists; minigate init does not overwrite it without --force`);
    }
  }
  const interactive = !values.yes && process.stdin.isTTY === true;
  if (!values.yes && !interactive) throw new UsageError('not a terminal: give --yes and the answers as flags (minigate help init)');
  let rl: ReturnType<typeof createInterface> | undefined;
  let ask: Ask | undefined;
  if (interactive) {
    rl = createInterface({ input: process.stdin, output: process.stdout });
    const reader = rl;
    ask = async (question, fallback) => {
      const answer = await reader.question(`${question}${fallback ? ` [${fallback}]` : ''}: `);
      return answer.trim() === '' && fallback !== undefined ? fallback : answer;
    };
  }
  let answers: InitAnswers;
  try {
    answers = await gather(values, ask, process.env);
  } finally {
    rl?.close();
  }
  writeFileSync(configPath, renderConfig(answers), { mode: 0o644 });
  writeFileSync(envPath, renderEnv(answers), { mode: 0o600 });
  chmodSync(envPath, 0o600); // an existing file (--force) keeps its mode otherwise
  process.stdout.write(`wrote ${configPath}\nwrote ${envPath} (mode 0600: it holds the secrets)\n${nextSteps(answers, path.relative(process.cwd(), configPath) || configPath)}`);
}
