/**
 * Reading minigate.yaml: YAML → `${ENV}` interpolation → `MINIGATE_*` overrides → `…File`
 * secrets → the schema. Every problem found is collected (not just the first) and reported with
 * where it came from: `file:line:col` for the file, `env NAME` for an override.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { childSchema, configJsonSchema, formatPath, schemaAt, typesOf, type JsonSchema } from './json-schema.js';
import { configSchema, type ParsedConfig } from './schema.js';

export const ENV_PREFIX = 'MINIGATE_';
/** Env vars with the prefix that are not config keys. */
const ENV_NOT_KEYS = new Set(['MINIGATE_CONFIG']);

export type ConfigPath = (string | number)[];

export interface ConfigProblem {
  /** `minigate.yaml:12:5`, `env MINIGATE_STORE`, or the file name alone. */
  where: string;
  /** Key path such as `apps[0].secret`; empty for whole-file problems. */
  path: string;
  message: string;
}

/** The config after loading: absolute dataDir, a store URL, frozen. */
export interface Config extends ParsedConfig {
  readonly store: string;
  /** The file it came from, or a label when it was built in code. */
  readonly source: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** One line per problem: `where  path: message`. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.where}  ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n');
}

export interface LoadConfigOptions {
  /** Path of the YAML file. */
  file?: string;
  /** YAML text instead of a file (a label for messages goes in `file`, which is then not read). */
  text?: string;
  /** A config object instead of YAML (dev mode builds one); env overrides still apply. */
  object?: Record<string, unknown>;
  /** Environment for `${VAR}` and `MINIGATE_*`; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Base directory for relative paths when there is no file; process.cwd() by default. */
  cwd?: string;
  /**
   * Checks that need a feature's knowledge, run on the loaded config (the features export them,
   * and run them again in their validate step): their problems get the same `file:line path`
   * form as the schema's.
   */
  checks?: ReadonlyArray<ConfigCheck>;
}

/** A feature's check of the whole config: what is wrong, at which key path. */
export type ConfigCheck = (config: Config) => ReadonlyArray<{ path: ConfigPath; message: string }>;

/** Loads, checks and freezes the config; throws ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions): Config {
  const env = options.env ?? process.env;
  const file = options.file;
  const label = file ?? '(config)';
  const baseDir = file ? path.dirname(path.resolve(options.cwd ?? process.cwd(), file)) : (options.cwd ?? process.cwd());
  const problems: ConfigProblem[] = [];

  let raw: Record<string, unknown> = {};
  let doc: Document | undefined;
  const lines = new LineCounter();
  if (options.object) {
    raw = structuredClone(options.object);
  } else {
    let text = options.text;
    if (text === undefined) {
      if (!file) throw new ConfigError([{ where: label, path: '', message: 'no config file given' }]);
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new ConfigError([{ where: file, path: '', message: `cannot read the file (${errnoText(error)})` }]);
      }
    }
    doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
    for (const error of doc.errors) {
      const pos = lines.linePos(error.pos[0]);
      problems.push({
        where: `${label}:${pos.line}:${pos.col}`,
        path: '',
        message: error.message.split('\n')[0]!,
      });
    }
    if (problems.length) throw new ConfigError(problems);
    const js: unknown = doc.toJS();
    if (js === null || js === undefined) raw = {};
    else if (typeof js === 'object' && !Array.isArray(js)) raw = js as Record<string, unknown>;
    else throw new ConfigError([{ where: label, path: '', message: 'the file must hold a mapping of keys' }]);
  }

  const overrides = new Map<string, string>(); // formatted path → env var name
  const where = (p: ConfigPath): string => locate(p, { label, doc, lines, overrides });

  interpolate(raw, [], env, problems, where);
  applyEnvOverrides(raw, env, overrides, problems);
  resolveSecretFiles(raw, baseDir, problems, where);

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    // A key already reported (an unset ${VAR}, an unreadable secret file) is not reported again.
    const reported = new Set(problems.flatMap((p) => [p.path, p.path.replace(/File$/, '')]));
    problems.push(...result.error.issues.flatMap((issue) => describeIssue(issue, where)).filter((p) => !reported.has(p.path)));
  }
  if (problems.length || !result.success) throw new ConfigError(sortProblems(problems));

  const parsed = resolvePaths(result.data, baseDir);
  const dataDir = path.resolve(baseDir, parsed.dataDir);
  const config: Config = {
    ...parsed,
    dataDir,
    store: parsed.store === undefined ? `sqlite:${path.join(dataDir, 'minigate.db')}` : resolveSqlitePath(parsed.store, baseDir),
    source: label,
  };
  const frozen = deepFreeze(config);
  const found = (options.checks ?? []).flatMap((check) => check(frozen).map((p) => ({ where: where(p.path), path: formatPath(p.path), message: p.message })));
  if (found.length) throw new ConfigError(sortProblems(found));
  return frozen;
}

/**
 * `sqlite:./x.db` names a file next to the config, like every other path in it: resolved here,
 * so the database does not land wherever the process happens to start (under systemd, `/`).
 */
function resolveSqlitePath(store: string, baseDir: string): string {
  if (!store.startsWith('sqlite:')) return store;
  const file = store.slice('sqlite:'.length);
  if (file === '' || file === ':memory:' || path.isAbsolute(file)) return store;
  return `sqlite:${path.resolve(baseDir, file)}`;
}

/** File paths in the config, resolved against the config file's directory. */
function resolvePaths(config: ParsedConfig, baseDir: string): ParsedConfig {
  const at = (p: string | undefined) => (p === undefined ? undefined : path.resolve(baseDir, p));
  const tls = config.tls;
  return {
    ...config,
    tls: {
      ...tls,
      certificates: tls.certificates.map((c) => ({ ...c, cert: at(c.cert), key: at(c.key), chain: at(c.chain), pfx: at(c.pfx), jks: at(c.jks) })),
      acme: tls.acme && { ...tls.acme, caFile: at(tls.acme.caFile) },
    },
    routes: config.routes.map((r) => ({ ...r, static: at(r.static) })),
    pkiValidationDir: at(config.pkiValidationDir),
    pay: config.pay && { ...config.pay, merchants: config.pay.merchants.map((m) => ({ ...m, publicKeyFile: at(m.publicKeyFile) })) },
  };
}

// ---------------------------------------------------------------------------------------------
// ${VAR} interpolation

const INTERPOLATION = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function interpolate(
  node: unknown,
  at: ConfigPath,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  where: (p: ConfigPath) => string,
): unknown {
  if (typeof node === 'string') {
    return node.replace(INTERPOLATION, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$$') return '$';
      const value = env[name!];
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      problems.push({
        where: where(at),
        path: formatPath(at),
        message: `environment variable ${name} is not set (use \${${name}:-default} for a fallback)`,
      });
      return '';
    });
  }
  if (Array.isArray(node)) {
    node.forEach((item, i) => (node[i] = interpolate(item, [...at, i], env, problems, where)));
  } else if (isPlainObject(node)) {
    for (const key of Object.keys(node)) node[key] = interpolate(node[key], [...at, key], env, problems, where);
  }
  return node;
}

// ---------------------------------------------------------------------------------------------
// MINIGATE_<KEY_PATH> overrides

/**
 * The key path an env var names, matched against the schema: `MINIGATE_APPS_0_SESSION_IDLE` →
 * `apps[0].session.idle`. A camelCase key may be written joined or split
 * (`MAXPERUSER` or `MAX_PER_USER`); a secret `x` may also be set as `X_FILE`.
 */
export function envKeyPath(name: string): { path: ConfigPath; leaf: JsonSchema } | null {
  if (!name.startsWith(ENV_PREFIX)) return null;
  const tokens = name.slice(ENV_PREFIX.length).split('_');
  return matchTokens(configJsonSchema(), tokens, []);
}

function matchTokens(
  node: JsonSchema,
  tokens: string[],
  at: ConfigPath,
): { path: ConfigPath; leaf: JsonSchema } | null {
  if (tokens.length === 0) return { path: at, leaf: node };
  if (node.items && /^\d+$/.test(tokens[0]!)) {
    return matchTokens(node.items, tokens.slice(1), [...at, Number(tokens[0])]);
  }
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const candidates: [string, JsonSchema][] = [[key, child]];
    if (child.secret) candidates.push([`${key}File`, { type: 'string' }]);
    for (const [name, schema] of candidates) {
      for (const form of keyForms(name)) {
        if (form.length <= tokens.length && form.every((t, i) => t === tokens[i])) {
          const found = matchTokens(schema, tokens.slice(form.length), [...at, name]);
          if (found) return found;
        }
      }
    }
  }
  return null;
}

/** Every way to write a camelCase key in an env name: `maxPerUser` → MAXPERUSER, MAX_PERUSER, …, MAX_PER_USER. */
function keyForms(key: string): string[][] {
  const words = key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toUpperCase().split(' ');
  const forms: string[][] = [];
  for (let mask = 0; mask < 1 << (words.length - 1); mask++) {
    const form = [words[0]!];
    for (let i = 1; i < words.length; i++) {
      if (mask & (1 << (i - 1))) form.push(words[i]!);
      else form[form.length - 1] += words[i]!;
    }
    forms.push(form);
  }
  return forms;
}

function applyEnvOverrides(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  overrides: Map<string, string>,
  problems: ConfigProblem[],
): void {
  const names = Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX) && !ENV_NOT_KEYS.has(n) && env[n] !== undefined)
    .sort();
  for (const name of names) {
    const match = envKeyPath(name);
    if (!match) {
      problems.push({ where: `env ${name}`, path: '', message: 'does not name a config key; remove it or fix its name' });
      continue;
    }
    const value = coerceEnvValue(env[name]!, match.leaf);
    if (value instanceof Error) {
      problems.push({ where: `env ${name}`, path: formatPath(match.path), message: value.message });
      continue;
    }
    setAt(raw, match.path, value);
    overrides.set(formatPath(match.path), name);
  }
}

function coerceEnvValue(text: string, leaf: JsonSchema): unknown {
  const types = typesOf(leaf);
  if (types.includes('object') || types.includes('array')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return new Error('expected JSON for this key');
    }
  }
  if ((types.includes('integer') || types.includes('number')) && !types.includes('string')) {
    const n = Number(text);
    return text.trim() !== '' && Number.isFinite(n) ? n : new Error(`expected a number, got "${text}"`);
  }
  if (types.includes('boolean') && !types.includes('string')) {
    if (/^(true|1|yes)$/i.test(text)) return true;
    if (/^(false|0|no)$/i.test(text)) return false;
    return new Error(`expected true or false, got "${text}"`);
  }
  return text;
}

function setAt(root: Record<string, unknown>, at: ConfigPath, value: unknown): void {
  let node: Record<string | number, unknown> = root;
  at.forEach((key, i) => {
    if (i === at.length - 1) {
      node[key] = value;
      return;
    }
    const nextIsIndex = typeof at[i + 1] === 'number';
    const existing = node[key];
    if (typeof existing !== 'object' || existing === null) node[key] = nextIsIndex ? [] : {};
    node = node[key] as Record<string | number, unknown>;
  });
}

// ---------------------------------------------------------------------------------------------
// `secretFile: path` for any secret `secret`

function resolveSecretFiles(
  node: unknown,
  baseDir: string,
  problems: ConfigProblem[],
  where: (p: ConfigPath) => string,
  at: ConfigPath = [],
  schema: JsonSchema | undefined = configJsonSchema(),
): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => resolveSecretFiles(item, baseDir, problems, where, [...at, i], childSchema(schema, i)));
    return;
  }
  if (!isPlainObject(node) || !schema?.properties) return;
  for (const key of Object.keys(node)) {
    const base = key.endsWith('File') ? key.slice(0, -'File'.length) : undefined;
    const target = base !== undefined ? schema.properties[base] : undefined;
    if (base !== undefined && target?.secret) {
      const filePath = node[key];
      delete node[key];
      if (node[base] !== undefined) {
        problems.push({ where: where([...at, key]), path: formatPath([...at, key]), message: `give either ${base} or ${key}, not both` });
        continue;
      }
      if (typeof filePath !== 'string' || !filePath) {
        problems.push({ where: where([...at, key]), path: formatPath([...at, key]), message: 'expected a file path' });
        continue;
      }
      const resolved = path.resolve(baseDir, filePath);
      try {
        node[base] = readFileSync(resolved, 'utf8').replace(/\r?\n$/, '');
      } catch (error) {
        problems.push({
          where: where([...at, key]),
          path: formatPath([...at, key]),
          message: `cannot read ${resolved} (${errnoText(error)})`,
        });
      }
      continue;
    }
    resolveSecretFiles(node[key], baseDir, problems, where, [...at, key], schema.properties[key]);
  }
}

// ---------------------------------------------------------------------------------------------
// Schema issues → problems

function describeIssue(issue: z.core.$ZodIssue, where: (p: ConfigPath) => string): ConfigProblem[] {
  const at = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const properties = schemaAt(at)?.properties ?? {};
    const allowed = Object.keys(properties);
    // A secret `x` may also be written `xFile`, so `secretFlie` is a typo of `secretFile`.
    const candidates = [...allowed, ...allowed.filter((k) => properties[k]?.secret).map((k) => `${k}File`)];
    return issue.keys.map((key) => {
      const suggestion = closest(key, candidates);
      return {
        where: where([...at, key]),
        path: formatPath([...at, key]),
        message: `unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ''}${allowed.length ? `; allowed here: ${allowed.join(', ')}` : ''}`,
      };
    });
  }
  let message = issue.message;
  if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = 'is required';
  return [{ where: where(at), path: formatPath(at), message }];
}

/** File problems in line order, then env problems. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const rank = (p: ConfigProblem): [number, number, number] => {
    const m = /:(\d+):(\d+)$/.exec(p.where);
    if (m) return [0, Number(m[1]), Number(m[2])];
    return [p.where.startsWith('env ') ? 2 : 1, 0, 0];
  };
  return [...problems].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Where a key path came from

function locate(
  at: ConfigPath,
  source: { label: string; doc: Document | undefined; lines: LineCounter; overrides: Map<string, string> },
): string {
  for (let n = at.length; n >= 1; n--) {
    const name = source.overrides.get(formatPath(at.slice(0, n)));
    if (name) return `env ${name}`;
  }
  if (!source.doc) return source.label;
  // Point at the deepest key that exists in the file (for a missing key, at its parent).
  for (let n = at.length; n >= 1; n--) {
    const parent = n === 1 ? source.doc.contents : source.doc.getIn(at.slice(0, n - 1), true);
    const key = at[n - 1];
    let offset: number | undefined;
    if (isMap(parent)) offset = rangeStart(parent.items.find((p) => keyText(p.key) === String(key))?.key);
    else if (isSeq(parent) && typeof key === 'number') offset = rangeStart(parent.items[key]);
    if (offset === undefined) continue;
    const pos = source.lines.linePos(offset);
    return `${source.label}:${pos.line}:${pos.col}`;
  }
  return source.label;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? range[0] : undefined;
}

function keyText(key: unknown): string | undefined {
  const value = (key as { value?: unknown } | null)?.value;
  return value === undefined ? undefined : String(value);
}

// ---------------------------------------------------------------------------------------------

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errnoText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? String(error);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
