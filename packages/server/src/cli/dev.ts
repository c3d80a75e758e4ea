import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { makePrivateDir, createLogger } from '../core/index.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/index.js';
import { redactUrl } from '../store/index.js';
import { createServer } from '../server.js';
import { EXIT_FAILURE, UsageError, runUntilSignal } from './shared.js';
import { startDevShop } from './dev-shop.js';

export const DEV_APP_FILE = 'dev-app.json';
export const DEV_PORT_DEFAULT = 8080;
export const DEV_HTTPS_PORT_DEFAULT = 8443;

interface DevApp {
  appid: string;
  secret: string;
  /** The 消息推送 Token and EncodingAESKey, so the sandbox can push to /wechat/push. */
  push: { token: string; encodingAESKey: string };
}

const encodingAESKey = () => randomBytes(48).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, 43).padEnd(43, 'A');

/**
 * The dev app's AppID, secret and push keys, kept in the data dir so sessions survive restarts.
 * `appid` (--appid) names it, e.g. the AppID a mini program project already has.
 */
function devApp(dataDir: string, appid?: string): DevApp {
  const file = path.join(dataDir, DEV_APP_FILE);
  let saved: Partial<DevApp> = {};
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<DevApp>;
  } catch {
    // made below
  }
  if (appid !== undefined && saved.appid !== appid) saved = { ...(saved.push ? { push: saved.push } : {}) }; // another app: its own secret
  if (typeof saved.appid === 'string' && typeof saved.secret === 'string' && typeof saved.push?.token === 'string') return saved as DevApp;
  const app: DevApp = {
    // Files from before push existed keep their app (and so their sessions).
    appid: appid ?? (typeof saved.appid === 'string' && typeof saved.secret === 'string' ? saved.appid : `wx${randomBytes(8).toString('hex')}`),
    secret: typeof saved.appid === 'string' && typeof saved.secret === 'string' ? saved.secret : randomBytes(16).toString('hex'),
    push: { token: randomBytes(12).toString('hex'), encodingAESKey: encodingAESKey() },
  };
  makePrivateDir(dataDir);
  writeFileSync(file, `${JSON.stringify(app, null, 2)}\n`, { mode: 0o600 });
  return app;
}

export const DEV_PAY_FILE = 'dev-pay.json';
export const DEV_MCHID = '1900000109';

interface DevPay {
  mchid: string;
  serial: string;
  apiV3Key: string;
  privateKey: string;
  /** The internal API's token in dev (orders are made there); read it from this file. */
  internalToken: string;
  /** Signs identity headers to the playground's shop. */
  upstreamSecret: string;
}

/** A sandbox merchant for the dev app, kept in the data dir (mode 0600) like the app's secret. */
function devPay(dataDir: string): DevPay {
  const file = path.join(dataDir, DEV_PAY_FILE);
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Partial<DevPay>;
    if (typeof saved.privateKey === 'string' && typeof saved.apiV3Key === 'string' && typeof saved.internalToken === 'string' && typeof saved.serial === 'string' && typeof saved.upstreamSecret === 'string') return { ...saved, mchid: DEV_MCHID } as DevPay;
  } catch {
    // made below
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pay: DevPay = {
    mchid: DEV_MCHID,
    serial: randomBytes(20).toString('hex').toUpperCase(),
    apiV3Key: randomBytes(16).toString('hex'),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    internalToken: randomBytes(32).toString('hex'),
    upstreamSecret: randomBytes(32).toString('hex'),
  };
  makePrivateDir(dataDir);
  writeFileSync(file, `${JSON.stringify(pay, null, 2)}\n`, { mode: 0o600 });
  return pay;
}

/** A free local port (WeChat Pay's notify_url must name the port before the server starts). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** The playground's pages (packages/server/playground), next to dist/ in the package. */
const PLAYGROUND_DIR = fileURLToPath(new URL('../../playground/', import.meta.url));

/** The directory of minigate-client's ESM bundle, which the playground imports. */
function clientBundleDir(): string {
  try {
    return path.dirname(fileURLToPath(import.meta.resolve('minigate-client')));
  } catch {
    // Not installed next to minigate: the workspace layout.
    return fileURLToPath(new URL('../../../client/dist/', import.meta.url));
  }
}

/**
 * What the playground page needs to know and cannot ask for: the dev app's AppID (its wx.login
 * asks the sandbox for a code for it). Written to its own directory, served at /playground/dev/.
 */
function writePlaygroundConfig(dataDir: string, appid: string): string {
  const dir = path.join(dataDir, 'playground');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify({ appid, sandbox: '/__sandbox' })}\n`);
  return dir;
}

/**
 * A page for `/` that sends the browser on to the playground: a new user opens the printed URL
 * and should land somewhere, not on a JSON 404. Other unknown paths still answer NOT_FOUND.
 */
function writeRootPage(dataDir: string): string {
  const dir = path.join(dataDir, 'root');
  mkdirSync(dir, { recursive: true });
  const html = [
    '<!doctype html>',
    '<meta charset="utf-8">',
    '<meta http-equiv="refresh" content="0; url=/playground/">',
    '<title>minigate dev</title>',
    '<p>minigate dev is running. The playground is at <a href="/playground/">/playground/</a>.</p>',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'index.html'), html);
  return dir;
}

function port(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new UsageError(`${flag} must be a port number (0 picks a free one)`);
  return Number(text);
}

export async function dev(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' },
      port: { type: 'string' },
      'https-port': { type: 'string' },
      'sandbox-port': { type: 'string' },
      appid: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const dataDir = path.resolve(values.data ?? '.minigate');
  const httpPort = port(values.port, DEV_PORT_DEFAULT, '--port');
  // --port moves HTTPS with it (0: free ports, for scripts; N: N+1), unless --https-port is given:
  // a second dev server on another --port would otherwise collide on 8443.
  const httpsPort = port(values['https-port'], values.port === undefined ? DEV_HTTPS_PORT_DEFAULT : httpPort === 0 ? 0 : httpPort + 1, '--https-port');
  if (httpsPort > 65535) throw new UsageError('--port 65535 leaves no port for HTTPS above it; give --https-port N too');
  const sandboxPort = port(values['sandbox-port'], 0, '--sandbox-port');
  if (values.appid !== undefined && !/^wx[0-9a-zA-Z]{16}$/.test(values.appid)) throw new UsageError('--appid: an AppID such as wx0123456789abcdef');
  const app = devApp(dataDir, values.appid);
  const pay = devPay(dataDir);

  // The sandbox is dev-only: loaded here, never by `minigate start`.
  const { createSandbox, createSandboxClock } = await import('minigate-sandbox');
  const clock = createSandboxClock();
  const sandbox = createSandbox({ clock, port: sandboxPort, apps: [{ appid: app.appid, secret: app.secret }] });
  let sandboxUrl: string;
  try {
    sandboxUrl = await sandbox.start();
  } catch (error) {
    process.stderr.write(`minigate: the sandbox cannot listen on port ${sandboxPort} (${(error as NodeJS.ErrnoException).code})\n`);
    process.exit(EXIT_FAILURE);
  }

  // The dev merchant at the sandbox's WeChat Pay, verified in public key mode.
  const { createPublicKey } = await import('node:crypto');
  sandbox.pay.registerMerchant({ mchid: pay.mchid, serial: pay.serial, publicKey: createPublicKey(pay.privateKey).export({ type: 'spki', format: 'pem' }).toString(), apiV3Key: pay.apiV3Key });
  const publicKeyFile = path.join(dataDir, 'dev-wechatpay-pub-key.pem');
  writeFileSync(publicKeyFile, sandbox.pay.publicKeyMode.publicKeyPem);
  // notify_url names minigate's port, so a free one is chosen now when --port 0 asks for any.
  const listenPort = httpPort === 0 ? await freePort() : httpPort;

  // The playground's shop (a business service) behind /playground/shop; it learns the internal URL once started.
  let internalUrl = '';
  const shop = await startDevShop({ appid: app.appid, upstreamSecret: pay.upstreamSecret, internalToken: pay.internalToken, internalUrl: () => internalUrl });

  const playgroundConfigDir = writePlaygroundConfig(dataDir, app.appid);
  const rootPageDir = writeRootPage(dataDir);
  const sdkDir = clientBundleDir();
  if (!existsSync(path.join(sdkDir, 'minigate-client.mjs'))) {
    process.stderr.write(`minigate dev: ${path.join(sdkDir, 'minigate-client.mjs')} is missing (npm run build makes it); the playground will not load\n`);
  }

  let config;
  try {
    config = loadConfig({
      object: {
        dataDir,
        // HTTPS with the dev CA, and plain HTTP served too (not redirected) for local tools.
        listen: { http: `127.0.0.1:${listenPort}`, https: `127.0.0.1:${httpsPort}`, internal: '127.0.0.1:0', httpRedirect: false },
        // The internal API (orders, tokens) for a business service on this machine; its token is in dev-pay.json.
        internal: { token: pay.internalToken },
        upstreamSecret: pay.upstreamSecret,
        // WeChat Pay against the sandbox: the dev merchant serves the dev app (docs/pay.md).
        pay: {
          apiBase: sandboxUrl,
          notifyBase: `http://127.0.0.1:${listenPort}`,
          merchants: [{ mchid: pay.mchid, appids: [app.appid], privateKey: pay.privateKey, serial: pay.serial, apiV3Key: pay.apiV3Key, publicKeyId: sandbox.pay.publicKeyMode.serial, publicKeyFile }],
        },
        tls: { devCa: true },
        wechat: { apiBase: sandboxUrl },
        // Pushes reach the user's sockets too, so the push line in the banner shows on a channel.
        apps: [{ ...app, push: { ...app.push, room: 'user:{openid}' } }],
        // Rooms to try channels with at once (production configs list their own; none by default).
        channel: { rooms: [{ match: 'chat:*', presence: true, history: 20 }] },
        routes: [
          // The playground: a mini program on minigate-client, played in a browser (docs/client.md#the-playground).
          { path: '/playground', static: PLAYGROUND_DIR },
          // `/` (exactly: the directory has only index.html) sends a browser on to the playground.
          { path: '/', static: rootPageDir },
          { path: '/playground/sdk', static: sdkDir },
          { path: '/playground/dev', static: playgroundConfigDir },
          // The shop: orders for the logged-in user, paid with client.pay() (docs/pay.md).
          { path: '/playground/shop', proxy: shop.url, auth: 'required' },
          // The sandbox's control API on minigate's origin, so the page's wx.login gets codes without CORS.
          { path: '/__sandbox', proxy: sandboxUrl, auth: 'none' },
        ],
      },
    });
  } catch (error) {
    await sandbox.close();
    await shop.close();
    if (error instanceof ConfigError) {
      process.stderr.write(`minigate dev: ${error.message}\n`);
      process.exit(EXIT_FAILURE);
    }
    throw error;
  }

  const logger = createLogger({ level: config.log.level, pretty: values.json ? false : (config.log.format ?? 'pretty') === 'pretty' });
  // The sandbox's clock drives session expiry too, so POST /__sandbox/clock ages sessions.
  const server = createServer(config, { logger, clock });
  await runUntilSignal(server, {
    // The listener error names the config key; dev users set ports by flag.
    onStartFailure: (message) => {
      const flag = message.startsWith('listen.https:') ? '--https-port' : message.startsWith('listen.http:') ? '--port' : undefined;
      if (flag) process.stderr.write(`minigate dev: choose another port with ${flag} N (0 picks a free one)\n`);
    },
    onStarted: () => {
      internalUrl = server.urls.internal!;
      const facts = {
        url: server.urls.http!,
        playground: `${server.urls.http!}/playground/`,
        httpsUrl: server.urls.https!,
        caFile: server.devCaFile!,
        sandboxUrl,
        internalUrl: server.urls.internal!,
        mchid: pay.mchid,
        appid: app.appid,
        push: app.push,
        dataDir,
        store: redactUrl(config.store),
      };
      process.stdout.write(values.json ? `${JSON.stringify(facts)}\n` : banner(facts));
    },
    extraClose: async () => {
      await shop.close();
      await sandbox.close();
    },
  });
}

function banner(facts: {
  url: string;
  playground: string;
  httpsUrl: string;
  caFile: string;
  sandboxUrl: string;
  internalUrl: string;
  mchid: string;
  appid: string;
  push: DevApp['push'];
  dataDir: string;
  store: string;
}): string {
  const { url, playground, httpsUrl, caFile, sandboxUrl, internalUrl, mchid, appid, push, dataDir, store } = facts;
  const pushCall = { url: `${url}/wechat/push/${appid}`, appid, ...push, mode: 'safe', message: { MsgType: 'event', Event: 'debug_demo', debug_str: 'hello' } };
  const q = (s: string) => `'${s}'`;
  return [
    '',
    'minigate dev is running',
    `  minigate  ${url}`,
    `  https     ${httpsUrl}   (dev CA: ${caFile})`,
    `  sandbox   ${sandboxUrl}   (stands in for api.weixin.qq.com)`,
    `  appid     ${appid}`,
    `  data      ${dataDir}   (store ${store})`,
    `  playground ${playground}   (a mini program in the browser: open two tabs to chat)`,
    '',
    'Log in as a mini program would (wx.login code from the sandbox → /auth/login → session):',
    `  CODE=$(curl -s -X POST ${sandboxUrl}/__sandbox/login -d ${q(`{"appid":"${appid}"}`)} | sed -E 's/.*"code":"([^"]+)".*/\\1/')`,
    `  TOKEN=$(curl -s -X POST ${url}/auth/login -H 'content-type: application/json' -d "{\\"code\\":\\"$CODE\\"}" | sed -E 's/.*"token":"([^"]+)".*/\\1/')`,
    `  curl -s ${url}/auth/session -H "authorization: Bearer $TOKEN"`,
    '',
    'A channel (WebSocket rooms; chat:* rooms have presence and history here — docs/channels.md):',
    `  ${httpsUrl.replace(/^https/, 'wss')}/channel   header Authorization: Bearer $TOKEN, then {"type":"join","room":"chat:lobby"}`,
    '',
    'A message push, as WeChat sends it (logged as "push: received"; apps[].push.webhook would get it; with',
    '"FromUserName":"<openid>" in the message it also reaches that user\'s channel sockets):',
    `  curl -s -X POST ${sandboxUrl}/__sandbox/push -d ${q(JSON.stringify(pushCall))}`,
    '',
    `WeChat Pay (sandbox merchant ${mchid}; docs/pay.md): a business service makes an order on the internal API`,
    `(${internalUrl}, token in ${path.join(dataDir, DEV_PAY_FILE)}), gives "payment" to client.pay(); the sandbox's`,
    `POST /__sandbox/pay/tap is the user tapping 支付, and the notification comes back to ${url}/pay/notify/${mchid}:`,
    `  curl -s -X POST ${internalUrl}/v1/apps/${appid}/pay/orders -H "authorization: Bearer $INTERNAL_TOKEN" -H 'content-type: application/json' \\`,
    `    -d '{"session":"'$TOKEN'","outTradeNo":"order0001","description":"coffee","amount":1}'`,
    '',
    'HTTPS: trust the dev CA once — curl --cacert ' + caFile + ` ${httpsUrl}/healthz; browsers and the OS: import`,
    '  ca.pem as a trusted root; WeChat DevTools: 详情 → 本地设置 → 不校验合法域名、web-view（业务域名）、TLS 版本以及 HTTPS 证书.',
    '',
    'Ctrl-C stops it.',
    '',
  ].join('\n');
}
