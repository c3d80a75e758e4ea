/**
 * `createServer(config, deps)`: minigate assembled from its features. start() starts them in
 * order: the certificates and the listeners first (/healthz answers, /readyz says 503 NOT_READY
 * with what is starting), then the store, ACME, Redis, limits, token, gateway, subscribe, auth,
 * channel, files, checks, push, pay, doctor and relay, and last the routes (ready). A failure closes what had started, in
 * reverse, and is thrown again. close() drains every feature, then closes them in reverse.
 */
import { readFileSync } from 'node:fs';
import type { AppConfig, Config } from './config/index.js';
import { systemClock } from './core/index.js';
import { createLogger, type Logger } from './core/index.js';
import { NO_METRICS, createPrometheus, type Prometheus } from './core/index.js';
import { cryptoRandom } from './core/index.js';
import { createFeatureStack, StartError, type SharedDeps } from './feature/index.js';
import { boundUrl, createEdgeFeature, type EdgeFeature } from './edge/index.js';
import { createAuthFeature, type SessionService } from './auth/index.js';
import { createChannelFeature, type ChannelFeature } from './channel/index.js';
import { createChecksFeature } from './checks/index.js';
import { COOKIE_NAME as ADMIN_COOKIE, createAdminFeature, type AdminFeature } from './admin/index.js';
import { createDoctorFeature } from './doctor/index.js';
import { createFilesFeature } from './files/index.js';
import { createGatewayFeature } from './gateway/index.js';
import { createLimitsFeature } from './limits/index.js';
import { createOutboxFeature } from './outbox/index.js';
import { createPushFeature } from './push/index.js';
import { createRelayFeature, type RelayFeature } from './relay/index.js';
import { createPayFeature, type PayFeature } from './pay/index.js';
import { createSubscribeFeature } from './subscribe/index.js';
import { createTokenFeature, type TokenManager } from './token/index.js';
import { createAcmeFeature, createInternalListenCheck, createRedisFeature, createStoreFeature, createTlsFeature, makeDataDir, type StoreFeature, type TlsFeature } from './startup/index.js';
import type { Store } from './store/index.js';
import type { MountedRouter } from './http/index.js';
import { createWechatClient, type WechatClient } from './wechat/index.js';

export { StartError };

export interface ServerDeps extends Partial<Omit<SharedDeps, 'apps'>> {
  /** How often ACME renewal is checked (tests shorten it). */
  acmeCheckIntervalMs?: number;
  /** Bind the listeners last, once ready (a worker joining others that serve; see the edge feature). */
  listenWhenReady?: boolean;
  /** How often the pay reconciliation runs (tests shorten it). */
  payReconcileIntervalMs?: number;
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
  /** WeChat Pay, when pay: is configured (once started). */
  readonly pay: PayFeature | undefined;
  /** Every router served and where, by API (empty until started): what the OpenAPI documents describe. */
  served(): { public: MountedRouter[]; internal: MountedRouter[] };
  start(): Promise<void>;
  close(): Promise<void>;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/**
 * @example
 * const server = createServer(loadConfig({ file: 'minigate.yaml' }));
 * await server.start();
 */
export function createServer(config: Config, deps: ServerDeps = {}): MinigateServer {
  const logger = deps.logger ?? createLogger({ level: config.log.level, pretty: config.log.format === 'pretty' });
  const apps: ReadonlyMap<string, AppConfig> = new Map(config.apps.map((app) => [app.appid, app]));
  // metrics.enabled: Prometheus behind the neutral Metrics interface; GET /metrics serves it.
  const prometheus: Prometheus | undefined = !deps.metrics && config.metrics.enabled ? createPrometheus() : undefined;
  const metrics = deps.metrics ?? prometheus ?? NO_METRICS;
  const shared: SharedDeps = { apps, logger, clock: deps.clock ?? systemClock, random: deps.random ?? cryptoRandom, metrics };
  const wechat = createWechatClient({ apiBase: config.wechat.apiBase, timeoutMs: config.wechat.timeout, logger, metrics });
  const stack = createFeatureStack((feature, error) => logger.warn({ feature: feature.name, err: (error as Error).message }, 'close failed'));
  let storeFeature: StoreFeature | undefined;
  let tls: TlsFeature | undefined;
  let edge: EdgeFeature | undefined;
  let sessions: SessionService | undefined;
  let tokens: TokenManager | undefined;
  let payFeature: PayFeature | undefined;

  async function start(): Promise<void> {
    // Listeners first: /healthz answers, /readyz says what is still starting.
    await stack.add(createInternalListenCheck(config, shared));
    await stack.add({ name: 'dataDir', start: async () => makeDataDir(config), close: async () => undefined });
    tls = await stack.add(createTlsFeature(config, shared));
    const storeStep = createStoreFeature(config, shared);
    // /readyz says what is under way: a database not up yet, or the step starting.
    const starting = () => (stack.starting === storeStep.name && storeStep.waiting) || `${stack.starting ?? 'starting'}: starting`;
    edge = await stack.add(createEdgeFeature(config, { ...shared, tls: tls.manager, starting, listenWhenReady: deps.listenWhenReady, ...(prometheus ? { exporter: prometheus } : {}) }));
    const { store, secretKey } = (storeFeature = await stack.add(storeStep));
    const acme = await stack.add(createAcmeFeature(config, { ...shared, store, tls: tls.manager, acmeCheckIntervalMs: deps.acmeCheckIntervalMs }));
    const { redis } = await stack.add(createRedisFeature(config, shared));
    const { limits } = await stack.add(createLimitsFeature(config, { ...shared, redis }));
    tokens = (await stack.add(createTokenFeature({ ...shared, wechat, store, redis }))).tokens;
    const gateway = await stack.add(createGatewayFeature({ ...shared, tokens, wechat }));
    const subscribe = await stack.add(createSubscribeFeature({ ...shared, store, gateway: gateway.gateway }));
    let channel: ChannelFeature | undefined;
    const auth = await stack.add(
      createAuthFeature({
        ...shared,
        store,
        secretKey: secretKey.key,
        wechat,
        limits,
        phoneNumber: gateway.phoneNumber,
        call: gateway.gateway.call,
        reportSubscriptions: (appid, openid, result) => subscribe.subscriptions.report(appid, openid, result),
        tunnelUrl: () => channel?.tunnelUrl,
        recordClientInfo: config.admin.recordClientInfo,
      }),
    );
    sessions = auth.sessions;
    const features = { ...shared, store, redis, sessions, secretKey: secretKey.key, limits };
    if (config.channel.enabled) channel = await stack.add(createChannelFeature(config, features));
    const files = config.files.enabled ? await stack.add(createFilesFeature(config, features)) : undefined;
    const outbox = createOutboxFeature({ ...shared, store });
    const checks = await stack.add(createChecksFeature(config, { ...shared, store, gateway: gateway.gateway, sessions, outbox: outbox.outbox }));
    const observers = [subscribe.subscriptions.onPush, checks.checks.onPush];
    await stack.add(createPushFeature(config, { ...features, outbox: outbox.outbox, observers, ...(channel ? { publish: channel.publish } : {}) }));
    const pay = createPayFeature(config, { ...shared, store, outbox: outbox.outbox, sessions, gateway: gateway.gateway, ...(deps.payReconcileIntervalMs ? { reconcileIntervalMs: deps.payReconcileIntervalMs } : {}) });
    if (pay) payFeature = await stack.add(pay);
    await stack.add(createDoctorFeature(config, shared));
    // The dev tunnel: its links arrive on the HTTPS listener; the console's cookie is minigate's alone.
    const relay: RelayFeature | undefined = config.relay
      ? await stack.add(createRelayFeature(config.relay, { ...shared, store, redis, secretKey: secretKey.key, protectedCookies: [ADMIN_COOKIE] }))
      : undefined;
    // The console reads the other features' services, given here rather than imported sideways.
    let admin: AdminFeature | undefined;
    if (config.admin.enabled && (config.listen.internal || (config.admin.public && config.listen.https))) {
      admin = await stack.add(
        createAdminFeature(config, {
          ...features,
          tokens,
          outbox: outbox.outbox,
          tls: tls.manager,
          channel,
          files,
          relay,
          metricSamples: prometheus ? { samples: prometheus.samples, inWorker: prometheus.inWorker } : undefined,
          version: packageVersion(),
        }),
      );
    }
    // Started once every feature has registered its event kinds.
    await stack.add(outbox);
    await stack.add(edge.routes({ sessions, limits, features: stack.features, ready: () => store.ping(), acmeChallenge: acme.challenge, console: admin?.console, relay }));
    const urls = edge.urls();
    logger.info({ url: urls.https ?? urls.http, urls, store: store.redactedUrl, apps: [...apps.keys()] }, 'minigate started');
  }

  async function close(): Promise<void> {
    await stack.close();
    logger.info('minigate stopped');
  }

  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the server is not started');
    return value;
  };
  return {
    get url() {
      const urls = edge?.urls() ?? {};
      return urls.https ?? urls.http ?? '';
    },
    get urls() {
      return edge?.urls() ?? {};
    },
    get boundUrls() {
      return Object.fromEntries(Object.entries(edge?.addresses() ?? {}).map(([name, address]) => [name, boundUrl(address, name === 'https' ? 'https' : 'http')]));
    },
    get devCaFile() {
      return tls?.devCaFile;
    },
    reloadCertificates(reason = 'SIGHUP') {
      tls?.reload(reason);
    },
    get store() {
      return started(storeFeature).store;
    },
    get sessions() {
      return started(sessions);
    },
    get tokens() {
      return started(tokens);
    },
    wechat,
    logger,
    get pay() {
      return payFeature;
    },
    served: () => edge?.served() ?? { public: [], internal: [] },
    start,
    close,
  };
}
