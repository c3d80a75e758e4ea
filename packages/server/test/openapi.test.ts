/**
 * The OpenAPI documents against what is served: every mounted route has a documented operation
 * and every documented operation is mounted (drift, both ways), the committed docs/openapi/ files
 * are what the server generates, both documents are valid OpenAPI 3.1, they are served only with
 * the internal token, and request bodies are checked by the same schemas (BAD_REQUEST naming the
 * field; hostile bodies refused, the server stays up).
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Router, openApiDocument, openApiPath, undocumentedRoutes, type MountedRouter } from '../src/http/index.js';
import { TEST_APPID, TEST_SECRET, startHarness, type Harness } from './helpers/harness.js';
import { sandboxMerchant } from './helpers/pay.js';
import { createSandbox, type Sandbox } from 'minigate-sandbox';

const INTERNAL_TOKEN = 'internal-token-for-openapi-0123456789abcdef';
const committed = (api: string) => JSON.parse(readFileSync(new URL(`../../../docs/openapi/${api}.json`, import.meta.url), 'utf8')) as { paths: Record<string, Record<string, unknown>> };

/** `METHOD /path` of every route the routers serve. */
function served(mounted: readonly MountedRouter[]): string[] {
  return mounted.flatMap(({ prefix, router }) => router.list().map((e) => `${e.method} ${openApiPath(prefix, e.path)}`)).sort();
}
function documented(document: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(document.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
}

describe('the drift checker', () => {
  it('reports a planted route without an operation', () => {
    const router = new Router()
      .route('GET', '/things/:id', { summary: 'A thing.', tags: ['t'], responses: { 200: { description: 'It.' } } }, () => undefined)
      .add('POST', '/things/:id/secret', () => undefined);
    expect(undocumentedRoutes([{ prefix: '/api', router }])).toEqual(['POST /api/things/{id}/secret']);
    // …and leaves it out of the document, so the two-way comparison below fails too.
    const document = openApiDocument({ title: 't', version: '0', description: 'd' }, [{ prefix: '/api', router }]) as { paths: Record<string, Record<string, unknown>> };
    expect(documented(document)).toEqual(['GET /api/things/{id}']);
    expect(served([{ prefix: '/api', router }])).not.toEqual(documented(document));
  });

  it('maps paths as the router reads them', () => {
    expect(openApiPath('/files', '/')).toBe('/files');
    expect(openApiPath('', '/v1/apps/:appid/wechat/*')).toBe('/v1/apps/{appid}/wechat/{rest}');
    expect(openApiPath('/wechat/push', '/:appid')).toBe('/wechat/push/{appid}');
  });

  it('puts request schemas in the document', () => {
    const router = new Router().route(
      'POST',
      '/x',
      { summary: 's', tags: ['t'], body: z.object({ room: z.string().min(1) }), responses: { 200: { description: 'ok' }, 400: { description: 'bad' } } },
      () => undefined,
    );
    const doc = openApiDocument({ title: 't', version: '0', description: 'd' }, [{ prefix: '', router }]) as any;
    expect(doc.paths['/x'].post.requestBody.content['application/json'].schema).toMatchObject({ type: 'object', required: ['room'] });
    expect(doc.paths['/x'].post.responses['400'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
  });
});

describe('the served API and its documents', () => {
  let h: Harness;
  let sandbox: Sandbox;
  let dir: string;
  beforeAll(async () => {
    // Every feature on, WeChat Pay too, as the committed documents are made.
    sandbox = createSandbox({ apps: [{ appid: TEST_APPID, secret: TEST_SECRET }] });
    await sandbox.start();
    dir = mkdtempSync(path.join(tmpdir(), 'mg-openapi-pay-'));
    const pay = await sandboxMerchant(sandbox.url, dir, TEST_APPID);
    h = await startHarness({ sandbox, config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL_TOKEN }, pay } });
  });
  afterAll(async () => {
    await h?.close();
    await sandbox?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('documents every mounted route, and mounts every documented one', async () => {
    const { public: pub, internal } = h.server.served();
    expect(pub.length).toBeGreaterThan(3);
    expect(undocumentedRoutes(pub)).toEqual([]);
    expect(undocumentedRoutes(internal)).toEqual([]);
    expect(documented(committed('public'))).toEqual(served(pub));
    expect(documented(committed('internal'))).toEqual(served(internal));
  });

  it('serves both documents on the internal listener, only with the internal token', async () => {
    for (const api of ['public', 'internal']) {
      const without = await fetch(`${h.server.urls.internal}/openapi/${api}.json`);
      expect(without.status).toBe(401);
      expect(((await without.json()) as any).error.code).toBe('INTERNAL_AUTH_REQUIRED');
      const wrong = await fetch(`${h.server.urls.internal}/openapi/${api}.json`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      const answer = await h.internal('GET', `/openapi/${api}.json`);
      expect(answer.status).toBe(200);
      expect(answer.body.openapi).toBe('3.1.0');
      expect(documented(answer.body)).toEqual(documented(committed(api)));
    }
    // Not on the public listener.
    expect((await h.get('/openapi/public.json')).status).toBe(404);
  });

  it('validates request bodies with the schemas: BAD_REQUEST naming the field', async () => {
    const publish = async (body: unknown) => h.internal('POST', '/v1/channel/publish', body);
    let r = await publish({ event: 'hello' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('BAD_REQUEST');
    expect(r.body.error.message).toMatch(/^room: /);
    r = await publish({ room: 'lobby', event: 'bad event!' });
    expect(r.body.error.message).toMatch(/^event: /);
    r = await publish({ room: { $ne: null }, event: 'x' });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^room: /);
    r = await publish({ room: 'lobby', event: 'hello', data: { n: 1 } });
    expect(r.status).toBe(200);

    r = await h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/rejected`, { accessToken: 42 });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^accessToken: /);
    r = await h.internal('POST', `/v1/apps/${TEST_APPID}/access-token/rejected`, { accessToken: 'x'.repeat(3000) });
    expect(r.status).toBe(400);

    let login = await h.login({ code: 12345 });
    expect(login.status).toBe(400);
    expect(login.body.error.code).toBe('BAD_REQUEST');
    expect(login.body.error.message).toMatch(/^code: /);
    login = await h.login({ code: { $gt: '' } });
    expect(login.body.error.message).toMatch(/^code: /);
    login = await h.login({ appid: ['a'], code: 'c' });
    expect(login.body.error.message).toMatch(/^appid: /);
    // A body that is no object is refused by the reader, as before.
    const array = await fetch(`${h.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' });
    expect(array.status).toBe(400);
    // Still answering, and a good login still works.
    const { code } = await h.code();
    expect((await h.login({ code })).status).toBe(200);
    expect((await h.get('/healthz')).status).toBe(200);
  });

  it('the committed documents are current (npm run docs:openapi) and valid OpenAPI 3.1', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'minigate-openapi-test-'));
    try {
      const script = new URL('../../../scripts/openapi-documents.mjs', import.meta.url).href;
      const { fetchOpenApiDocuments } = (await import(script)) as { fetchOpenApiDocuments(dir: string): Promise<Record<string, unknown>> };
      const generated = await fetchOpenApiDocuments(dir);
      for (const api of ['public', 'internal']) {
        expect(generated[api], `docs/openapi/${api}.json is stale: run npm run docs:openapi`).toEqual(committed(api));
        const validator = new Validator();
        const result = await validator.validate(structuredClone(generated[api]) as Parameters<Validator["validate"]>[0]);
        expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
        expect(result.valid).toBe(true);
        expect(validator.version).toBe('3.1');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the admin console API in the documents', () => {
  let h: Harness;
  beforeAll(async () => {
    // A moved console, also served on the public side.
    h = await startHarness({ config: { listen: { internal: '127.0.0.1:0' }, internal: { token: INTERNAL_TOKEN }, admin: { path: '/ops/console/', public: true } } });
  });
  afterAll(async () => h?.close());

  it('is listed at its configured path, internal and (with admin.public) public, with the cookie and CSRF schemes', async () => {
    const { public: pub, internal } = h.server.served();
    const consoleApi = (list: readonly MountedRouter[]) => list.find((m) => m.prefix === '/ops/console/api');
    expect(consoleApi(internal)).toBeDefined();
    expect(consoleApi(pub)?.router).toBe(consoleApi(internal)?.router);
    expect(undocumentedRoutes(internal)).toEqual([]);
    const doc = (await h.internal('GET', '/openapi/internal.json')).body;
    expect(doc.paths['/ops/console/api/login'].post.security).toEqual([]);
    expect(doc.paths['/ops/console/api/overview'].get.security).toEqual([{ adminCookie: [] }]);
    expect(doc.paths['/ops/console/api/sessions/{id}/revoke'].post.security).toEqual([{ adminCookie: [], adminCsrf: [] }]);
    expect(doc.components.securitySchemes.adminCookie).toMatchObject({ type: 'apiKey', in: 'cookie', name: 'minigate_admin' });
    expect(doc.components.securitySchemes.adminCsrf).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-CSRF-Token' });
    expect(doc.paths['/ops/console/api/login'].post.requestBody.content['application/json'].schema).toMatchObject({ type: 'object', required: ['name', 'password'] });
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/admin/'))).toBe(false);
    expect(Object.keys((await h.internal('GET', '/openapi/public.json')).body.paths)).toContain('/ops/console/api/login');
  });

  it('catches a route planted on the console router without an operation', () => {
    const { internal } = h.server.served();
    const consoleApi = internal.find((m) => m.prefix === '/ops/console/api')!;
    consoleApi.router.add('POST', '/planted/:id', () => undefined);
    expect(undocumentedRoutes(internal)).toEqual(['POST /ops/console/api/planted/{id}']);
  });
});
