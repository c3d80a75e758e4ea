import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createManualClock, type ManualClock } from '../core/clock.js';
import { silentLogger } from '../core/logger.js';
import { cryptoRandom } from '../core/random.js';
import type { AppConfig } from '../config/index.js';
import { createStore, type Store } from '../store/index.js';
import { createSecretBox } from './secret-box.js';
import { createSessionService, LAST_SEEN_WRITE_INTERVAL_MS, SESSION_CACHE_TTL_MS, type SessionService } from './sessions.js';
import { hashToken } from './tokens.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
const app: AppConfig = {
  appid: 'wx0123456789abcdef',
  secret: 'unused',
  session: { idle: 7 * DAY, absolute: 30 * DAY, maxPerUser: 3 },
  tokenMode: 'stable',
};
const SESSION_KEY = 'tiihtNczf5v6AKRyjwEUhQ==';

describe('sessions', () => {
  let dir: string;
  let store: Store;
  let clock: ManualClock;
  let sessions: SessionService;
  const calls = { find: 0, touch: 0 };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'mg-sessions-'));
    const real = await createStore({ url: `sqlite:${path.join(dir, 'db')}`, logger: silentLogger() });
    await real.migrate();
    // Counts the round trips the session service makes.
    store = Object.create(real) as Store;
    store.findSession = (hash) => (calls.find++, real.findSession(hash));
    store.touchSession = (s, now) => (calls.touch++, real.touchSession(s, now));
    clock = createManualClock();
    sessions = createSessionService({
      store,
      apps: new Map([[app.appid, app]]),
      box: createSecretBox(Buffer.alloc(32, 7), 'session_key'),
      clock,
      random: cryptoRandom,
      logger: silentLogger(),
    });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const newSession = (openid = `o-${Math.random()}`) =>
    sessions.create({ app, openid, unionid: null, sessionKey: SESSION_KEY, profile: null });

  /** Lets the in-process cache lapse (it runs on real time, not the injected clock). */
  const lapse = () => new Promise((r) => setTimeout(r, SESSION_CACHE_TTL_MS + 50));

  it('issues 256-bit base64url tokens and stores only their SHA-256', async () => {
    const { token, session } = await newSession();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(session.tokenHash).toBe(hashToken(token));
    const rows = await store.db.selectFrom('sessions').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it('keeps session_key encrypted at rest and opens it server-side', async () => {
    const { session } = await newSession();
    const row = await store.db.selectFrom('sessions').select('session_key').where('token_hash', '=', session.tokenHash).executeTakeFirstOrThrow();
    expect(row.session_key).toMatch(/^v1\./);
    expect(row.session_key).not.toContain(SESSION_KEY);
    expect(await sessions.sessionKey(session)).toBe(SESSION_KEY);
  });

  it('answers "missing" and "invalid" without touching the database', async () => {
    const before = calls.find;
    expect(await sessions.check(undefined)).toEqual({ ok: false, reason: 'SESSION_MISSING' });
    expect(await sessions.check('')).toEqual({ ok: false, reason: 'SESSION_INVALID' });
    expect(await sessions.check('x'.repeat(10_000))).toEqual({ ok: false, reason: 'SESSION_INVALID' });
    expect(await sessions.check("' OR 1=1 --")).toEqual({ ok: false, reason: 'SESSION_INVALID' });
    expect(calls.find).toBe(before);
    expect(await sessions.check('A'.repeat(43))).toEqual({ ok: false, reason: 'SESSION_INVALID' });
  });

  it('serves repeated checks from the cache: one database read per second, not per request', async () => {
    const { token } = await newSession();
    await lapse();
    const before = calls.find;
    const results = await Promise.all(Array.from({ length: 200 }, () => sessions.check(token)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(calls.find - before).toBe(1);
  });

  it('answers at once (no promise) only what it holds: no token, a bad one, a session read within the second', async () => {
    expect(sessions.checkNow(undefined)).toEqual({ ok: false, reason: 'SESSION_MISSING' });
    expect(sessions.checkNow('not a token')).toEqual({ ok: false, reason: 'SESSION_INVALID' });
    const { token, session } = await newSession();
    await lapse();
    const before = calls.find;
    const first = sessions.checkNow(token);
    expect(first).toBeInstanceOf(Promise); // lapsed: the store is asked
    expect((await first).ok).toBe(true);
    const cached = sessions.checkNow(token);
    expect(cached).not.toBeInstanceOf(Promise);
    expect(cached).toMatchObject({ ok: true, session: { tokenHash: session.tokenHash, openid: session.openid } });
    expect(calls.find - before).toBe(1);
    // The same verdicts as check(): a revocation through this instance shows at once, and the
    // clock past the idle end expires the cached session without a read.
    await sessions.revoke(token);
    const revoked = sessions.checkNow(token);
    expect(await revoked).toEqual({ ok: false, reason: 'SESSION_REVOKED' });
    // A new session is answered at once: a client's first request follows its login.
    const other = await newSession();
    const reads = calls.find;
    expect(sessions.checkNow(other.token)).toMatchObject({ ok: true });
    expect(calls.find).toBe(reads);
    clock.advance(7 * DAY + 1);
    expect(sessions.checkNow(other.token)).toEqual({ ok: false, reason: 'SESSION_EXPIRED' });
    // The user beside it: from the cache at once after a read.
    const user = await sessions.userOf(other.session);
    expect(sessions.userNow(other.session)).toEqual(user);
  });

  it('expires after the idle time without use, and use keeps it alive', async () => {
    const { token } = await newSession();
    clock.advance(6 * DAY);
    expect((await sessions.check(token)).ok).toBe(true); // used: idle restarts
    clock.advance(6 * DAY);
    await lapse();
    expect((await sessions.check(token)).ok).toBe(true);
    clock.advance(7 * DAY);
    await lapse();
    expect(await sessions.check(token)).toEqual({ ok: false, reason: 'SESSION_EXPIRED' });
  });

  it('expires at the absolute lifetime however much it is used', async () => {
    const { token, session } = await newSession();
    for (let day = 0; day < 29; day++) {
      clock.advance(DAY);
      const check = await sessions.check(token);
      expect(check.ok).toBe(true);
      if (check.ok) expect(check.session.expiresAt).toBeLessThanOrEqual(session.createdAt + 30 * DAY);
    }
    clock.advance(DAY);
    expect(await sessions.check(token)).toEqual({ ok: false, reason: 'SESSION_EXPIRED' });
  });

  it('writes last-seen at most once a minute per session', async () => {
    const { token } = await newSession();
    await lapse();
    const before = calls.touch;
    for (let i = 0; i < 30; i++) {
      clock.advance(10_000); // 5 minutes in 10-second steps
      await sessions.check(token);
    }
    await sessions.flush();
    const writes = calls.touch - before;
    expect(writes).toBeGreaterThanOrEqual(4);
    expect(writes).toBeLessThanOrEqual(Math.ceil((30 * 10_000) / LAST_SEEN_WRITE_INTERVAL_MS));
  });

  it('stops a revoked token at once on this instance', async () => {
    const { token } = await newSession();
    expect((await sessions.check(token)).ok).toBe(true);
    expect(await sessions.revoke(token)).toBe(true);
    expect(await sessions.check(token)).toEqual({ ok: false, reason: 'SESSION_REVOKED' });
    expect(await sessions.revoke(token)).toBe(false);
  });

  it('stops a token revoked by another instance within a second', async () => {
    const { token, session } = await newSession();
    expect((await sessions.check(token)).ok).toBe(true);
    await store.revokeSession(session.tokenHash, clock.now(), 'elsewhere');
    const started = performance.now();
    while ((await sessions.check(token)).ok) await new Promise((r) => setTimeout(r, 50));
    expect(performance.now() - started).toBeLessThanOrEqual(SESSION_CACHE_TTL_MS + 200);
    expect(await sessions.check(token)).toEqual({ ok: false, reason: 'SESSION_REVOKED' });
  });

  it('keeps at most maxPerUser sessions: a new login ends the oldest at once', async () => {
    const tokens = [];
    for (let i = 0; i < 3; i++) {
      tokens.push((await newSession('o-many')).token);
      clock.advance(1000);
    }
    for (const t of tokens) expect((await sessions.check(t)).ok).toBe(true);
    const fourth = await newSession('o-many');
    expect(await sessions.check(tokens[0])).toEqual({ ok: false, reason: 'SESSION_REVOKED' });
    for (const t of [...tokens.slice(1), fourth.token]) expect((await sessions.check(t)).ok).toBe(true);
  });

  it('revokes every session of a user', async () => {
    const a = await newSession('o-all');
    const b = await newSession('o-all');
    expect(await sessions.revokeUser(app.appid, 'o-all')).toBe(2);
    expect(await sessions.check(a.token)).toEqual({ ok: false, reason: 'SESSION_REVOKED' });
    expect(await sessions.check(b.token)).toEqual({ ok: false, reason: 'SESSION_REVOKED' });
  });

  it('makes no two tokens alike (10 000 draws)', async () => {
    const { newToken } = await import('./tokens.js');
    const seen = new Set(Array.from({ length: 10_000 }, () => newToken(cryptoRandom)));
    expect(seen.size).toBe(10_000);
  });
});
