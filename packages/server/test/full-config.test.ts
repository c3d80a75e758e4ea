/** deploy/minigate.full.yaml documents every key and is itself a valid config. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configJsonSchema, loadConfig } from '../src/config/index.js';
import type { JsonSchema } from '../src/config/json-schema.js';

const FILE = new URL('../../../deploy/minigate.full.yaml', import.meta.url);

function leafKeys(node: JsonSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    const inner = child.type === 'array' ? child.items : child;
    if (inner?.properties) out.push(...leafKeys(inner, name));
    else out.push(name);
  }
  return out;
}

describe('deploy/minigate.full.yaml', () => {
  it('mentions every key of the schema', () => {
    const text = readFileSync(FILE, 'utf8');
    for (const key of leafKeys(configJsonSchema())) {
      const last = key.split('.').pop()!;
      expect(text, key).toMatch(new RegExp(`^\\s*(- )?#?\\s*${last}(File)?:`, 'm'));
    }
  });

  it('validates once its secrets exist', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mg-full-'));
    // Every /run/secrets/NAME becomes a file here; the secret key must be 32 bytes of hex.
    const text = readFileSync(FILE, 'utf8').replace(/\/run\/secrets\/(\w+)/g, (_match, name: string) => {
      const file = path.join(dir, name);
      const values: Record<string, string> = {
        minigate_secret_key: 'ab'.repeat(32),
        wx_app_secret: 'an-app-secret',
        wx_push_aes_key: 'a'.repeat(43),
        internal_token: 'i'.repeat(40),
      };
      writeFileSync(file, `${values[name] ?? `${name}-value`}\n`);
      return file;
    });
    const config = loadConfig({ text, file: path.join(dir, 'minigate.yaml'), env: { DB_PASSWORD: 'pw' } });
    expect(config.apps[0]!.secret).toBe('an-app-secret');
    expect(config.store).toBe('mysql://minigate:pw@127.0.0.1:3306/minigate');
    expect(config.secretKey).toBe('ab'.repeat(32));
  });
});
