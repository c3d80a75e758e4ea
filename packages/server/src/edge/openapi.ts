/**
 * The edge's own documented routes (health, readiness, the documents themselves) and the two
 * OpenAPI documents made from every router the edge serves.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { openApiDocument, type MountedRouter, type Operation } from '../http/index.js';

const Ok = z.object({ ok: z.literal(true) });
const OpenApi = z.looseObject({ openapi: z.string() });

export const edgeOperations = {
  healthz: {
    summary: 'The process answers (from the moment the listeners are bound; any method).',
    tags: ['health'],
    responses: { 200: { description: 'Alive.', schema: Ok } },
  },
  readyz: {
    summary: 'Every feature has started and the database answers (any method).',
    tags: ['health'],
    responses: { 200: { description: 'Ready.', schema: Ok }, 503: { description: 'Still starting (NOT_READY, naming the step) or the database is down.' } },
  },
  metrics: {
    summary: 'Prometheus metrics of the whole process group (docs/metrics.md); the internal token or metrics.token.',
    tags: ['metrics'],
    security: 'internal',
    responses: { 200: { description: 'The Prometheus text exposition format.', contentType: 'text/plain; version=0.0.4' }, 401: { description: 'No or a wrong bearer token (INTERNAL_AUTH_REQUIRED).' } },
  },
  publicDocument: {
    summary: 'This server\'s public API as an OpenAPI 3.1 document.',
    tags: ['openapi'],
    security: 'internal',
    responses: { 200: { description: 'The document.', schema: OpenApi } },
  },
  internalDocument: {
    summary: 'This internal API as an OpenAPI 3.1 document.',
    tags: ['openapi'],
    security: 'internal',
    responses: { 200: { description: 'The document.', schema: OpenApi } },
  },
} satisfies Record<string, Operation>;

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The public and internal documents for the routers as mounted. */
export function openApiDocuments(served: { public: readonly MountedRouter[]; internal: readonly MountedRouter[] }): {
  public: Record<string, unknown>;
  internal: Record<string, unknown>;
} {
  const v = version();
  return {
    public: openApiDocument(
      { title: 'minigate public API', version: v, description: 'What mini programs (and WeChat) call on the https listener: login and sessions, Wafer2, files, channels, message push, health. Errors are {"error":{"code","message","requestId"}} with codes from docs/errors.md.' },
      served.public,
    ),
    internal: openApiDocument(
      { title: 'minigate internal API', version: v, description: "What business services call on listen.internal with Authorization: Bearer <internal.token>: access_tokens and WeChat calls, sessions, channels, files, checks. Errors are {\"error\":{\"code\",\"message\",\"requestId\"}} with codes from docs/errors.md." },
      served.internal,
    ),
  };
}
