/**
 * Message push as WeChat does it (docs/wechat-api.md §11): URL verification with echostr, and
 * pushes in plaintext, compatible or safe mode, JSON or XML, signed, and sent again when the
 * receiver does not answer `success` (or is slow), up to three times in all. Written independently
 * of the server's receiver so that each side tests the other.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';

export type PushMode = 'plaintext' | 'compatible' | 'safe';
export type PushFormat = 'json' | 'xml';

function sha1Sorted(parts: string[]): string {
  return createHash('sha1').update([...parts].sort().join('')).digest('hex');
}

/** AES-256-CBC, key = base64(EncodingAESKey + "="), IV = its first 16 bytes, PKCS#7 to 32 bytes. */
export function encryptPush(encodingAESKey: string, appid: string, message: string, random: Buffer = randomBytes(16)): string {
  const key = Buffer.from(`${encodingAESKey}=`, 'base64');
  const body = Buffer.from(message, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const plain = Buffer.concat([random, length, body, Buffer.from(appid, 'utf8')]);
  const pad = 32 - (plain.length % 32);
  const padded = Buffer.concat([plain, Buffer.alloc(pad, pad)]);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(padded), cipher.final()]).toString('base64');
}

/**
 * `{a: 1, b: 'x'}` → `<xml><a>1</a><b><![CDATA[x]]></b></xml>`; an object nests, a list repeats its
 * element (`{E: {List: [x, y]}}` → `<E><List>x</List><List>y</List></E>`, as WeChat's subscribe events).
 */
export function toXml(message: Record<string, unknown>): string {
  return `<xml>${Object.entries(message).map(([name, value]) => xmlField(name, value)).join('')}</xml>`;
}

function xmlField(name: string, value: unknown): string {
  if (Array.isArray(value)) return value.map((item) => xmlField(name, item)).join('');
  if (typeof value === 'object' && value !== null) {
    return `<${name}>${Object.entries(value as Record<string, unknown>).map(([k, v]) => xmlField(k, v)).join('')}</${name}>`;
  }
  return typeof value === 'number' ? `<${name}>${value}</${name}>` : `<${name}><![CDATA[${String(value)}]]></${name}>`;
}

export interface PushRequest {
  url: string;
  appid: string;
  token: string;
  encodingAESKey?: string;
  mode: PushMode;
  format: PushFormat;
  message: Record<string, unknown>;
  /** How many times WeChat sends it when no `success` comes back (1 to 3). */
  attempts: number;
  /** WeChat waits this long for an answer (5 s). */
  timeoutMs: number;
  now: number;
}

export interface PushAttempt {
  status: number;
  body: string;
  error?: string;
}

export async function sendPush(request: PushRequest): Promise<PushAttempt[]> {
  // WeChat stamps every push with its time; a test may give its own.
  if (request.message.CreateTime === undefined) request = { ...request, message: { ...request.message, CreateTime: Math.floor(request.now / 1000) } };
  const text = request.format === 'json' ? JSON.stringify(request.message) : toXml(request.message);
  const timestamp = String(Math.floor(request.now / 1000));
  const nonce = String(Math.floor(Math.random() * 1e9));
  const params = new URLSearchParams({ signature: sha1Sorted([request.token, timestamp, nonce]), timestamp, nonce });
  if (typeof request.message.FromUserName === 'string') params.set('openid', request.message.FromUserName);
  let body = text;
  if (request.mode !== 'plaintext') {
    if (!request.encodingAESKey) throw new Error('encodingAESKey is required for compatible and safe mode');
    const encrypt = encryptPush(request.encodingAESKey, request.appid, text);
    params.set('encrypt_type', 'aes');
    params.set('msg_signature', sha1Sorted([request.token, timestamp, nonce, encrypt]));
    const envelope: Record<string, unknown> =
      request.mode === 'safe' ? { ToUserName: request.message.ToUserName ?? '', Encrypt: encrypt } : { ...request.message, Encrypt: encrypt };
    body = request.format === 'json' ? JSON.stringify(envelope) : toXml(envelope);
  }
  const attempts: PushAttempt[] = [];
  const url = `${request.url}${request.url.includes('?') ? '&' : '?'}${params.toString()}`;
  for (let i = 0; i < Math.min(Math.max(request.attempts, 1), 3); i++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': request.format === 'json' ? 'application/json' : 'text/xml' },
        body,
        signal: AbortSignal.timeout(request.timeoutMs),
      });
      const answer = await response.text();
      attempts.push({ status: response.status, body: answer });
      // WeChat stops at `success` (or an empty body) — unless a test asked for its retries anyway.
      if (response.ok && (answer === 'success' || answer === '') && i + 1 >= request.attempts) break;
    } catch (error) {
      attempts.push({ status: 0, body: '', error: (error as Error).name === 'TimeoutError' ? 'timeout' : (error as Error).message });
    }
  }
  return attempts;
}

/** The GET WeChat sends when the push URL is saved in the console; returns what came back. */
export async function verifyPushUrl(url: string, token: string, now: number): Promise<{ status: number; body: string; echostr: string }> {
  const timestamp = String(Math.floor(now / 1000));
  const nonce = String(Math.floor(Math.random() * 1e9));
  const echostr = randomBytes(9).toString('base64url');
  const params = new URLSearchParams({ signature: sha1Sorted([token, timestamp, nonce]), timestamp, nonce, echostr });
  const response = await fetch(`${url}${url.includes('?') ? '&' : '?'}${params.toString()}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.text(), echostr };
}
