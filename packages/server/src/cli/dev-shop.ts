/**
 * The playground's shop: a business service as a team would write one, in-process under
 * `minigate dev` only. It sits behind minigate on `/playground/shop` (auth: required), checks the
 * identity headers minigate signs, and makes and reads WeChat Pay orders on the internal API,
 * as any service would (docs/pay.md). The page pays with client.pay() and the sandbox's cashier.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Identity headers older than this are refused (a replayed request). */
const IDENTITY_MAX_AGE_S = 300;

export interface DevShop {
  url: string;
  close(): Promise<void>;
}

function identityOk(req: IncomingMessage, secret: string): string | null {
  const h = (name: string) => {
    const value = req.headers[name];
    return typeof value === 'string' ? value : '';
  };
  const timestamp = h('x-minigate-timestamp');
  const payload = ['v1', timestamp, h('x-minigate-appid'), h('x-minigate-openid'), h('x-minigate-unionid'), h('x-minigate-session')].join('\n');
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(payload).digest('hex')}`);
  const given = Buffer.from(h('x-minigate-signature'));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > IDENTITY_MAX_AGE_S) return null;
  return h('x-minigate-openid') || null;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startDevShop(options: { appid: string; upstreamSecret: string; internalToken: string; internalUrl: () => string }): Promise<DevShop> {
  const internal = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(options.internalUrl() + path, {
      method,
      headers: { authorization: `Bearer ${options.internalToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  const server = createServer((req, res) => {
    const openid = identityOk(req, options.upstreamSecret);
    if (!openid) return reply(res, 401, { error: 'identity headers missing or not signed by minigate' });
    // minigate forwards the whole path (/playground/shop/…).
    const path = (req.url ?? '/').split('?')[0]!.replace(/^\/playground\/shop/, '');
    const orders = `/v1/apps/${options.appid}/pay/orders`;
    (async () => {
      if (req.method === 'POST' && path === '/order') {
        // One coffee, ¥0.01: the order is made for the user minigate vouched for.
        const made = await internal('POST', orders, { openid, outTradeNo: `PG${Date.now()}${randomBytes(3).toString('hex')}`, description: '咖啡 (playground)', amount: 1 });
        return reply(res, made.status, made.body);
      }
      const match = /^\/order\/([0-9A-Za-z_-]{6,32})$/.exec(path);
      if (req.method === 'GET' && match) {
        const order = await internal('GET', `${orders}/${match[1]}`);
        const owned = (order.body as { openid?: string }).openid === openid;
        return reply(res, owned || order.status !== 200 ? order.status : 404, owned || order.status !== 200 ? order.body : { error: 'not your order' });
      }
      reply(res, 404, { error: 'POST /order or GET /order/:outTradeNo' });
    })().catch((error: unknown) => reply(res, 502, { error: (error as Error).message }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
