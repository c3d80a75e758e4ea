/**
 * `createServer(config, deps)`: minigate assembled from its features. Lifecycle: start() opens
 * the store, migrates, checks the secret key, then listens; close() stops listening (draining
 * in-flight requests), stops timers and closes the store.
 */
import path from 'node:path';
import cluster from 'node:cluster';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { X509Certificate } from 'node:crypto';
import {
  checkKeyAgainstStore,
  createSecretBox,
  createSessionService,
  loadSecretKey,
  createAuthServices,
  type SessionService,
} from './auth/index.js';
import { systemClock, AppError, internalListenProblem, isWildcard, listenExposure, makePrivateDir, warnIfReadable, createLogger, cryptoRandom, createRedis, REDIS_CONNECT_TIMEOUT_MS, type Clock, type Logger, type Random, type SharedRedis } from './core/index.js';
import type { CertificateConfig, AppConfig, Config } from './config/index.js';
import { registerSessionRoutes } from './auth/index.js';
import { createEdge, boundUrl, type Edge } from './edge/index.js';
import { Router } from './http/index.js';
import { createGateway, phoneNumber, registerGatewayRoutes } from './gateway/index.js';
import { createClusterBus, createClusterRoomState, createLocalBus, createMemoryRoomState, createRedisBus, createRedisRoomState, type Bus, type RoomState } from './bus/index.js';
import { createChannelService, registerChannelRoutes, type ChannelService } from './channel/index.js';
import { createFilesService, createStorage, type FilesService } from './files/index.js';
import { createLimits } from './limits/index.js';
import { CHECK_TIMEOUT_MS, configuredUrls, registerCheckRoutes, runChecks } from './doctor/index.js';

/** How long after start the served domains are checked (ACME and DNS may need the moment). */
const DOMAIN_CHECK_DELAY_MS = 30_000;
import { createOutbox, type Outbox } from './outbox/index.js';
import { createPushService } from './push/index.js';
import { createTokenManager, createTokenShare, type TokenManager } from './token/index.js';
import { CertificateError, createAcmeManager, createTlsManager, ensureDevCertificate, selfSignedCertificate, type AcmeManager, type CertificateSource, type TlsManager } from './tls/index.js';
import { createStore, redactUrl, type Store } from './store/index.js';
import { createWechatClient, type WechatClient } from './wechat/index.js';

/** Ended sessions are kept this long (so a revoked token is told "revoked", not "invalid"). */
export const SESSION_PURGE_AFTER_MS = 7 * 86_400_000;
export const SESSION_PURGE_INTERVAL_MS = 3_600_000;
/** Finished push deliveries are kept this long (WeChat's repeats come within a minute). */
export const OUTBOX_KEEP_MS = 3 * 86_400_000;

export interface ServerDeps {
  logger?: Logger;
  clock?: Clock;
  random?: Random;
  /** How often ACME renewal is checked (tests shorten it). */
  acmeCheckIntervalMs?: number;
}

export interface MinigateServer {
  /** The main URL (https when listen.https is set, else http), set once started. */
  readonly url: string;
  /** URLs by listener: http, https, internal (wildcard hosts as 127.0.0.1, to connect to). */
  readonly urls: Record<string, string>;
  /** The addresses as bound, for people (`http://0.0.0.0:8080 (every interface)`). */
  readonly boundUrls: Record<string, string>;
  /** The dev CA's certificate, when tls.devCa made one. */
  readonly devCaFile: string | undefined;
  /** Loads the certificates again (SIGHUP). */
  reloadCertificates(reason?: string): void;
  /** Available once started. */
  readonly store: Store;
  readonly sessions: SessionService;
  /** The access_token manager (available once started). */
  readonly tokens: TokenManager;
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
  let edge: Edge | undefined;
  let tlsManager: TlsManager | undefined;
  let devCaFile: string | undefined;
  let acme: AcmeManager | undefined;
  let redis: SharedRedis | undefined;
  let tokenManager: TokenManager | undefined;
  let purgeTimer: NodeJS.Timeout | undefined;
  let outbox: Outbox | undefined;
  let channel: ChannelService | undefined;
  let files: FilesService | undefined;
  let checkTimer: NodeJS.Timeout | undefined;
  let bus: Bus | undefined;
  let roomState: RoomState | undefined;
  let url = '';

  async function start(): Promise<void> {
    if (config.listen.internal) await checkInternalListen(config, logger);
    try {
      makePrivateDir(config.dataDir);
    } catch (error) {
      throw new StartError(`dataDir: cannot create ${config.dataDir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
    }
    let secretKey;
    try {
      secretKey = loadSecretKey(config.secretKey, config.dataDir);
    } catch (error) {
      throw new StartError(`secret key: ${(error as Error).message}`, { cause: error });
    }
    if (secretKey.created) logger.info({ file: secretKey.origin }, 'generated a new secret key');
    else if (!config.secretKey) warnIfReadable([secretKey.origin], logger, 'the secret key');
    const tlsKeyFiles = config.listen.https ? config.tls.certificates.flatMap((c) => [c.key, c.pfx, c.jks]) : [];
    warnIfReadable(tlsKeyFiles.filter((f): f is string => f !== undefined), logger, 'tls: the private key');

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

    let tls: TlsManager | undefined;
    if (config.listen.https) {
      const sources: CertificateSource[] = config.tls.certificates.map((c) => ({ config: c }));
      if (config.tls.devCa) {
        const dev = await ensureDevCertificate(config.dataDir, clock.now());
        devCaFile = dev.caFile;
        sources.push({ config: { cert: dev.certFile, key: dev.keyFile, names: ['localhost', '127.0.0.1', '::1'] } as CertificateConfig, devCa: true });
        if (dev.createdCa) logger.info({ caFile: dev.caFile }, 'tls: made a local dev CA; trust it to use https without warnings');
      }
      tls = createTlsManager({ tls: config.tls, sources, logger, clock });
      try {
        await tls.start();
      } catch (error) {
        await liveStore.close().catch(() => undefined);
        if (error instanceof CertificateError) throw new StartError(`tls: ${error.message.split('\n').join('\n  tls: ')}`, { cause: error });
        throw error;
      }
      if (config.tls.acme) {
        const manager = tls;
        acme = createAcmeManager({
          settings: config.tls.acme,
          store: liveStore,
          tls: manager,
          logger,
          clock,
          dataDir: config.dataDir,
          ...(deps.acmeCheckIntervalMs ? { checkIntervalMs: deps.acmeCheckIntervalMs } : {}),
          temporaryCertificate: async (names) => {
            const { certPem, keyPem } = await selfSignedCertificate(names, clock.now());
            return { source: 'temporary', keyPem, chainPem: [certPem], chain: [new X509Certificate(certPem)], names };
          },
        });
        await acme.start();
      }
    }
    tlsManager = tls;

    if (config.redis) {
      redis = createRedis(config.redis, logger);
      // Every instance must start on the same lock: one still connecting would take the
      // database's while the others hold Redis's, and both would refresh.
      if (!(await redis.ready(REDIS_CONNECT_TIMEOUT_MS))) logger.warn('redis: not reachable at start; the database takes its place until it is');
    }
    // One count for every process: Redis across instances, the primary across workers, else here.
    const limits = createLimits(config.limits, {
      logger,
      store: redis ? { kind: 'redis', client: redis.client } : cluster.isWorker ? { kind: 'cluster' } : { kind: 'memory' },
    });
    const tokens = createTokenManager({
      apps,
      wechat,
      share: createTokenShare({ store: liveStore, ...(redis ? { redis } : {}), clock, logger }),
      store: liveStore,
      clock,
      logger,
    });
    const gateway = createGateway({ tokens, wechat, logger });
    tokenManager = tokens;
    const internalRouter = new Router();
    registerGatewayRoutes(internalRouter, { apps, tokens, gateway });
    registerSessionRoutes(internalRouter, liveSessions, new Set(apps.keys()));
    registerCheckRoutes(internalRouter);
    if (config.channel.enabled) {
      // Redis for instances on several machines; the primary for workers on one; else this process.
      const busId = `${process.pid.toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
      bus = redis ? createRedisBus(redis, busId, logger) : cluster.isWorker ? createClusterBus() : createLocalBus();
      roomState = redis ? createRedisRoomState(redis, busId) : cluster.isWorker ? createClusterRoomState() : createMemoryRoomState();
      channel = createChannelService({
        config: config.channel,
        upstreamSecret: config.upstreamSecret,
        secretKey: secretKey.key,
        sessions: liveSessions,
        idleOf: (appid) => apps.get(appid)?.session.idle ?? 86_400_000,
        bus,
        state: roomState,
        store: liveStore,
        ...(redis ? { redis } : {}),
        clock,
        random,
        logger,
        limits,
      });
      registerChannelRoutes(internalRouter, channel.hub);
    }
    const liveChannel = channel;
    if (config.files.enabled) {
      const filesDir = path.resolve(config.dataDir, config.files.storage.dir ?? 'files');
      for (const route of config.routes) {
        // Uploads must never be reachable as static files: only by id, through /files.
        if (route.static && config.files.storage.type === 'local' && (filesDir + path.sep).startsWith(path.resolve(route.static) + path.sep)) {
          throw new StartError(`files.storage.dir (${filesDir}) is inside routes[].static ${route.static}; keep uploads outside served directories`);
        }
      }
      files = createFilesService({
        config: config.files,
        apps,
        store: liveStore,
        storage: createStorage(config.files.storage, config.dataDir, logger),
        sessions: liveSessions,
        secretKey: secretKey.key,
        clock,
        logger,
      });
      files.registerInternal(internalRouter);
    }
    const liveOutbox = createOutbox({ store: liveStore, clock, logger });
    outbox = liveOutbox;

    edge = createEdge(config, {
      logger,
      clock,
      sessions: liveSessions,
      services: [
        ...createAuthServices({
          apps,
          wechat,
          sessions: liveSessions,
          clock,
          phoneNumber: (appid, code, openid) => phoneNumber(gateway, appid, { code, openid }),
          savePhone: (appid, openid, phone) => liveStore.setUserPhone(appid, openid, phone),
          limits,
          ...(liveChannel ? { tunnelUrl: liveChannel.tunnelUrl } : {}),
        }),
        ...(liveChannel ? [liveChannel.service] : []),
        ...(files ? [files.service] : []),
        createPushService({
          apps,
          outbox: liveOutbox,
          secret: config.upstreamSecret,
          clock,
          logger,
          ...(liveChannel ? { publish: (room: string, event: string, data: unknown) => liveChannel.hub.serverPublish(room, event, data) } : {}),
        }),
      ],
      ...(config.internal ? { internal: { token: config.internal.token, router: internalRouter } } : {}),
      limits,
      ready: () => liveStore.ping(),
      ...(tls ? { tls } : {}),
      ...(acme ? { acmeChallenge: acme.challenge } : {}),
    });
    try {
      await edge.start();
    } catch (error) {
      await edge.close().catch(() => undefined);
      tls?.close();
      await redis?.close().catch(() => undefined);
      await liveStore.close().catch(() => undefined);
      const failure = error as NodeJS.ErrnoException & { listener?: string; where?: string };
      throw new StartError(
        failure.code === 'EADDRINUSE'
          ? `listen.${failure.listener}: ${failure.where} is already in use; choose another port`
          : `listen.${failure.listener ?? 'http'}: cannot listen on ${failure.where ?? ''} (${failure.code ?? failure.message})`,
        { cause: error },
      );
    }
    const urls = edge.urls();
    url = urls.https ?? urls.http ?? '';

    liveOutbox.start();
    channel?.start();
    files?.start();
    purgeTimer = setInterval(() => {
      liveSessions
        .purge(SESSION_PURGE_AFTER_MS)
        .then((n) => n && logger.info({ deleted: n }, 'session: purged ended sessions'))
        .catch((error: unknown) => logger.warn({ code: (error as AppError).code }, 'session: purge failed'));
      liveStore
        .outboxPurge(clock.now() - OUTBOX_KEEP_MS)
        .then((n) => n && logger.info({ deleted: n }, 'push: purged finished deliveries'))
        .catch((error: unknown) => logger.warn({ code: (error as AppError).code }, 'push: purge failed'));
    }, SESSION_PURGE_INTERVAL_MS);
    purgeTimer.unref();
    // WeChat's rules for the served domains, once, after ACME and DNS have had a moment (one worker does it).
    const domains = config.tls.checkDomains && (!cluster.isWorker || cluster.worker?.id === 1) ? configuredUrls(config) : [];
    if (domains.length) {
      checkTimer = setTimeout(() => {
        runChecks(domains, { timeoutMs: CHECK_TIMEOUT_MS, ca: [], resolve: new Map() })
          .then((report) => {
            for (const r of report.results) {
              const bad = r.checks.filter((c) => c.verdict === 'fail' || c.verdict === 'warn');
              for (const c of bad) logger.warn({ url: r.url, check: c.id, detail: c.detail, fix: c.fix }, `check: ${c.title} ${c.verdict}s for ${r.url}`);
              if (!bad.length) logger.info({ url: r.url }, 'check: the domain passes WeChat\'s server-domain rules');
            }
          })
          .catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'check: could not run'));
      }, DOMAIN_CHECK_DELAY_MS);
      checkTimer.unref();
    }
    logger.info({ url, urls, store: liveStore.redactedUrl, apps: [...apps.keys()] }, 'minigate started');
  }

  async function close(): Promise<void> {
    clearInterval(purgeTimer);
    clearTimeout(checkTimer);
    acme?.close();
    // Uploads still receiving a body are answered 503 now, so the drain below does not cut them.
    files?.drain();
    await Promise.all([edge?.close(), channel?.close()]);
    await outbox?.close();
    await files?.close();
    await bus?.close();
    await roomState?.close();
    tlsManager?.close();
    await sessions?.flush();
    await redis?.close();
    await store?.close();
    logger.info('minigate stopped');
  }

  return {
    get url() {
      return url;
    },
    get urls() {
      return edge?.urls() ?? {};
    },
    get boundUrls() {
      return Object.fromEntries(Object.entries(edge?.addresses() ?? {}).map(([name, address]) => [name, boundUrl(address, name === 'https' ? 'https' : 'http')]));
    },
    get devCaFile() {
      return devCaFile;
    },
    reloadCertificates(reason = 'SIGHUP') {
      tlsManager?.reload(reason);
    },
    get store() {
      if (!store) throw new Error('the server is not started');
      return store;
    },
    get sessions() {
      if (!sessions) throw new Error('the server is not started');
      return sessions;
    },
    get tokens() {
      if (!tokenManager) throw new Error('the server is not started');
      return tokenManager;
    },
    wechat,
    logger,
    start,
    close,
  };
}

/**
 * The internal API stays off the internet unless internal.allowPublic says otherwise (the config
 * checks addresses; a host name is checked here, as the address it resolves to). Every interface
 * of a host whose interfaces are all private (a container) is allowed, with a warning.
 */
async function checkInternalListen(config: Config, logger: Logger): Promise<void> {
  const { host, port } = config.listen.internal!;
  const allowPublic = config.internal?.allowPublic ?? false;
  let address = host;
  if (!isIP(host) && !isWildcard(host)) {
    try {
      address = (await lookup(host)).address;
    } catch (error) {
      throw new StartError(`listen.internal: cannot resolve ${host} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
    }
  }
  const exposure = listenExposure(address, networkInterfaces());
  const problem = internalListenProblem(address === host ? host : `${host} (${address})`, exposure, allowPublic);
  if (problem) throw new StartError(`listen.internal: ${problem}`);
  if (exposure.wildcard && !allowPublic) {
    logger.warn(
      { listen: `${host}:${port}` },
      `listen.internal: ${host} listens on every interface (all of them loopback or private here); should this host get a public interface, minigate will refuse to start — bind a private address instead`,
    );
  } else if (exposure.scope === 'public') {
    logger.warn({ listen: `${host}:${port}` }, 'listen.internal: the internal API is on a public address (internal.allowPublic); keep it behind a firewall');
  }
}

function describe(error: unknown): string {
  const e = (error instanceof AppError && error.cause ? error.cause : error) as { code?: string; message?: string };
  const message = redactUrl(e?.message ?? String(error));
  return e?.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}
