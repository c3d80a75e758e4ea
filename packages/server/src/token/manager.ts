/**
 * One access_token per app for the whole deployment (docs/reliability.md#access_token).
 *
 * - Callers get the cached token at once while it is valid; a refresh starts in the background
 *   when little of its life is left (the window in which WeChat's stable API hands out the next
 *   one), and callers never wait for it while the current token still works.
 * - A refresh is one per rotation deployment-wide: a single flight in this process, then the
 *   shared lease (Redis, else the database), then a second look at the shared record before
 *   calling WeChat, since another instance may have refreshed meanwhile.
 * - When WeChat rejects a token we believe valid (40001/42001/40014), `recover` refreshes once
 *   (single flight, skipping a shared record that holds the same rejected token) for the caller to
 *   retry once; nothing loops.
 * - Fetch failures back off and keep the cached token until it really expires.
 * - Force refresh (a leaked token) is an explicit action, limited as WeChat limits it.
 */
import { randomBytes } from 'node:crypto';
import type { AppConfig } from '../config/index.js';
import { AppError, NO_METRICS, isAppError, type Clock, type Logger, type Metrics } from '../core/index.js';
import type { Store } from '../store/index.js';
import type { WechatClient } from '../wechat/index.js';
import type { TokenRecord, TokenShare } from './shared.js';

/** WeChat's stable API hands out the next token in the last 5 minutes; we ask a little inside that. */
export const ROTATION_WINDOW_MS = 290_000;
/** After WeChat answered the same token (not rotating yet), the next ask waits this share of what is left. */
const QUIET_SHARE = 0.25;
/** A token this close to its end is no longer handed out. */
export const EXPIRY_MARGIN_MS = 30_000;
/** The refresh lease: long enough for one fetch (5 s timeout, two retries). */
export const REFRESH_LEASE_MS = 15_000;
/** How long a caller waits for another instance's refresh before trying the lease again. */
export const WAIT_FOR_OTHER_MS = 10_000;
export const FETCH_RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 60_000];
export const FORCE_REFRESH_PER_DAY = 20;
/** Counted over any 24 hours (whether WeChat's day is a calendar one or not, this stays inside it). */
const QUOTA_WINDOW_MS = 86_400_000;
/**
 * How often a cached token is compared with the shared record (in the background), so that a
 * token another instance replaced — a forced refresh after a leak — stops being handed out here.
 */
export const SHARED_RECHECK_MS = 5_000;
export const FORCE_REFRESH_MIN_INTERVAL_MS = 30_000;

/** errcodes that mean "this access_token is not (or no longer) valid". */
export const TOKEN_ERRCODES = new Set([40001, 42001, 40014]);

export interface AccessToken {
  accessToken: string;
  expiresAt: number;
}

export interface TokenManager {
  /** A valid token, from the cache when possible. */
  get(appid: string): Promise<AccessToken>;
  /** After WeChat rejected `rejected`: a refreshed token (once per rotation deployment-wide). */
  recover(appid: string, rejected: string): Promise<AccessToken>;
  /** The leak procedure: invalidate the current token now (20 a day, 30 s apart). */
  forceRefresh(appid: string): Promise<AccessToken>;
  /** What this instance knows of an app's token, for the admin console: never the token itself. */
  status(appid: string): TokenStatus;
}

export interface TokenStatus {
  appid: string;
  /** When the token in use was fetched and when it expires (epoch ms); null before the first. */
  fetchedAt: number | null;
  expiresAt: number | null;
  /** Refreshes this instance made (forced ones included) since it started. */
  refreshes: number;
  forcedRefreshes: number;
  /** The last refresh failure here, or null. */
  lastError: { at: number; code: string; message: string } | null;
}

interface AppState {
  record?: TokenRecord;
  flight?: Promise<TokenRecord>;
  failures: number;
  retryAt: number;
  /** When the shared record was last looked at. */
  checkedAt: number;
  checking?: boolean;
  refreshes: number;
  forced: number;
  lastError: TokenStatus['lastError'];
}

export interface TokenManagerDeps {
  apps: ReadonlyMap<string, AppConfig>;
  wechat: WechatClient;
  share: TokenShare;
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
}

function lifetime(record: TokenRecord): number {
  return Math.max(1, record.expiresAt - record.fetchedAt);
}

/**
 * When a refresh should start: in WeChat's rotation window (its last 5 minutes; ours starts 10 s
 * later, as expires_in is rounded down to seconds), scaled down for short-lived tokens, and not
 * before a quiet time set when WeChat last answered with the same token.
 */
function refreshAt(record: TokenRecord): number {
  return Math.max(record.expiresAt - Math.min(ROTATION_WINDOW_MS, lifetime(record) / 10), record.quietUntil ?? 0);
}

function usableUntil(record: TokenRecord): number {
  return record.expiresAt - Math.min(EXPIRY_MARGIN_MS, lifetime(record) / 20);
}

/** A failure as the console shows it: the registry code and message (WeChat's errcode is in it), never a secret. */
function failureOf(error: unknown, at: number): NonNullable<TokenStatus['lastError']> {
  const e = error as { code?: unknown; message?: unknown; details?: unknown };
  const details = e.details && typeof e.details === 'object' ? JSON.stringify(e.details).slice(0, 300) : '';
  return { at, code: typeof e.code === 'string' ? e.code : 'INTERNAL', message: `${typeof e.message === 'string' ? e.message : ''}${details ? ` ${details}` : ''}`.slice(0, 500) };
}

export function createTokenManager(deps: TokenManagerDeps): TokenManager {
  const { apps, wechat, share, clock, logger } = deps;
  const owner = randomBytes(8).toString('hex');
  // Its own lease owner: a forced refresh must not take over (and then free) a normal one's lease.
  const forceOwner = `${owner}-force`;
  const states = new Map<string, AppState>();
  const metrics = deps.metrics ?? NO_METRICS;
  const refreshes = metrics.counter('minigate_token_refreshes_total', 'access_token refreshes by app and outcome (ok, failed).', ['appid', 'outcome']);
  // This process's view of each token: a worker that never needed one shows nothing, so the group takes the max.
  metrics.gauge('minigate_token_expiry_seconds', 'Seconds until the access_token this process holds expires, per app.', ['appid'], {
    aggregate: 'max',
    collect: (gauge) => {
      for (const [appid, state] of states) if (state.record) gauge.set(Math.max(0, (state.record.expiresAt - clock.now()) / 1000), { appid });
    },
  });

  const stateOf = (appid: string): AppState => {
    let state = states.get(appid);
    if (!state) {
      state = { failures: 0, retryAt: 0, checkedAt: 0, refreshes: 0, forced: 0, lastError: null };
      states.set(appid, state);
    }
    return state;
  };

  const appOf = (appid: string): AppConfig => {
    const app = apps.get(appid);
    if (!app) throw new AppError('APP_UNKNOWN');
    return app;
  };

  const toToken = (record: TokenRecord): AccessToken => ({ accessToken: record.token, expiresAt: record.expiresAt });

  async function fetch(app: AppConfig, force: boolean): Promise<TokenRecord> {
    const fetchedAt = clock.now();
    const body =
      app.tokenMode === 'classic'
        ? await wechat.call<{ access_token?: unknown; expires_in?: unknown }>({
            path: '/cgi-bin/token',
            query: { grant_type: 'client_credential', appid: app.appid, secret: app.secret },
          })
        : await wechat.call<{ access_token?: unknown; expires_in?: unknown }>({
            path: '/cgi-bin/stable_token',
            method: 'POST',
            body: { grant_type: 'client_credential', appid: app.appid, secret: app.secret, force_refresh: force },
          });
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number' || body.expires_in <= 0) {
      throw new AppError('WECHAT_ERROR', { details: { path: 'token', reason: 'no access_token in the answer' } });
    }
    return { token: body.access_token, expiresAt: fetchedAt + body.expires_in * 1000, fetchedAt };
  }

    /** A record good enough to hand out without a refresh. */
  // Not type predicates: "not fresh" must not narrow a record away.
  const fresh = (record: TokenRecord | null | undefined, rejected?: string): boolean =>
    !!record && record.token !== rejected && clock.now() < refreshAt(record);
  const usable = (record: TokenRecord | null | undefined, rejected?: string): boolean =>
    !!record && record.token !== rejected && clock.now() < usableUntil(record);

  /** The shared refresh: single flight here, lease across instances, a second look under it. */
  function refresh(appid: string, rejected?: string): Promise<TokenRecord> {
    const state = stateOf(appid);
    if (state.flight) return state.flight;
    const flight = (async () => {
      const app = appOf(appid);
      const shared = await share.read(appid);
      if (fresh(shared, rejected)) return adopt(state, shared!);

      const deadline = clock.now() + WAIT_FOR_OTHER_MS;
      for (;;) {
        if (clock.now() < state.retryAt && usable(state.record, rejected)) return state.record!;
        if (await share.lock(appid, owner, REFRESH_LEASE_MS)) break;
        // Another instance is refreshing: wait for its token (or for its lease to lapse).
        await new Promise((r) => setTimeout(r, 100));
        const theirs = await share.read(appid);
        if (fresh(theirs, rejected)) return adopt(state, theirs!);
        if (clock.now() > deadline) {
          if (usable(theirs, rejected)) return adopt(state, theirs!);
          throw new AppError('WECHAT_UNAVAILABLE', { details: { appid, reason: 'waited for another instance to refresh the token' } });
        }
      }
      try {
        const again = await share.read(appid);
        if (fresh(again, rejected)) return adopt(state, again!);
        let record = await fetch(app, false);
        if (again && record.token === again.token && record.token !== rejected) {
          // Not rotating yet: say so to every instance, so nobody asks again at once.
          record = { ...record, quietUntil: clock.now() + (record.expiresAt - clock.now()) * QUIET_SHARE };
        }
        await share.write(appid, record, rejected);
        state.failures = 0;
        state.retryAt = 0;
        refreshes.inc({ appid, outcome: 'ok' });
        state.refreshes++;
        logger.info({ appid, expiresAt: record.expiresAt, lock: share.lockKind }, 'token: refreshed');
        return adopt(state, (await share.read(appid)) ?? record);
      } catch (error) {
        const delay = FETCH_RETRY_DELAYS_MS[Math.min(state.failures, FETCH_RETRY_DELAYS_MS.length - 1)]!;
        state.failures++;
        state.retryAt = clock.now() + delay;
        refreshes.inc({ appid, outcome: 'failed' });
        state.lastError = failureOf(error, clock.now());
        logger.error({ appid, code: (error as AppError).code, retryInMs: delay }, 'token: refresh failed; the cached token stays in use while it lasts');
        if (usable(state.record, rejected)) return state.record!;
        throw error;
      } finally {
        await share.unlock(appid, owner);
      }
    })().finally(() => {
      state.flight = undefined;
    });
    state.flight = flight;
    return flight;
  }

  function adopt(state: AppState, record: TokenRecord): TokenRecord {
    state.checkedAt = clock.now();
    if (!state.record || record.fetchedAt >= state.record.fetchedAt || state.record.token === record.token) state.record = record;
    return state.record;
  }

  /** Picks up a newer shared record behind the caller's back (never delays the caller). */
  function recheck(appid: string, state: AppState): void {
    if (state.checking || state.flight || clock.now() - state.checkedAt < SHARED_RECHECK_MS) return;
    state.checking = true;
    state.checkedAt = clock.now();
    share
      .read(appid)
      .then((record) => record && adopt(state, record))
      .catch(() => undefined)
      .finally(() => {
        state.checking = false;
      });
  }

  return {
    async get(appid) {
      appOf(appid);
      const state = stateOf(appid);
      const record = state.record;
      if (record) recheck(appid, state);
      if (record && fresh(record)) return toToken(record);
      if (record && usable(record)) {
        // Still good: hand it out and refresh behind the caller's back.
        if (clock.now() >= state.retryAt) refresh(appid).catch(() => undefined);
        return toToken(record);
      }
      return toToken(await refresh(appid));
    },

    async recover(appid, rejected) {
      appOf(appid);
      const state = stateOf(appid);
      if (state.record && state.record.token !== rejected && usable(state.record)) return toToken(state.record);
      logger.warn({ appid }, 'token: WeChat rejected a token we believed valid; refreshing once');
      // A rejected token may still look fresh to everyone: only a different one will do.
      if (state.record?.token === rejected) state.record = undefined;
      return toToken(await refresh(appid, rejected));
    },

    async forceRefresh(appid) {
      const app = appOf(appid);
      const state = stateOf(appid);
      if (!(await share.lock(appid, forceOwner, REFRESH_LEASE_MS))) {
        throw new AppError('TOKEN_REFRESH_LIMITED', { message: 'Another refresh is in progress; try again in a few seconds.' });
      }
      try {
        const key = `token-force:${appid}`;
        const now = clock.now();
        const raw = await deps.store.kvGet(key);
        const saved = raw ? (JSON.parse(raw) as { calls?: unknown }).calls : undefined;
        const calls = (Array.isArray(saved) ? saved : []).filter((t): t is number => typeof t === 'number' && now - t < QUOTA_WINDOW_MS);
        if (calls.length >= FORCE_REFRESH_PER_DAY) {
          throw new AppError('TOKEN_REFRESH_LIMITED', { message: `At most ${FORCE_REFRESH_PER_DAY} forced refreshes a day (WeChat's limit).` });
        }
        if (calls.length && now - Math.max(...calls) < FORCE_REFRESH_MIN_INTERVAL_MS) {
          throw new AppError('TOKEN_REFRESH_LIMITED', { message: 'Forced refreshes must be 30 s apart (WeChat does not refresh sooner).' });
        }
        const record = await fetch(app, true);
        await deps.store.kvSet(key, JSON.stringify({ calls: [...calls, now] }), now);
        // A forced token replaces the old one even if the old one would expire later.
        await share.replace(appid, record);
        state.record = record;
        state.refreshes++;
        state.forced++;
        logger.warn(
          { appid },
          app.tokenMode === 'classic'
            ? 'token: forced refresh done; the previous token stops working within 5 minutes (classic mode)'
            : 'token: forced refresh done; the previous token no longer works',
        );
        return toToken(record);
      } catch (error) {
        if (!isAppError(error, 'TOKEN_REFRESH_LIMITED')) state.lastError = failureOf(error, clock.now());
        throw error;
      } finally {
        await share.unlock(appid, forceOwner);
      }
    },

    status(appid) {
      const state = stateOf(appid);
      return {
        appid,
        fetchedAt: state.record?.fetchedAt ?? null,
        expiresAt: state.record?.expiresAt ?? null,
        refreshes: state.refreshes,
        forcedRefreshes: state.forced,
        lastError: state.lastError,
      };
    },
  };
}
