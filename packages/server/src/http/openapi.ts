/**
 * The OpenAPI 3.1 documents, made from the routers as they are mounted: each documented route's
 * operation, its zod schemas turned into JSON Schema (draft 2020-12, which OpenAPI 3.1 uses) by
 * zod's own z.toJSONSchema.
 */
import { z } from 'zod';
import type { Router } from './router.js';
import { ErrorResponse, type Operation, type Security } from './operation.js';

/** A router and the path it is mounted at ('' for the root). */
export interface MountedRouter {
  prefix: string;
  router: Router;
}

export interface DocumentInfo {
  title: string;
  version: string;
  description: string;
}

/** `/files` + `/:id` → `/files/{id}`; a `*` tail is `{rest}`. */
export function openApiPath(prefix: string, path: string): string {
  const joined = (prefix.replace(/\/+$/, '') + (path === '/' && prefix ? '' : path)) || '/';
  return joined
    .split('/')
    .map((segment, i, all) => (segment.startsWith(':') ? `{${segment.slice(1)}}` : segment === '*' && i === all.length - 1 ? '{rest}' : segment))
    .join('/');
}

/** `METHOD /path` of every route served without an operation: what the drift test refuses. */
export function undocumentedRoutes(mounted: readonly MountedRouter[]): string[] {
  return mounted.flatMap(({ prefix, router }) =>
    router
      .list()
      .filter((entry) => !entry.operation)
      .map((entry) => `${entry.method} ${openApiPath(prefix, entry.path)}`),
  );
}

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  return rest;
}

const SECURITY_SCHEMES = {
  session: { type: 'http', scheme: 'bearer', description: 'The token from POST /auth/login (Authorization: Bearer <token>).' },
  internal: { type: 'http', scheme: 'bearer', description: 'internal.token from the configuration (Authorization: Bearer <token>).' },
  adminCookie: {
    type: 'apiKey',
    in: 'cookie',
    name: 'minigate_admin',
    description: 'The admin console session: an HttpOnly, SameSite=Strict cookie set by POST {admin.path}api/login.',
  },
  adminCsrf: {
    type: 'apiKey',
    in: 'header',
    name: 'X-CSRF-Token',
    description: 'The console session\'s CSRF token (from login or GET {admin.path}api/session), required with the cookie on every console write.',
  },
} as const;
type SchemeName = keyof typeof SECURITY_SCHEMES;

/** The schemes an operation needs, all at once (one requirement object: cookie AND header for a console write). */
const REQUIREMENTS: Record<Security, SchemeName[]> = {
  none: [],
  session: ['session'],
  internal: ['internal'],
  adminCookie: ['adminCookie'],
  adminCsrf: ['adminCookie', 'adminCsrf'],
};

function parametersOf(path: string, operation: Operation): Record<string, unknown>[] {
  const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const shape = (operation.params?.shape ?? {}) as Record<string, z.ZodType>;
  const inPath = names.map((name) => ({
    name,
    in: 'path',
    required: true,
    schema: shape[name] ? schemaOf(shape[name], 'input') : { type: 'string' },
  }));
  const queryShape = (operation.query?.shape ?? {}) as Record<string, z.ZodType>;
  const inQuery = Object.entries(queryShape).map(([name, schema]) => ({
    name,
    in: 'query',
    required: !schema.safeParse(undefined).success,
    schema: schemaOf(schema, 'input'),
  }));
  return [...inPath, ...inQuery];
}

function operationObject(path: string, method: string, operation: Operation): Record<string, unknown> {
  const security: Security = operation.security ?? 'none';
  const responses: Record<string, unknown> = {};
  for (const [status, doc] of Object.entries(operation.responses)) {
    const schema = doc.schema ?? (Number(status) >= 400 ? ErrorResponse : undefined);
    const contentType = doc.contentType ?? (schema ? 'application/json' : undefined);
    responses[status] = {
      description: doc.description,
      ...(contentType
        ? { content: { [contentType]: schema ? { schema: schema === ErrorResponse ? { $ref: '#/components/schemas/Error' } : schemaOf(schema, 'output') } : {} } }
        : {}),
    };
  }
  const parameters = parametersOf(path, operation);
  const body = operation.body
    ? { required: true, content: { 'application/json': { schema: schemaOf(operation.body, 'input') } } }
    : operation.bodyContentType
      ? { required: true, content: { [operation.bodyContentType]: {} } }
      : undefined;
  return {
    operationId: `${method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c?: string) => (c ? c.toUpperCase() : ''))}`,
    summary: operation.summary,
    tags: operation.tags,
    security: security === 'none' ? [] : [Object.fromEntries(REQUIREMENTS[security].map((name) => [name, []]))],
    ...(parameters.length ? { parameters } : {}),
    ...(body ? { requestBody: body } : {}),
    responses,
  };
}

/** The document for the routers as mounted (undocumented routes are left out; the drift test finds them). */
export function openApiDocument(info: DocumentInfo, mounted: readonly MountedRouter[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const used = new Set<SchemeName>();
  for (const { prefix, router } of mounted) {
    for (const entry of router.list()) {
      if (!entry.operation) continue;
      const path = openApiPath(prefix, entry.path);
      (paths[path] ??= {})[entry.method.toLowerCase()] = operationObject(path, entry.method, entry.operation);
      for (const name of REQUIREMENTS[entry.operation.security ?? 'none']) used.add(name);
    }
  }
  const sorted = Object.fromEntries(Object.keys(paths).sort().map((p) => [p, paths[p]]));
  const securitySchemes = Object.fromEntries(Object.entries(SECURITY_SCHEMES).filter(([name]) => used.has(name as SchemeName)));
  return {
    openapi: '3.1.0',
    info,
    paths: sorted,
    components: { schemas: { Error: schemaOf(ErrorResponse, 'output') }, securitySchemes },
  };
}
