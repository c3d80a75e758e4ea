/**
 * The edge: listeners (HTTPS, HTTP, internal), the route table, and what each route does
 * (built-in services, proxy, static files, redirects), with sessions checked where a route asks.
 *
 * listen.http, when listen.https exists, answers only ACME challenges, CA file validation and
 * health, and redirects the rest to HTTPS (308, to listen.publicHttpsPort when set; https-redirect.ts)
 * — unless the request comes from a trusted proxy that terminated TLS, which is served as if it
 * came over HTTPS.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { RELAY_ALPN } from 'minigate-protocol';
import type { RouteConfig, Config, ListenAddress } from '../config/index.js';
import { AppError, NO_METRICS, type Clock, type Logger, type Metrics } from '../core/index.js';
import { optionalSessionNow, sessionNow, type ActiveSession, type SessionService } from '../auth/index.js';
import type { Limits } from '../limits/index.js';
import { createIdentitySigner, forwardingHeaders } from './headers.js';
import { clientInfo, trustedProxies, type TrustedProxies } from './forwarded.js';
import { Router, rejectUpgrade, routeTo, sendJson, type HttpContext, type MountedRouter, type Service } from '../http/index.js';
import { edgeOperations } from './openapi.js';
import { ALLOWED_METHODS, createDispatcher } from './dispatch.js';
import { trustedRequestId } from './request-id.js';
import { requestId as newRequestId } from '../core/index.js';
import { createListener, localUrl, type Listener } from './listener.js';
import { createProxy, type Proxy } from './proxy.js';
import { httpsRedirectLocation } from './https-redirect.js';
import { applyRequestTarget } from './request-target.js';
import { RouteTable, normalizePrefix, type EdgeRoute } from './route-table.js';
import { createStaticHandler } from './static.js';
import { checkWebSocketHandshake, serveWithoutUpgrade, wantsWebSocket } from './upgrade.js';
import type { TlsManager } from '../tls/index.js';

/** What the edge serves once every feature has started (Edge.mount). */
export interface EdgeRoutes {
  sessions: SessionService;
  services: Service[];
  /** Resolves when the server can serve (the database answers). */
  ready: () => Promise<void>;
  /** ACME HTTP-01 answers: the key authorization for a token, or null. */
  acmeChallenge?: (token: string) => Promise<string | null>;
  /** The internal API, served on listen.internal behind its bearer token. */
  internal?: { token: string; router: Router };
  /**
   * The admin console: served under its path before the internal bearer check (it has its own
   * cookie sessions), and on the HTTPS listener too when `public`.
   */
  console?: ConsoleMount;
  /** Internal token failures and routes[].rateLimit (docs/limits.md). */
  limits?: Pick<Limits, 'beforeInternalAuth' | 'internalAuthFailed' | 'forRoute'>;
  /** The targets of `tunnel:` routes (the relay feature), when `relay` is on. */
  tunnels?: TunnelTargets;
  /** Takes the HTTPS listener's TLS connections that chose ALPN minigate-relay (the relay feature). */
  relaySocket?: (socket: TLSSocket) => void;
}

/** What a `tunnel:` route asks of its target (the relay feature). */
export interface TunnelRoute {
  /** The route's prefix, kept in the path sent on (as a proxy URL without a path). */
  prefix: string;
  maxBodyBytes: number;
  /** Time for the laptop to start its answer. */
  timeoutMs: number;
  dropBearer: boolean;
}

/** Sends a tunnel route's requests and upgrades on; `extra` are the forwarding and identity headers. */
export interface TunnelTarget {
  handle(ctx: HttpContext, rest: string, extra: Record<string, string>): Promise<void>;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, rest: string, extra: Record<string, string>): void;
}

export type TunnelTargets = (name: string, route: TunnelRoute) => TunnelTarget;

export interface ConsoleMount {
  /** Starts and ends with `/`. */
  path: string;
  public: boolean;
  /** `rest` is the path after `path`, starting with `/`. */
  handle: (ctx: HttpContext, rest: string) => Promise<void>;
  /** The console's JSON API, served under `{path}api` (listed by served() for the documents). */
  api: Router;
}

/**
 * The listeners can be bound before the features have started: until mount(), /healthz answers,
 * /readyz and every other request answer 503 NOT_READY with what is still starting. Routes given
 * here (sessions, services, …) are mounted at once.
 */
export type EdgeDeps = {
  logger: Logger;
  clock: Clock;
  /** The TLS manager, when listen.https is configured. */
  tls?: TlsManager;
  /** What is starting (`store: starting`), for /readyz before mount(). */
  starting?: () => string;
  metrics?: Metrics;
  /** GET /metrics on listen.internal (docs/metrics.md), when metrics are on. */
  exporter?: MetricsExporter;
} & (EdgeRoutes | { [K in keyof EdgeRoutes]?: undefined });

/** What /metrics serves: the exposition text (the whole worker group's) and its content type. */
export interface MetricsExporter {
  readonly contentType: string;
  scrape(): Promise<string>;
}

export interface Edge {
  start(): Promise<void>;
  /** Serves the routes: the server is ready. Throws when a route names a service that is not given. */
  mount(routes: EdgeRoutes): void;
  close(): Promise<void>;
  /** Bound addresses by listener name (http, https, internal). */
  addresses(): Record<string, AddressInfo>;
  /** Base URLs by listener name. */
  urls(): Record<string, string>;
  /** Every router served and where (for the OpenAPI documents and the drift test); empty before mount(). */
  served(): { public: MountedRouter[]; internal: MountedRouter[] };
}

function hstsValue(hsts: Config['tls']['hsts']): string | undefined {
  if (hsts === false) return undefined;
  if (hsts === true) return 'max-age=63072000';
  return `max-age=${Math.floor(hsts.maxAge / 1000)}${hsts.includeSubDomains ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}`;
}

export function createEdge(config: Config, deps: EdgeDeps): Edge {
  const { logger } = deps;
  const metrics = deps.metrics ?? NO_METRICS;
  const upstreamLatency = metrics.histogram('minigate_proxy_upstream_duration_seconds', 'Time until a proxied upstream began its answer, by route.', ['route']);
  const upstreamErrors = metrics.counter('minigate_proxy_upstream_errors_total', 'Proxied requests the upstream failed (connect, timeout, reset, protocol), by route.', ['route', 'kind']);
  /** Every proxy route's reverse proxy with its label: closed with the edge, counted by the connections gauge. */
  const proxies: { label: string; proxy: Proxy }[] = [];
  metrics.gauge('minigate_proxy_upstream_connections', 'Connections open to the upstreams of a proxy route (in use and idle), by route.', ['route'], {
    collect: (gauge) => {
      const byLabel = new Map<string, number>();
      for (const { label, proxy } of proxies) byLabel.set(label, (byLabel.get(label) ?? 0) + proxy.connections());
      for (const [route, count] of byLabel) gauge.set(count, { route });
    },
  });
  let mounted: EdgeRoutes | undefined;
  let table: RouteTable | undefined;
  const notReady = () => new AppError('NOT_READY');
  /** Before mount(): 503 NOT_READY naming what is starting (not thrown: a readiness probe is no failure to log). */
  function sendNotReady(ctx: HttpContext): void {
    const message = `${deps.starting?.() ?? 'starting'}; retry in a moment`;
    sendJson(ctx.res, 503, { error: { code: 'NOT_READY', message, requestId: ctx.res.getHeader('x-request-id') } });
  }
  const trusted: TrustedProxies = trustedProxies(config.trustedProxies);
  const sign = config.upstreamSecret ? createIdentitySigner(config.upstreamSecret) : undefined;
  const hsts = hstsValue(config.tls.hsts);
  const pki = config.pkiValidationDir ? createStaticHandler({ root: config.pkiValidationDir, spa: false }) : undefined;

  /**
   * The session of a request on a route that asks for one (null when optional and absent): a
   * value when it is answered at once (cached), a promise when the store is asked.
   */
  function sessionFor(req: IncomingMessage, auth: EdgeRoute['auth']): ActiveSession | null | Promise<ActiveSession | null> {
    if (auth === 'none') return null;
    return auth === 'required' ? sessionNow(mounted!.sessions, req) : optionalSessionNow(mounted!.sessions, req);
  }

  /** A proxy route's reverse proxy (kept, to close its pools and WebSockets on close). */
  function createUpstreamProxy(route: RouteConfig, dropBearer: boolean): Proxy {
    const made = createProxy({
      upstreams: Array.isArray(route.proxy) ? route.proxy : [route.proxy!],
      timeoutMs: route.timeout,
      maxBodyBytes: route.maxBodyBytes,
      logger,
      prefix: normalizePrefix(route.path),
      dropBearer,
      observe: {
        latency: upstreamLatency.bind({ route: routeLabel(route) }),
        error: (kind) => upstreamErrors.inc({ route: routeLabel(route), kind }),
      },
    });
    proxies.push({ label: routeLabel(route), proxy: made });
    return made;
  }

  function toRoute(served: EdgeRoutes, route: RouteConfig, index: number): EdgeRoute {
    const base = { host: route.host, path: route.path, label: routeLabel(route), auth: route.auth, maxBodyBytes: route.maxBodyBytes };
    if (route.service) {
      const service = served.services.find((s) => s.name === route.service);
      // The config refuses a route to a service that is off; this is for configs built another way.
      if (!service) throw new Error(`routes[${index}].service: the ${route.service} service is not running (is it enabled?)`);
      return {
        ...base,
        auth: 'none',
        plainHttp: service.plainHttp,
        upgrade: service.upgrade,
          handle: (ctx, rest) => routeTo(service.router, ctx, rest || '/'),
      };
    }
    if (route.redirect) {
      const target = route.redirect;
      return {
        ...base,
        handle: (ctx, rest) => {
          const location = target.endsWith('/') ? target + rest.replace(/^\//, '') + (ctx.query ? `?${ctx.query}` : '') : target;
          ctx.res.writeHead(308, { location, 'content-length': 0 });
          ctx.res.end();
        },
      };
    }
    // routes[].rateLimit: per user when the request has a session, else per client address.
    const limit = served.limits?.forRoute(route);
    const admit = !limit
      ? (req: IncomingMessage, _client: HttpContext['client']) => sessionFor(req, route.auth)
      : async (req: IncomingMessage, client: HttpContext['client']) => {
          const session = await sessionFor(req, route.auth);
          await limit(session ? `${session.appid}:${session.openid}` : null, client.ip);
          return session;
        };
    /** The session checked, noted on the request for its access line. */
    const admitRequest = async (ctx: HttpContext) => noteSession(ctx, await admit(ctx.req, ctx.client));
    if (route.static) {
      const serve = createStaticHandler({ root: route.static, spa: route.spa });
      return {
        ...base,
        handle: async (ctx, rest) => {
          await admitRequest(ctx);
          await serve(ctx, rest);
        },
      };
    }
    const dropBearer = route.auth !== 'none' || !route.forwardAuthorization;
    const proxy: Pick<Proxy, 'handle' | 'upgrade'> = route.tunnel
      ? tunnelTarget(served, route, index, dropBearer)
      : createUpstreamProxy(route, dropBearer);
    const extraHeaders = (session: ActiveSession | null, client: HttpContext['client'], requestId: string): Record<string, string> => {
      const headers = forwardingHeaders(client);
      headers['x-request-id'] = requestId;
      if (session && sign) {
        const identity = sign({ appid: session.appid, openid: session.openid, unionid: session.unionid, session: session.tokenHash }, deps.clock.now());
        for (const name in identity) headers[name] = identity[name]!;
      }
      return headers;
    };
    return {
      ...base,
      // No await when the session check is answered from the cache (most requests); the headers are made synchronously.
      handle: (ctx, rest) => {
        const admitted = admit(ctx.req, ctx.client);
        const forward = (session: ActiveSession | null) => proxy.handle(ctx, rest, extraHeaders(noteSession(ctx, session), ctx.client, ctx.requestId));
        return admitted instanceof Promise ? admitted.then(forward) : forward(admitted);
      },
      upgrade: (req, socket, head, rest, client) => {
        const requestId = (client.viaTrustedProxy && trustedRequestId(req.headers['x-request-id'])) || newRequestId();
        // A check answered at once may also throw at once: Promise.resolve().then makes both a rejection.
        Promise.resolve().then(() => admit(req, client)).then(
          (session) => extraHeaders(session, client, requestId),
        ).then(
          (extra) => proxy.upgrade(req, socket, head, rest, extra),
          (error: unknown) => rejectUpgrade(socket, error),
        );
      },
    };
  }

  function tunnelTarget(served: EdgeRoutes, route: RouteConfig, index: number, dropBearer: boolean) {
    // The config refuses a tunnel route without `relay`; this is for configs built another way.
    if (!served.tunnels) throw new Error(`routes[${index}].tunnel: the relay is not running (add relay: {})`);
    return served.tunnels(route.tunnel!, { prefix: normalizePrefix(route.path), maxBodyBytes: route.maxBodyBytes, timeoutMs: route.timeout, dropBearer });
  }

  function mount(routes: EdgeRoutes): void {
    const configured = config.routes.map((route, index) => toRoute(routes, route, index));
    const moved = new Set(config.routes.map((r) => r.service).filter(Boolean));
    const builtIn = routes.services
      .filter((s) => !moved.has(s.name))
      .map(
        (s): EdgeRoute => ({
          path: s.defaultPath,
          label: s.defaultPath,
          auth: 'none',
          maxBodyBytes: 0,
          plainHttp: s.plainHttp,
          upgrade: s.upgrade,
          handle: (ctx, rest) => routeTo(s.router, ctx, rest || '/'),
        }),
      );
    table = new RouteTable([...configured, ...builtIn]);
    mounted = routes;
  }
  if (deps.services) mount(deps as EdgeRoutes);

  /** Health, answered on every listener and to any method. */
  const commonRouter = new Router()
    .route('GET', '/healthz', edgeOperations.healthz, (ctx) => {
      ctx.route = '/healthz';
      sendJson(ctx.res, 200, { ok: true });
    })
    .route('GET', '/readyz', edgeOperations.readyz, async (ctx) => {
      ctx.route = '/readyz';
      if (!mounted) return sendNotReady(ctx);
      await mounted.ready();
      sendJson(ctx.res, 200, { ok: true });
    });

  /** GET /metrics on the internal listener (its own bearer check: the internal token or metrics.token). */
  const exporter = deps.exporter;
  const metricsRouter = exporter
    ? new Router().route('GET', '/metrics', edgeOperations.metrics, async (ctx) => {
        const text = await exporter.scrape();
        ctx.res.writeHead(200, { 'content-type': exporter.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        ctx.res.end(ctx.req.method === 'HEAD' ? undefined : text);
      })
    : undefined;

  /**
   * What every listener answers the same way: health and CA file validation. Undefined when the
   * path is neither (synchronously: most requests are neither, and pay no promise for asking).
   */
  function common(ctx: HttpContext): Promise<void> | undefined {
    const health = commonRouter.match('GET', ctx.path);
    if (health && 'handler' in health) return Promise.resolve(health.handler(ctx));
    if (pki && ctx.path.startsWith('/.well-known/pki-validation/')) return Promise.resolve(pki(ctx, ctx.path.slice('/.well-known/pki-validation'.length)));
    return undefined;
  }

  /** Serves the admin console when the path is under its path; false otherwise. */
  async function serveConsole(ctx: HttpContext): Promise<boolean> {
    const mount = mounted?.console;
    if (!mount) return false;
    const bare = mount.path.slice(0, -1);
    if (ctx.path === bare) {
      ctx.res.writeHead(308, { location: mount.path, 'content-length': 0 });
      ctx.res.end();
      return true;
    }
    if (!ctx.path.startsWith(mount.path)) return false;
    await mount.handle(ctx, ctx.path.slice(bare.length));
    return true;
  }

  /**
   * Not async, nor is plain(): the route's own promise is handed back as it is (each async layer
   * between the listener and a route cost every request a promise and its ticks); a refusal
   * thrown here reaches the dispatcher like a rejection.
   */
  function serve(ctx: HttpContext): void | Promise<void> {
    const answered = common(ctx);
    if (answered !== undefined) return answered;
    if (!table) return sendNotReady(ctx);
    if (ctx.client.scheme === 'https' && mounted?.console?.public) return serveConsole(ctx).then((served) => (served ? undefined : route(ctx)));
    return route(ctx);
  }

  function route(ctx: HttpContext): void | Promise<void> {
    const found = table!.match(ctx.client.host, ctx.path);
    if (!found) throw new AppError('NOT_FOUND');
    ctx.route = found.route.label;
    return found.route.handle(ctx, found.rest);
  }

  const httpsAddress = config.listen.https;
  let httpsPort: number | undefined;

  async function answerAcmeChallenge(ctx: HttpContext, acmeChallenge: (token: string) => Promise<string | null>): Promise<void> {
    const token = ctx.path.slice('/.well-known/acme-challenge/'.length);
    const answer = /^[A-Za-z0-9_-]+$/.test(token) ? await acmeChallenge(token) : null;
    if (answer === null) throw new AppError('NOT_FOUND');
    ctx.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(answer) });
    ctx.res.end(answer);
  }

  function plain(ctx: HttpContext): void | Promise<void> {
    const acmeChallenge = mounted?.acmeChallenge;
    if (acmeChallenge && ctx.path.startsWith('/.well-known/acme-challenge/')) return answerAcmeChallenge(ctx, acmeChallenge);
    if (!httpsAddress || !config.listen.httpRedirect || ctx.client.viaTrustedProxy) return serve(ctx);
    const answered = common(ctx);
    if (answered !== undefined) return answered;
    const found = table?.match(ctx.client.host, ctx.path);
    if (found?.route.plainHttp) {
      ctx.route = found.route.label;
      return found.route.handle(ctx, found.rest);
    }
    ctx.route = 'https-redirect';
    const location = httpsRedirectLocation(ctx.client.host, config.listen.publicHttpsPort ?? httpsPort, ctx.path, ctx.query);
    ctx.res.writeHead(308, { location, 'content-length': 0 });
    ctx.res.end();
  }

  function upgrade(scheme: 'http' | 'https', server: () => Listener['server']) {
    return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      try {
        applyRequestTarget(req);
        if (!wantsWebSocket(req)) return serveWithoutUpgrade(req, socket, (r, res) => server().emit('request', r, res));
        checkWebSocketHandshake(req);
      } catch (error) {
        return rejectUpgrade(socket, error);
      }
      const client = clientInfo(req, scheme, trusted);
      if (scheme === 'http' && httpsAddress && config.listen.httpRedirect && !client.viaTrustedProxy) {
        return rejectUpgrade(socket, new AppError('NOT_FOUND', { message: 'Use wss:// on the HTTPS port.' }));
      }
      const path = (req.url ?? '/').split('?', 1)[0]!;
      if (!table) return rejectUpgrade(socket, notReady());
      const found = table.match(client.host, path);
      if (!found?.route.upgrade) return rejectUpgrade(socket, new AppError('NOT_FOUND'));
      found.route.upgrade(req, socket, head, found.rest, client);
    };
  }

  const listeners: Listener[] = [];
  const makeListener = (name: string, scheme: 'http' | 'https', handle: (ctx: HttpContext) => void | Promise<void>) => {
    const dispatch = createDispatcher({
      logger,
      client: (req) => clientInfo(req, scheme, trusted),
      handle,
      listener: name,
      metrics,
      access: config.log.access,
      accessSample: config.log.accessSample,
    });
    const address = name === 'https' ? httpsAddress! : name === 'internal' ? config.listen.internal! : config.listen.http!;
    const listener = createListener({
      name,
      address,
      logger,
      handler: hsts && scheme === 'https' ? (req, res) => (res.setHeader('strict-transport-security', hsts), dispatch(req, res)) : dispatch,
      upgrade: name === 'internal' ? undefined : upgrade(scheme, () => listener.server),
      ...(scheme === 'https' ? { tls: deps.tls!.serverOptions(), http2: config.tls.http2 } : {}),
      // Relay clients dial the HTTPS port too, told apart by ALPN; until the relay is mounted they are cut.
      ...(scheme === 'https' && config.relay
        ? { alpn: { protocol: RELAY_ALPN, accept: (socket: TLSSocket) => (mounted?.relaySocket ? mounted.relaySocket(socket) : socket.destroy()) } }
        : {}),
    });
    // CONNECT (authority-form): minigate is no forward proxy. Without this Node closes in silence.
    listener.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      rejectUpgrade(socket, new AppError('METHOD_NOT_ALLOWED', { message: 'CONNECT is not served: minigate is not a forward proxy.' }), {
        allow: ALLOWED_METHODS.join(', '),
      });
    });
    if (scheme === 'https') deps.tls!.attach(listener.server as never);
    listeners.push(listener);
    return listener;
  };

  return {
    async start() {
      const open = async (listener: Listener, address: ListenAddress) => {
        try {
          return await listener.start();
        } catch (error) {
          throw Object.assign(error as Error, { listener: listener.name, where: `${address.host}:${address.port}` });
        }
      };
      if (httpsAddress) {
        if (!deps.tls) throw new Error('listen.https without a TLS manager');
        httpsPort = (await open(makeListener('https', 'https', serve), httpsAddress)).port;
      }
      if (config.listen.http) await open(makeListener('http', 'http', plain), config.listen.http);
      if (config.listen.internal) {
        const internal = makeListener('internal', 'http', async (ctx) => {
          const answered = common(ctx);
          if (answered !== undefined) return answered;
          if (!mounted) return sendNotReady(ctx);
          if (await serveConsole(ctx)) return;
          const { limits, internal } = mounted;
          await limits?.beforeInternalAuth(ctx.client.ip);
          const authorization = ctx.req.headers.authorization;
          if (metricsRouter && ctx.path === '/metrics') {
            ctx.route = '/metrics';
            // The internal token, or metrics.token: a scraper need not hold the internal API's key.
            const metricsToken = config.metrics.token;
            if (!(internal && internalAuthorized(authorization, internal.token)) && !(metricsToken && internalAuthorized(authorization, metricsToken))) {
              await limits?.internalAuthFailed(ctx.client.ip);
              throw new AppError('INTERNAL_AUTH_REQUIRED');
            }
            return routeTo(metricsRouter, ctx, ctx.path);
          }
          ctx.route = 'internal';
          if (!internal || !internalAuthorized(authorization, internal.token)) {
            await limits?.internalAuthFailed(ctx.client.ip);
            throw new AppError('INTERNAL_AUTH_REQUIRED');
          }
          await routeTo(internal.router, ctx, ctx.path);
        });
        await open(internal, config.listen.internal);
      }
    },
    async close() {
      // Listeners stop accepting and drain; WebSockets (which listeners no longer track) get 1001.
      await Promise.all([...listeners.map((l) => l.close()), ...proxies.map(({ proxy }) => proxy.closeTunnels())]);
      for (const { proxy } of proxies) proxy.destroy();
    },
    mount,
    served() {
      if (!mounted) return { public: [], internal: [] };
      const moved = config.routes.filter((r) => r.service);
      const services = mounted.services.flatMap((s) => {
        const at = moved.filter((r) => r.service === s.name).map((r) => normalizePrefix(r.path));
        return (at.length ? at : [s.defaultPath]).map((prefix) => ({ prefix, router: s.router }));
      });
      // The console's API is part of the internal API, and of the public one with admin.public.
      const consoleApi = mounted.console ? { prefix: `${mounted.console.path}api`, router: mounted.console.api } : undefined;
      return {
        public: [{ prefix: '', router: commonRouter }, ...services, ...(consoleApi && mounted.console?.public ? [consoleApi] : [])],
        internal: [
          ...(mounted.internal
            ? [{ prefix: '', router: commonRouter }, ...(metricsRouter ? [{ prefix: '', router: metricsRouter }] : []), { prefix: '', router: mounted.internal.router }]
            : []),
          ...(consoleApi && config.listen.internal ? [consoleApi] : []),
        ],
      };
    },
    addresses() {
      return Object.fromEntries(listeners.filter((l) => l.address).map((l) => [l.name, l.address!]));
    },
    urls() {
      return Object.fromEntries(
        listeners.filter((l) => l.address).map((l) => [l.name, localUrl(l.address!, l.name === 'https' ? 'https' : 'http')]),
      );
    },
  };
}

/** Notes a request's session (app and user) on it for its access line; returns the session. */
function noteSession<S extends { appid: string; openid: string } | null>(ctx: HttpContext, session: S): S {
  if (session) {
    ctx.appid = session.appid;
    ctx.openid = session.openid;
  }
  return session;
}

/** A route's metrics label: its configured host and path (bounded by the config, never the raw URL). */
function routeLabel(route: RouteConfig): string {
  return (route.host ?? '') + route.path;
}

/** `Authorization: Bearer <token>`, compared in constant time. */
function internalAuthorized(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Answers a WebSocket upgrade with an error status in our shape, then closes. */
