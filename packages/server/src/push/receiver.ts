/**
 * `GET|POST /wechat/push/:appid`: WeChat's message push (docs/wechat-api.md §11).
 *
 * GET is the console's URL check (echo `echostr`). POST is a push in plaintext, compatible or
 * safe mode, JSON or XML: the signature (and in safe mode msg_signature and the appid inside) is
 * checked, the message parsed, WeChat's repeats dropped (by MsgId, else by the whole message),
 * and the message written to the outbox (kind `push`) before `success` goes back — within
 * WeChat's 5 s, whatever the webhook does, since the outbox delivers it later to the app's
 * `push.webhook` (the target this feature registers). With
 * `apps[].push.room` a new message is also published into that channel room at once.
 */
import { operations } from './schemas.js';
import { createHash } from 'node:crypto';
import type { AppConfig } from '../config/index.js';
import { AppError, type Clock, type Logger } from '../core/index.js';
import { readBody, Router, type HttpContext, type Service } from '../http/index.js';
import { PUSH_KIND, type Outbox } from '../outbox/index.js';
import { decryptPushMessage, verifyPushSignature } from '../wechat/index.js';
import { parsePushXml, XmlError, type XmlObject } from './xml.js';

/** Pushes are small; anything bigger is not WeChat's. */
export const PUSH_BODY_LIMIT_BYTES = 256 * 1024;

export interface PushEvent {
  appid: string;
  /** When minigate received it (epoch ms). */
  receivedAt: number;
  format: 'json' | 'xml';
  /** The message as an object (XML turned into one: elements → fields, lists → arrays). */
  message: Record<string, unknown>;
  /** The message text as WeChat sent it (decrypted in safe mode). */
  raw: string;
}

export interface PushReceiverDeps {
  apps: ReadonlyMap<string, AppConfig>;
  /** Where pushes are queued; the service registers the `push` target on it (apps[].push.webhook). */
  outbox: Outbox;
  /** Signs deliveries (config.upstreamSecret; required by the config when a webhook is set). */
  secret: string | undefined;
  clock: Clock;
  logger: Logger;
  /** Publishes into a channel room (`apps[].push.room`); absent when channels are off. */
  publish?: (room: string, event: string, data: unknown) => Promise<unknown>;
  /**
   * Features that act on pushes (subscribe grants, media check results): each new push (not a
   * repeat) is given to them after it is queued and before `success` goes back.
   */
  observers?: readonly PushObserver[];
}

/** A feature's reaction to a push; its failure is logged, the push is still taken. */
export type PushObserver = (appid: string, message: Record<string, unknown>) => Promise<void>;

/** The channel event a push becomes: push.<Event> for events, push.<MsgType> for messages. */
export function pushEventName(message: Record<string, unknown>): string {
  const kind = message.MsgType === 'event' && typeof message.Event === 'string' ? message.Event : message.MsgType;
  const name = typeof kind === 'string' ? kind.replace(/[^A-Za-z0-9_\-:.@]/g, '_').slice(0, 59) : '';
  return `push.${name || 'unknown'}`;
}

function parse(text: string): { format: 'json' | 'xml'; message: Record<string, unknown> } {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  try {
    if (trimmed.startsWith('{')) {
      const value = JSON.parse(trimmed) as unknown;
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const message = value as Record<string, unknown>;
        // MsgId is a 64-bit number; JSON.parse would round it (and two messages could look alike).
        if (typeof message.MsgId === 'number' && !Number.isSafeInteger(message.MsgId)) {
          message.MsgId = /"MsgId"\s*:\s*(\d+)/.exec(trimmed)?.[1] ?? message.MsgId;
        }
        return { format: 'json', message };
      }
    } else if (trimmed.startsWith('<')) {
      return { format: 'xml', message: parsePushXml(trimmed) as XmlObject };
    }
  } catch (error) {
    if (!(error instanceof SyntaxError) && !(error instanceof XmlError)) throw error;
  }
  throw new AppError('BAD_REQUEST', { message: 'The push is neither a JSON object nor WeChat XML.' });
}

/**
 * What identifies a push across WeChat's repeats: MsgId when there is one, else the message
 * itself (a repeat carries the same fields; two events differ in at least one, where the usual
 * sender + CreateTime rule would merge two events of one user in the same second).
 */
export function dedupKey(message: Record<string, unknown>): string {
  if (message.MsgId !== undefined && message.MsgId !== '') return `msg:${String(message.MsgId)}`.slice(0, 190);
  return `evt:${createHash('sha256').update(canonical(message)).digest('hex')}`;
}

/** JSON with object keys sorted, so field order and XML-vs-JSON spacing do not matter. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>;
    return `{${Object.keys(object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(object[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function createPushService(deps: PushReceiverDeps): Service {
  const { apps, outbox, clock, logger } = deps;
  const router = new Router();

  outbox.target(
    PUSH_KIND,
    (appid) => {
      const webhook = apps.get(appid)?.push?.webhook;
      return webhook ? { url: webhook, secret: deps.secret } : null;
    },
    { idHeader: 'x-minigate-push-id' },
  );

  const pushConfig = (ctx: HttpContext) => {
    const app = apps.get(ctx.params.appid ?? '');
    if (!app) throw new AppError('APP_UNKNOWN');
    if (!app.push) throw new AppError('PUSH_NOT_CONFIGURED');
    return { app, push: app.push };
  };

  /** Best effort and at once, like any server publish; the webhook is the reliable path. */
  function toRoom(template: string, id: string, event: PushEvent): void {
    const openid = typeof event.message.FromUserName === 'string' ? event.message.FromUserName : '';
    if (template.includes('{openid}') && !/^[A-Za-z0-9_-]{1,64}$/.test(openid)) {
      logger.info({ appid: event.appid, push: id }, 'push: no user (FromUserName) to send it to; not published');
      return;
    }
    const room = template.replaceAll('{openid}', openid);
    const data = { id, appid: event.appid, receivedAt: event.receivedAt, message: event.message };
    deps.publish?.(room, pushEventName(event.message), data).then(
      () => undefined,
      (error: unknown) => logger.warn({ appid: event.appid, push: id, err: (error as Error).message }, 'push: publish to the channel room failed'),
    );
  }

  router.route('GET', '/:appid', operations.verify, (ctx) => {
    const { push } = pushConfig(ctx);
    const query = new URLSearchParams(ctx.query);
    const signature = { token: push.token, timestamp: query.get('timestamp') ?? '', nonce: query.get('nonce') ?? '', signature: query.get('signature') ?? '' };
    if (!verifyPushSignature(signature)) throw new AppError('PUSH_SIGNATURE_MISMATCH');
    const echostr = query.get('echostr') ?? '';
    // The console's check wants echostr back verbatim, as plain text.
    ctx.res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(echostr) });
    ctx.res.end(echostr);
  });

  router.route('POST', '/:appid', operations.receive, async (ctx) => {
    const { app, push } = pushConfig(ctx);
    const query = new URLSearchParams(ctx.query);
    const timestamp = query.get('timestamp') ?? '';
    const nonce = query.get('nonce') ?? '';
    const body = (await readBody(ctx.req, PUSH_BODY_LIMIT_BYTES)).toString('utf8');
    let text = body;
    if (query.get('encrypt_type') === 'aes') {
      if (!push.encodingAESKey) throw new AppError('PUSH_DECRYPT_FAILED', { message: 'An encrypted push arrived but apps[].push.encodingAESKey is not set.' });
      const envelope = parse(body).message;
      const encrypt = typeof envelope.Encrypt === 'string' ? envelope.Encrypt : '';
      text = decryptPushMessage({
        token: push.token,
        encodingAESKey: push.encodingAESKey,
        appid: app.appid,
        encrypt,
        timestamp,
        nonce,
        msgSignature: query.get('msg_signature') ?? '',
      });
    } else if (!verifyPushSignature({ token: push.token, timestamp, nonce, signature: query.get('signature') ?? '' })) {
      throw new AppError('PUSH_SIGNATURE_MISMATCH');
    }
    const { format, message } = parse(text);
    const event: PushEvent = { appid: app.appid, receivedAt: clock.now(), format, message, raw: text };
    const id = await outbox.enqueue({ kind: PUSH_KIND, appid: app.appid, dedupKey: dedupKey(message), payload: { ...event } });
    if (id !== null && push.room) toRoom(push.room, id, event);
    if (id !== null) {
      for (const observe of deps.observers ?? []) {
        // The push is in the outbox already: a failure here must not make WeChat send it again.
        await observe(app.appid, message).catch((error: unknown) =>
          logger.error({ appid: app.appid, event: message.Event, code: (error as AppError).code, err: (error as Error).message }, 'push: a feature failed to act on the push'),
        );
      }
    }
    logger.info({ appid: app.appid, msgType: message.MsgType, event: message.Event, repeat: id === null }, id !== null ? 'push: received' : 'push: repeat dropped');
    ctx.res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 7 });
    ctx.res.end('success');
  });

  return { name: 'push', defaultPath: '/wechat/push', router, plainHttp: true };
}
