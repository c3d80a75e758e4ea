/**
 * The config schema as JSON Schema (input side), and small walkers over it. The env-override
 * mapping, the `…File` secrets and the reference doc all read the schema through these, so a key
 * added to `schema.ts` is picked up everywhere at once.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  required?: string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  secret?: boolean;
  [key: string]: unknown;
}

let cached: JsonSchema | undefined;

/** The JSON Schema of minigate.yaml as a user writes it. */
export function configJsonSchema(): JsonSchema {
  cached ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return cached;
}

/** The schema node for an object's or array's child, or undefined. */
export function childSchema(node: JsonSchema | undefined, key: string | number): JsonSchema | undefined {
  if (!node) return undefined;
  if (typeof key === 'number' || /^\d+$/.test(key)) {
    if (node.items) return node.items;
  }
  if (node.properties && typeof key === 'string') return node.properties[key];
  return undefined;
}

/** The schema node at a path, or undefined when the path leaves the schema. */
export function schemaAt(path: readonly (string | number)[]): JsonSchema | undefined {
  let node: JsonSchema | undefined = configJsonSchema();
  for (const key of path) node = childSchema(node, key);
  return node;
}

/** The JSON types a node accepts ("string", "integer", …), flattening anyOf. */
export function typesOf(node: JsonSchema): string[] {
  if (node.anyOf) return node.anyOf.flatMap(typesOf);
  if (Array.isArray(node.type)) return node.type;
  if (node.type) return [node.type];
  if (node.enum) return ['string'];
  return [];
}

/** `apps[0].session.idle` for `['apps', 0, 'session', 'idle']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else text += text ? `.${String(key)}` : String(key);
  }
  return text || '(top level)';
}
