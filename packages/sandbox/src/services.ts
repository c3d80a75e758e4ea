/**
 * The sandbox's business APIs (docs/wechat-api.md §8 and §12): content check, subscribe messages,
 * mini program codes and links. Each checks the access_token first, as WeChat does.
 */
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';

/** `{errcode}` alone means "answer with this error". */
export type ServiceResult = Record<string, unknown> | { errcode: number } | BinaryResult;
export interface BinaryResult {
  binary: Buffer;
  contentType: string;
}

export function isBinary(result: unknown): result is BinaryResult {
  return typeof result === 'object' && result !== null && Buffer.isBuffer((result as BinaryResult).binary);
}

interface Template {
  keywords: string[];
  /** One-time grants are used by a send; long-term ones are not (§8.3). */
  kind: 'one-time' | 'long-term';
}

/** A user's choice for one template, in the popup or in the settings. */
export type SubscribeChoice = 'accept' | 'reject';

/** Where an app's event pushes go (set with POST /__sandbox/push-target). */
export interface PushTarget {
  appid: string;
  url: string;
  token: string;
  encodingAESKey?: string;
  mode: 'plaintext' | 'compatible' | 'safe';
  format: 'json' | 'xml';
  /** The mini program's original id, ToUserName of its pushes. */
  ghid: string;
  mediaCheckDelayMs: number;
}

/** A mediaCheckAsync request whose verdict is still to be pushed. */
export interface PendingMediaCheck {
  traceId: string;
  appid: string;
  openid: string;
  mediaUrl: string;
  scene: number;
}

export interface SentMessage {
  msgid: string;
  appid: string;
  touser: string;
  templateId: string;
  page?: string;
  data: Record<string, unknown>;
}

/** msgids are 64-bit: these start above 2^53, so a client that parses them as doubles gets them wrong. */
const MSGID_BASE = 1988810812324364291n;

const SCENE_PATTERN = /^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$/;
const LINK_QUERY_PATTERN = /^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~%]*$/;
const MAX_LINK_EXPIRY_MS = 30 * 86_400_000;

export class SandboxServices {
  private readonly templates = new Map<string, Template>(); // appid/templateId
  private readonly credits = new Map<string, number>(); // appid/openid/templateId
  private readonly longTerm = new Set<string>(); // appid/openid/templateId
  private nextTrace = 0;
  readonly pushTargets = new Map<string, PushTarget>();
  private readonly pages = new Map<string, Set<string>>(); // appid → published pages
  readonly messages: SentMessage[] = [];
  private nextMsgid = 0n;
  riskyWords = ['risky-word', '违规'];
  reviewWords = ['review-word'];
  private readonly schemes = new Map<string, Record<string, unknown>>();

  addTemplate(appid: string, templateId: string, keywords: string[], kind: 'one-time' | 'long-term' = 'one-time'): void {
    this.templates.set(`${appid}/${templateId}`, { keywords, kind });
  }

  /** `/wxaapi/newtmpl/gettemplate`: the account's templates (type 2 one-time, 3 long-term). */
  templateList(appid: string): ServiceResult {
    const data = [...this.templates.entries()]
      .filter(([key]) => key.startsWith(`${appid}/`))
      .map(([key, t]) => ({
        priTmplId: key.slice(appid.length + 1),
        title: 'Sandbox template',
        content: t.keywords.map((k) => `${k}:{{${k}.DATA}}`).join('\n'),
        example: t.keywords.map((k) => `${k}:example`).join('\n'),
        type: t.kind === 'long-term' ? 3 : 2,
      }));
    return { errcode: 0, errmsg: 'ok', data };
  }

  /**
   * What a tap does at WeChat: in the popup, accept grants one send of a one-time template (or
   * the long-term subscription); in the settings (change), reject takes everything back.
   * Unknown templates are skipped; returns the templates it applied to.
   */
  choose(appid: string, openid: string, choices: Record<string, SubscribeChoice>, where: 'popup' | 'change'): string[] {
    const applied: string[] = [];
    for (const [templateId, choice] of Object.entries(choices)) {
      const template = this.templates.get(`${appid}/${templateId}`);
      if (!template) continue;
      const key = `${appid}/${openid}/${templateId}`;
      if (choice === 'accept' && template.kind === 'long-term') this.longTerm.add(key);
      else if (choice === 'accept' && where === 'popup') this.credits.set(key, (this.credits.get(key) ?? 0) + 1);
      else if (choice === 'reject' && where === 'change') {
        this.credits.set(key, 0);
        this.longTerm.delete(key);
      }
      applied.push(templateId);
    }
    return applied;
  }

  /** `/wxa/media_check_async`: takes the request; the verdict is pushed later (§8.2). */
  mediaCheck(appid: string, body: Record<string, unknown>, userExists: (openid: string) => boolean): { errcode: number } | { pending: PendingMediaCheck; result: ServiceResult } {
    if (body.version !== 2 && body.version !== '2') return { errcode: 40097 };
    if (typeof body.openid !== 'string' || !userExists(body.openid)) return { errcode: 40003 };
    const scene = Number(body.scene);
    if (!Number.isInteger(scene) || scene < 1 || scene > 4) return { errcode: 40129 };
    if (typeof body.media_url !== 'string' || !/^https?:\/\//.test(body.media_url)) return { errcode: 40097 };
    if (body.media_type !== 1 && body.media_type !== 2) return { errcode: 40097 };
    const hex = createHash('sha1').update(`${appid}/${body.media_url}/${this.nextTrace++}`).digest('hex');
    const traceId = `${hex.slice(0, 8)}-${hex.slice(8, 16)}-${hex.slice(16, 24)}`;
    return { pending: { traceId, appid, openid: body.openid, mediaUrl: body.media_url, scene }, result: { errcode: 0, errmsg: 'ok', trace_id: traceId } };
  }

  /** The wxa_media_check push for a check: risky when the URL says "risky", else pass. */
  mediaVerdict(check: PendingMediaCheck, ghid: string, now: number): Record<string, unknown> {
    const risky = check.mediaUrl.includes('risky');
    // The label is a string in these pushes (§8.2).
    const [suggest, label] = risky ? ['risky', '20002'] : ['pass', '100'];
    return {
      ToUserName: ghid,
      FromUserName: check.openid,
      CreateTime: Math.floor(now / 1000),
      MsgType: 'event',
      Event: 'wxa_media_check',
      appid: check.appid,
      trace_id: check.traceId,
      version: 2,
      result: { suggest, label },
      detail: [{ strategy: 'content_model', errcode: 0, suggest, label, prob: risky ? 90 : 0 }],
    };
  }

  addCredits(appid: string, openid: string, templateId: string, count: number): number {
    const key = `${appid}/${openid}/${templateId}`;
    const total = (this.credits.get(key) ?? 0) + count;
    this.credits.set(key, total);
    return total;
  }

  setPages(appid: string, pages: string[]): void {
    this.pages.set(appid, new Set(pages));
  }

  /** A page WeChat would accept: published when a list was set, never with a leading / or a query (wxacode). */
  private pageOk(appid: string, page: unknown, allowQuery: boolean): boolean {
    if (page === undefined || page === '') return true;
    if (typeof page !== 'string' || page.startsWith('/')) return false;
    const [path, query] = page.split('?');
    if (query !== undefined && !allowQuery) return false;
    const published = this.pages.get(appid);
    return !published || published.has(path!);
  }

  msgSecCheck(appid: string, body: Record<string, unknown>, userExists: (openid: string) => boolean): ServiceResult {
    if (body.version !== 2 && body.version !== '2') return { errcode: 40097 };
    if (typeof body.openid !== 'string' || !userExists(body.openid)) return { errcode: 40003 };
    const scene = Number(body.scene);
    if (!Number.isInteger(scene) || scene < 1 || scene > 4) return { errcode: 40129 };
    if (typeof body.content !== 'string' || body.content.length === 0) return { errcode: 44002 };
    if (body.content.length > 2500) return { errcode: 47001 };
    const risky = this.riskyWords.find((w) => (body.content as string).includes(w));
    const review = this.reviewWords.find((w) => (body.content as string).includes(w));
    const [suggest, label] = risky ? ['risky', 20001] : review ? ['review', 10001] : ['pass', 100];
    const traceId = createHash('sha1').update(`${appid}/${body.content}/${Date.now()}`).digest('hex').slice(0, 24);
    return {
      errcode: 0,
      errmsg: 'ok',
      trace_id: `${traceId.slice(0, 8)}-${traceId.slice(8, 16)}-${traceId.slice(16)}`,
      result: { suggest, label },
      detail: [
        { strategy: 'content_model', errcode: 0, suggest, label, prob: risky || review ? 90 : 0 },
        { strategy: 'keyword', errcode: 0, ...(risky ? { suggest, label, keyword: risky } : {}) },
      ],
    };
  }

  sendSubscribe(appid: string, body: Record<string, unknown>, userExists: (openid: string) => boolean): ServiceResult {
    const touser = body.touser;
    const templateId = body.template_id;
    if (typeof touser !== 'string' || !userExists(touser)) return { errcode: 40003 };
    const template = typeof templateId === 'string' ? this.templates.get(`${appid}/${templateId}`) : undefined;
    if (!template) return { errcode: 40037 };
    const data = body.data;
    if (typeof data !== 'object' || data === null) return { errcode: 47003, errmsg: 'argument invalid! data is empty' };
    for (const keyword of template.keywords) {
      const value = (data as Record<string, { value?: unknown }>)[keyword]?.value;
      if (typeof value !== 'string' || value === '' || value.length > 20) {
        return { errcode: 47003, errmsg: `argument invalid! data.${keyword}.value invalid` };
      }
    }
    if (!this.pageOk(appid, body.page, true)) return { errcode: 41030 };
    const key = `${appid}/${touser}/${templateId}`;
    if (!this.longTerm.has(key)) {
      const credits = this.credits.get(key) ?? 0;
      if (credits <= 0) return { errcode: 43101 };
      this.credits.set(key, credits - 1);
    }
    const msgid = (MSGID_BASE + this.nextMsgid++).toString();
    this.messages.push({ msgid, appid, touser, templateId: templateId as string, ...(typeof body.page === 'string' ? { page: body.page } : {}), data: data as Record<string, unknown> });
    return { errcode: 0, errmsg: 'ok', msgid: { __exactInteger: msgid } };
  }

  wxacode(appid: string, body: Record<string, unknown>): ServiceResult {
    if (typeof body.scene !== 'string' || !SCENE_PATTERN.test(body.scene)) return { errcode: 40129 };
    if (body.check_path !== false && !this.pageOk(appid, body.page, false)) return { errcode: 41030 };
    const width = body.width === undefined ? 430 : Number(body.width);
    if (!Number.isInteger(width) || width < 280 || width > 1280) return { errcode: 40169 };
    return { binary: noisePng(width, `${appid}/${body.scene}/${String(body.page ?? '')}`), contentType: 'image/png' };
  }

  generateScheme(appid: string, body: Record<string, unknown>, now: number): ServiceResult {
    const jump = (body.jump_wxa ?? {}) as Record<string, unknown>;
    const invalid = this.linkTarget(appid, jump.path, jump.query);
    if (invalid) return invalid;
    const expiry = expiryOf(body, now);
    if ('errcode' in expiry) return expiry;
    const scheme = `weixin://dl/business/?t=${createHash('sha1').update(`${appid}/${String(jump.path)}/${now}/${this.schemes.size}`).digest('base64url').slice(0, 12)}`;
    this.schemes.set(scheme, { appid, path: jump.path ?? '', query: jump.query ?? '', create_time: Math.floor(now / 1000), expire_time: Math.floor(expiry.at / 1000), env_version: jump.env_version ?? 'release' });
    return { errcode: 0, errmsg: 'ok', openlink: scheme };
  }

  queryScheme(body: Record<string, unknown>): ServiceResult {
    if (typeof body.scheme !== 'string') return { errcode: 40097 };
    const info = this.schemes.get(body.scheme);
    if (!info) return { errcode: 85403 };
    return { errcode: 0, errmsg: 'ok', scheme_info: info, visit_openid: '' };
  }

  generateUrlLink(appid: string, body: Record<string, unknown>, now: number): ServiceResult {
    const invalid = this.linkTarget(appid, body.path, body.query);
    if (invalid) return invalid;
    const expiry = expiryOf(body, now);
    if ('errcode' in expiry) return expiry;
    return { errcode: 0, errmsg: 'ok', url_link: `https://wxaurl.cn/${createHash('sha1').update(`${appid}/${String(body.path)}/${now}`).digest('base64url').slice(0, 12)}` };
  }

  shortLink(appid: string, body: Record<string, unknown>): ServiceResult {
    if (typeof body.page_url !== 'string' || !this.pageOk(appid, body.page_url, true)) return { errcode: 40165 };
    return { errcode: 0, errmsg: 'ok', link: `#小程序://sandbox/${createHash('sha1').update(`${appid}/${body.page_url}`).digest('base64url').slice(0, 8)}` };
  }

  private linkTarget(appid: string, path: unknown, query: unknown): { errcode: number } | null {
    if (path !== undefined && path !== '' && (typeof path !== 'string' || path.includes('?') || !this.pageOk(appid, path, false))) return { errcode: 40165 };
    if (query !== undefined && (typeof query !== 'string' || query.length > 1024 || !LINK_QUERY_PATTERN.test(query))) return { errcode: 40212 };
    return null;
  }
}

function expiryOf(body: Record<string, unknown>, now: number): { at: number } | { errcode: number } {
  const type = Number(body.expire_type ?? 0);
  if (type === 1) {
    const days = Number(body.expire_interval ?? 0);
    if (!Number.isInteger(days) || days < 1 || days > 30) return { errcode: 40097 };
    return { at: now + days * 86_400_000 };
  }
  if (body.expire_time === undefined) return { at: now + MAX_LINK_EXPIRY_MS };
  const at = Number(body.expire_time) * 1000;
  if (!Number.isFinite(at) || at <= now || at - now > MAX_LINK_EXPIRY_MS) return { errcode: 40097 };
  return { at };
}

/**
 * A real PNG (RGB, `width` × `width`) of deterministic noise: heavy (3 bytes a pixel, about 2 MB
 * at width 820), and every byte checkable after a passthrough.
 */
export function noisePng(width: number, seed: string): Buffer {
  let state = createHash('sha256').update(seed).digest().readUInt32BE(0) || 1;
  const row = width * 3 + 1;
  const raw = Buffer.alloc(row * width);
  for (let y = 0; y < width; y++) {
    raw[y * row] = 0; // filter: none
    for (let x = 1; x < row; x++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      raw[y * row + x] = state & 0xff;
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(width, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 1 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

let crcTable: Uint32Array | undefined;
function crc32(data: Buffer): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
