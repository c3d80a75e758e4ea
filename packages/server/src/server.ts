/**
 * `createServer(config, deps)`: minigate assembled from its features. Lifecycle: start() opens
 * the store, migrates, checks the secret key, then listens; close() stops listening (draining
 * in-flight requests), stops timers and closes the store.
 */
import type { AddressInfo } from 'node:net';
import {
  checkKeyAgainstStore,
  createSecretBox,
  createSessionService,
  loadSecretKey,
  registerAuthRoutes,
  type SessionService,
} from './auth/index.js';
import type { AppConfig, Config } from './config/index.js';
import { systemClock, type Clock } from './core/clock.js';
import { AppError } from './core/errors.js';
import { createLogger, type Logger } from './core/logger.js';
import { cryptoRandom, type Random } from './core/random.js';
import { createDispatcher, Router, sendJson } from './edge/http.js';
import { createHttpListener, localUrl, type HttpListener } from './edge/listener.js';
import { createStore, redactUrl, type Store } from './store/index.js';
import { createWechatClient, type WechatClient } from './wechat/index.js';

/** Ended sessions are kept this long (so a revoked token is told "revoked", not "invalid"). */
export const SESSION_PURGE_AFTER_MS = 7 * 86_400_000;
export const SESSION_PURGE_INTERVAL_MS = 3_600_000;

export interface ServerDeps {
  logger?: Logger;
  clock?: Clock;
  random?: Random;
}

export interface MinigateServer {
  /** Listening URL (`http://127.0.0.1:PORT`), set once started. */
  readonly url: string;
  readonly address: AddressInfo | null;
  /** Available once started. */
  readonly store: Store;
  readonly sessions: SessionService;
  readonly wechat: WechatClient;
  readonly logger: Logger;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A failure to start, with a message for the operator. */
export class StartError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartError';
  }
}

/**
 * @example
 * const server = createServer(loadConfig({ file: 'minigate.yaml' }));
 * await server.start();
 */
export function createServer(config: Config, deps: ServerDeps = {}): MinigateServer {
  const logger = deps.logger ?? createLogger({ level: config.log.level });
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? cryptoRandom;
  const apps: ReadonlyMap<string, AppConfig> = new Map(config.apps.map((app) => [app.appid, app]));
  const wechat = createWechatClient({ apiBase: config.wechat.apiBase, timeoutMs: config.wechat.timeout, logger });

  let store: Store | undefined;
  let sessions: SessionService | undefined;
  let listener: HttpListener | undefined;
  let purgeTimer: NodeJS.Timeout | undefined;
  let url = '';

  async function start(): Promise<void> {
    let secretKey;
    try {
      secretKey = loadSecretKey(config.secretKey, config.dataDir);
    } catch (error) {
      throw new StartError(`secret key: ${(error as Error).message}`, { cause: error });
    }
    if (secretKey.created) logger.info({ file: secretKey.origin }, 'generated a new secret key');

    try {
      store = await createStore({ url: config.store, logger });
      const report = await store.migrate();
      if (report.applied.length) logger.info({ applied: report.applied }, 'store: migrations applied');
    } catch (error) {
      await store?.close().catch(() => undefined);
      store = undefined;
      throw new StartError(`cannot use the store ${redactUrl(config.store)}: ${describe(error)}`, { cause: error });
    }
    try {
      await checkKeyAgainstStore(secretKey, store.meta);
    } catch (error) {
      await store.close().catch(() => undefined);
      store = undefined;
      throw new StartError((error as Error).message, { cause: error });
    }

    const liveStore = store;
    sessions = createSessionService({
      store: liveStore,
      apps,
      box: createSecretBox(secretKey.key, 'session_key'),
      clock,
      random,
      logger,
    });
    const liveSessions = sessions;

    const router = new Router();
    registerAuthRoutes(router, {
      apps,
      wechat,
      sessions: liveSessions,
      clock,
    });
    router.add('GET', '/healthz', (ctx) => sendJson(ctx.res, 200, { ok: true }));
    router.add('GET', '/readyz', async (ctx) => {
      await liveStore.ping();
      sendJson(ctx.res, 200, { ok: true });
    });

    listener = createHttpListener(config.listen.http, createDispatcher({ router, logger }), logger);
    try {
      const address = await listener.start();
      url = localUrl(address);
    } catch (error) {
      await liveStore.close().catch(() => undefined);
      const code = (error as NodeJS.ErrnoException).code;
      const where = `${config.listen.http.host}:${config.listen.http.port}`;
      throw new StartError(
        code === 'EADDRINUSE'
          ? `listen.http: ${where} is already in use; choose another port`
          : `listen.http: cannot listen on ${where} (${code ?? (error as Error).message})`,
        { cause: error },
      );
    }

    purgeTimer = setInterval(() => {
      liveSessions
        .purge(SESSION_PURGE_AFTER_MS)
        .then((n) => n && logger.info({ deleted: n }, 'session: purged ended sessions'))
        .catch((error: unknown) => logger.warn({ code: (error as AppError).code }, 'session: purge failed'));
    }, SESSION_PURGE_INTERVAL_MS);
    purgeTimer.unref();
    logger.info({ url, store: liveStore.redactedUrl, apps: [...apps.keys()] }, 'minigate started');
  }

  async function close(): Promise<void> {
    clearInterval(purgeTimer);
    await listener?.close();
    await sessions?.flush();
    await store?.close();
    logger.info('minigate stopped');
  }

  return {
    get url() {
      return url;
    },
    get address() {
      return listener?.address ?? null;
    },
    get store() {
      if (!store) throw new Error('the server is not started');
      return store;
    },
    get sessions() {
      if (!sessions) throw new Error('the server is not started');
      return sessions;
    },
    wechat,
    logger,
    start,
    close,
  };
}

function describe(error: unknown): string {
  const e = (error instanceof AppError && error.cause ? error.cause : error) as { code?: string; message?: string };
  const message = redactUrl(e?.message ?? String(error));
  return e?.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}
