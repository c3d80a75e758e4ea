/**
 * The configuration reference (docs/configuration.md), generated from the schema so the doc
 * cannot drift from what is accepted. `npm run docs:config` rewrites the file; a test fails when
 * it is stale.
 */
import { configJsonSchema, typesOf, type JsonSchema } from './json-schema.js';

function typeText(node: JsonSchema): string {
  if (node.format === 'duration') return 'duration';
  if (node.format === 'listen-address') return 'address';
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (node.type === 'array') return `list of ${node.items ? typeText(node.items) : 'values'}`;
  const types = typesOf(node);
  return types.length ? [...new Set(types)].join(' \\| ') : 'any';
}

function defaultText(node: JsonSchema): string {
  if (node.default === undefined) return '';
  if (typeof node.default === 'object') return '';
  return `\`${String(node.default)}\``;
}

function rows(node: JsonSchema, prefix: string, required: Set<string>, out: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const notes: string[] = [];
    if (child.description) notes.push(child.description);
    if (child.secret) notes.push(`Secret: may be given as \`${key}File: PATH\` instead.`);
    if (child.minimum !== undefined && child.maximum !== undefined) notes.push(`${child.minimum} to ${child.maximum}.`);
    const isObject = child.type === 'object' && child.properties;
    const isObjectList = child.type === 'array' && child.items?.properties;
    out.push(
      `| \`${path}${isObjectList ? '[]' : ''}\` | ${isObject ? 'object' : typeText(child)} | ${required.has(key) ? 'required' : defaultText(child)} | ${notes.join(' ')} |`,
    );
    if (isObject) rows(child, path, new Set(child.required ?? []), out);
    if (isObjectList) rows(child.items!, `${path}[]`, new Set(child.items!.required ?? []), out);
  }
}

export function configReference(): string {
  const schema = configJsonSchema();
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from packages/server/src/config/schema.ts by `npm run docs:config`; do not edit. -->',
    '',
    'minigate reads one YAML file (`minigate start -c minigate.yaml`; `minigate validate -c FILE` checks',
    'it without starting). Rules that hold for every key:',
    '',
    '- Unknown keys are errors, reported with their file:line and key path (with a suggestion when',
    '  the key looks misspelt). Every problem is reported, not just the first.',
    '- `${VAR}` in any string is replaced by the environment variable VAR (an error when unset);',
    '  `${VAR:-fallback}` gives a fallback; `$$` is a literal `$`.',
    '- Every key can be overridden by an environment variable `MINIGATE_<KEY_PATH>`: upper case, path',
    '  parts joined by `_`, list items by index (`MINIGATE_STORE`, `MINIGATE_LISTEN_HTTP`,',
    '  `MINIGATE_APPS_0_SECRET`, `MINIGATE_APPS_0_SESSION_MAX_PER_USER`). Objects and lists take JSON.',
    '  A `MINIGATE_` variable that names no key is an error.',
    '- Secrets may be read from a file: `secretFile: /run/secrets/wx` instead of `secret: …` (a',
    '  trailing newline is dropped). Secrets never appear in logs or answers.',
    '- Durations are a number and a unit: `500ms`, `30s`, `15m`, `2h`, `7d`.',
    '- Addresses are a port (`8080`, all interfaces), `host:port` or `[ipv6]:port`; port 0 picks a free one.',
    '- Relative paths are resolved against the directory of the config file.',
    '',
    '| Key | Type | Default | Description |',
    '|---|---|---|---|',
  ];
  rows(schema, '', new Set(schema.required ?? []), out);
  out.push('');
  return out.join('\n');
}
