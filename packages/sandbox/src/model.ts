/**
 * The sandbox's world: apps, users, login and phone codes, access tokens, injected faults and
 * call counts, all in memory, on a clock tests can move. Behaviour follows docs/wechat-api.md
 * (§1 codes, §2.4 token state machine, §3 session keys, §4 phone codes); where WeChat's
 * behaviour is not documented the choice is marked INFERRED as in that file.
 */
import { randomBytes } from 'node:crypto';
import { SandboxServices } from './services.js';

export const CODE_TTL_MS = 5 * 60_000;
export const TOKEN_TTL_MS = 7200_000;
/** Old and new tokens overlap this long after a rotation. */
export const TOKEN_GRACE_MS = 5 * 60_000;
/** Stable normal mode hands out a new token once fewer than this remain. */
export const STABLE_EARLY_ROTATION_MS = 5 * 60_000;
export const FORCE_REFRESH_PER_DAY = 20;
export const FORCE_REFRESH_MIN_INTERVAL_MS = 30_000;
/** jscode2session: 100 calls per user per minute (45011 beyond). */
export const LOGIN_RATE_PER_MINUTE = 100;
export const CLASSIC_DAILY_QUOTA_DEFAULT = 2000;
const DAY_MS = 86_400_000;

export interface SandboxClock {
  now(): number;
  advance(ms: number): void;
}

/** A clock that follows real time plus an offset moved by `advance`. */
export function createSandboxClock(base: () => number = Date.now): SandboxClock {
  let offset = 0;
  return {
    now: () => base() + offset,
    advance(ms) {
      offset += ms;
    },
  };
}

export type RandomBytes = (length: number) => Buffer;

export interface SandboxApp {
  appid: string;
  secret: string;
  /** Bound to an Open Platform account: code2Session returns a unionid. */
  unionBound: boolean;
  /** Lifetime of this app's access tokens (7200 s as WeChat; shorter for tests of rotation). */
  tokenTtlMs: number;
}

export interface SandboxUser {
  appid: string;
  openid: string;
  unionid?: string;
  sessionKey: string;
  blocked: boolean;
  /** Sandbox times of recent jscode2session calls, for the per-minute limit. */
  recentLogins: number[];
}

interface LoginCode {
  appid: string;
  openid: string;
  issuedAt: number;
  used: boolean;
}

interface PhoneCode extends LoginCode {
  phoneNumber: string;
  countryCode: string;
}

export type TokenFamily = 'classic' | 'stable';

interface TokenRecord {
  token: string;
  appid: string;
  family: TokenFamily;
  expiresAt: number;
  /** After this instant the token is superseded (40001); null while it is current. */
  validUntil: number | null;
}

interface FamilyState {
  current?: TokenRecord;
  /** The token current before the last rotation (the one slot of §2.4); older ones are dead. */
  previous?: TokenRecord;
  forceCalls: number[];
  dailyCalls: { day: number; count: number };
}

export interface Fault {
  id: number;
  path: string;
  appid?: string;
  errcode?: number;
  errmsg?: string;
  httpStatus?: number;
  delayMs?: number;
  drop?: boolean;
  times: number;
}

export type TokenCheck = { ok: true; appid: string } | { ok: false; errcode: 41001 | 40001 | 42001 };

export interface Stats {
  total: number;
  paths: Record<string, number>;
  apps: Record<string, Record<string, number>>;
}

export class SandboxModel {
  readonly clock: SandboxClock;
  readonly services = new SandboxServices();
  readonly random: RandomBytes;
  classicDailyQuota: number;
  private readonly apps = new Map<string, SandboxApp>();
  private readonly users = new Map<string, SandboxUser>();
  private readonly codes = new Map<string, LoginCode>();
  private readonly phoneCodes = new Map<string, PhoneCode>();
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly families = new Map<string, FamilyState>();
  private faults: Fault[] = [];
  private nextFaultId = 1;
  private stats: Stats = { total: 0, paths: {}, apps: {} };

  constructor(options: { clock?: SandboxClock; random?: RandomBytes; classicDailyQuota?: number } = {}) {
    this.clock = options.clock ?? createSandboxClock();
    this.random = options.random ?? randomBytes;
    this.classicDailyQuota = options.classicDailyQuota ?? CLASSIC_DAILY_QUOTA_DEFAULT;
  }

  now(): number {
    return this.clock.now();
  }

  // ---- apps and users ------------------------------------------------------------------------

  registerApp(app: { appid: string; secret: string; unionBound?: boolean; tokenTtlSeconds?: number }): SandboxApp {
    const record = {
      appid: app.appid,
      secret: app.secret,
      unionBound: app.unionBound ?? false,
      tokenTtlMs: (app.tokenTtlSeconds ?? TOKEN_TTL_MS / 1000) * 1000,
    };
    this.apps.set(app.appid, record);
    return record;
  }

  app(appid: string): SandboxApp | undefined {
    return this.apps.get(appid);
  }

  user(appid: string, openid: string): SandboxUser | undefined {
    return this.users.get(`${appid}/${openid}`);
  }

  /** Every user the sandbox has made, optionally of one app. */
  listUsers(appid?: string): SandboxUser[] {
    return [...this.users.values()].filter((u) => appid === undefined || u.appid === appid);
  }

  /** What wx.login gives: a fresh single-use code for the user (made when no openid is given). */
  issueLoginCode(input: {
    appid: string;
    openid?: string;
    unionid?: string;
    sessionKey?: string;
    rotateSessionKey?: boolean;
    blocked?: boolean;
  }): { code: string; openid: string; unionid?: string } {
    const app = this.apps.get(input.appid);
    if (!app) throw new SandboxInputError('APP_UNKNOWN', `no app ${input.appid}; register it with POST /__sandbox/apps`);
    const openid = input.openid ?? this.makeId('o', 28);
    let user = this.user(app.appid, openid);
    if (!user) {
      user = {
        appid: app.appid,
        openid,
        sessionKey: this.makeSessionKey(),
        blocked: false,
        recentLogins: [],
      };
      if (app.unionBound) user.unionid = this.makeId('o', 28);
      this.users.set(`${app.appid}/${openid}`, user);
    }
    if (input.unionid !== undefined) user.unionid = input.unionid;
    if (input.sessionKey !== undefined) {
      // Exactly what WeChat hands out: standard base64 of 16 bytes.
      if (!/^[A-Za-z0-9+/]{21}[AQgw]==$/.test(input.sessionKey)) {
        throw new SandboxInputError('BAD_REQUEST', 'sessionKey must be base64 of 16 bytes');
      }
      user.sessionKey = input.sessionKey;
    } else if (input.rotateSessionKey) {
      user.sessionKey = this.makeSessionKey();
    }
    if (input.blocked !== undefined) user.blocked = input.blocked;
    const code = this.makeId('', 32);
    this.codes.set(code, { appid: app.appid, openid, issuedAt: this.now(), used: false });
    return { code, openid, ...(user.unionid ? { unionid: user.unionid } : {}) };
  }

  issuePhoneCode(input: { appid: string; openid: string; phoneNumber: string; countryCode?: string }): { code: string } {
    if (!this.apps.has(input.appid)) throw new SandboxInputError('APP_UNKNOWN', `no app ${input.appid}`);
    if (!this.user(input.appid, input.openid)) {
      throw new SandboxInputError('USER_UNKNOWN', `no user ${input.openid} in ${input.appid}; log in first`);
    }
    if (!/^\+?\d{5,20}$/.test(input.phoneNumber)) {
      throw new SandboxInputError('BAD_REQUEST', 'phoneNumber must be digits, optionally with a leading +');
    }
    const code = this.makeId('', 64);
    this.phoneCodes.set(code, {
      appid: input.appid,
      openid: input.openid,
      phoneNumber: input.phoneNumber,
      countryCode: input.countryCode ?? '86',
      issuedAt: this.now(),
      used: false,
    });
    return { code };
  }

  /** jscode2session's decision, in the order of docs/wechat-api.md §1. */
  exchangeLoginCode(appid: string, secret: string, code: string): { errcode: number } | { user: SandboxUser } {
    const app = this.apps.get(appid);
    if (!app) return { errcode: 40013 };
    if (app.secret !== secret) return { errcode: 40125 };
    const entry = this.codes.get(code);
    if (!entry) return { errcode: 40029 };
    if (entry.used) return { errcode: 40163 };
    if (this.now() - entry.issuedAt > CODE_TTL_MS) return { errcode: 40029 };
    if (entry.appid !== appid) return { errcode: 40029 };
    const user = this.user(entry.appid, entry.openid)!;
    if (user.blocked) return { errcode: 40226 };
    const now = this.now();
    user.recentLogins = user.recentLogins.filter((t) => now - t < 60_000);
    if (user.recentLogins.length >= LOGIN_RATE_PER_MINUTE) return { errcode: 45011 };
    user.recentLogins.push(now);
    entry.used = true;
    return { user };
  }

  exchangePhoneCode(
    appid: string,
    code: string,
    openid: string | undefined,
  ): { errcode: number } | { phoneNumber: string; countryCode: string } {
    const entry = this.phoneCodes.get(code);
    // INFERRED: reuse gives 40029 like an unknown code (docs/wechat-api.md §12).
    if (!entry || entry.used || entry.appid !== appid) return { errcode: 40029 };
    if (this.now() - entry.issuedAt > CODE_TTL_MS) return { errcode: 40029 };
    if (openid !== undefined && openid !== entry.openid) return { errcode: 40003 };
    entry.used = true;
    return { phoneNumber: entry.phoneNumber, countryCode: entry.countryCode };
  }

  resetSessionKey(user: SandboxUser): string {
    user.sessionKey = this.makeSessionKey();
    return user.sessionKey;
  }

  // ---- access tokens (docs/wechat-api.md §2.4) ------------------------------------------------

  private family(appid: string, family: TokenFamily): FamilyState {
    const key = `${appid}/${family}`;
    let state = this.families.get(key);
    if (!state) {
      state = { forceCalls: [], dailyCalls: { day: -1, count: 0 } };
      this.families.set(key, state);
    }
    return state;
  }

  /**
   * Makes a new current token. The old current becomes `previous`, valid until `graceUntil`
   * (capped at its own expiry); the token that was previous before is ended now.
   */
  private rotate(appid: string, family: TokenFamily, state: FamilyState, graceUntil: number): TokenRecord {
    const now = this.now();
    if (state.previous && (state.previous.validUntil === null || state.previous.validUntil > now)) {
      state.previous.validUntil = now;
    }
    if (state.current) {
      state.current.validUntil = Math.min(state.current.expiresAt, graceUntil);
      state.previous = state.current;
    }
    return this.newToken(appid, family, state);
  }

  private tokenTtl(appid: string): number {
    return this.apps.get(appid)?.tokenTtlMs ?? TOKEN_TTL_MS;
  }

  private newToken(appid: string, family: TokenFamily, state: FamilyState): TokenRecord {
    const record: TokenRecord = {
      token: this.makeId('', 136),
      appid,
      family,
      expiresAt: this.now() + this.tokenTtl(appid),
      validUntil: null,
    };
    this.tokens.set(record.token, record);
    state.current = record;
    return record;
  }

  /** `GET /cgi-bin/token`: every call rotates; the previous token stays valid for 5 minutes. */
  classicToken(appid: string): { errcode: number } | { token: string; expiresIn: number } {
    const state = this.family(appid, 'classic');
    const day = Math.floor(this.now() / DAY_MS);
    if (state.dailyCalls.day !== day) state.dailyCalls = { day, count: 0 };
    if (state.dailyCalls.count >= this.classicDailyQuota) return { errcode: 45009 };
    state.dailyCalls.count++;
    const record = this.rotate(appid, 'classic', state, this.now() + TOKEN_GRACE_MS);
    return { token: record.token, expiresIn: this.tokenTtl(appid) / 1000 };
  }

  /** `POST /cgi-bin/stable_token`, normal or force mode. */
  stableToken(appid: string, force: boolean): { token: string; expiresIn: number } {
    const state = this.family(appid, 'stable');
    const now = this.now();
    const current = state.current;
    const remaining = (record: TokenRecord) => ({
      token: record.token,
      expiresIn: Math.floor((record.expiresAt - now) / 1000),
    });
    if (force) {
      state.forceCalls = state.forceCalls.filter((t) => now - t < DAY_MS);
      const last = state.forceCalls[state.forceCalls.length - 1];
      const tooSoon = last !== undefined && now - last < FORCE_REFRESH_MIN_INTERVAL_MS;
      // INFERRED: a refused force refresh returns the current token unchanged.
      if (current && current.expiresAt > now && (tooSoon || state.forceCalls.length >= FORCE_REFRESH_PER_DAY)) {
        return remaining(current);
      }
      state.forceCalls.push(now);
      // INFERRED: force invalidates the previous token at once (no overlap).
      return remaining(this.rotate(appid, 'stable', state, now));
    }
    // WeChat rotates in the last 5 minutes; a short test lifetime gets a proportionate window.
    const early = Math.min(STABLE_EARLY_ROTATION_MS, this.tokenTtl(appid) / 6);
    if (current && now < current.expiresAt - early) return remaining(current);
    return remaining(this.rotate(appid, 'stable', state, current?.expiresAt ?? now));
  }

  /** How another API judges an access_token (41001 / 40001 / 42001). */
  checkToken(token: string | null): TokenCheck {
    if (!token) return { ok: false, errcode: 41001 };
    const record = this.tokens.get(token);
    if (!record) return { ok: false, errcode: 40001 };
    const now = this.now();
    if (record.validUntil !== null && now >= record.validUntil && now < record.expiresAt) {
      return { ok: false, errcode: 40001 };
    }
    if (now >= record.expiresAt) return { ok: false, errcode: 42001 };
    return { ok: true, appid: record.appid };
  }

  // ---- faults and stats -----------------------------------------------------------------------

  addFault(input: Omit<Fault, 'id'>): Fault {
    const fault = { ...input, id: this.nextFaultId++ };
    this.faults.push(fault);
    return fault;
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** The next fault for this call, consumed; undefined when none applies. */
  takeFault(path: string, appid: string | undefined): Fault | undefined {
    const fault = this.faults.find(
      (f) => f.times > 0 && f.path === path && (f.appid === undefined || f.appid === appid),
    );
    if (!fault) return undefined;
    fault.times--;
    if (fault.times <= 0) this.faults = this.faults.filter((f) => f !== fault);
    return fault;
  }

  count(path: string, appid: string | undefined): void {
    this.stats.total++;
    this.stats.paths[path] = (this.stats.paths[path] ?? 0) + 1;
    if (appid) {
      const app = (this.stats.apps[appid] ??= {});
      app[path] = (app[path] ?? 0) + 1;
    }
  }

  snapshotStats(): Stats {
    return structuredClone(this.stats);
  }

  resetStats(): void {
    this.stats = { total: 0, paths: {}, apps: {} };
  }

  // ---- ids -------------------------------------------------------------------------------------

  private makeSessionKey(): string {
    return this.random(16).toString('base64');
  }

  /** `prefix` plus letters, digits, `-` and `_`, `length` characters in all. */
  makeId(prefix: string, length: number): string {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const bytes = this.random(length);
    let id = prefix;
    for (let i = 0; id.length < length; i++) id += alphabet[bytes[i]! & 63];
    return id;
  }
}

/** A bad request to the control API (`/__sandbox/*`). */
export class SandboxInputError extends Error {
  constructor(
    readonly code: 'BAD_REQUEST' | 'APP_UNKNOWN' | 'USER_UNKNOWN' | 'NOT_FOUND',
    message: string,
  ) {
    super(message);
    this.name = 'SandboxInputError';
  }
}
