/**
 * Relay names and their tokens (migration 0011). A token is 256 random bits shown once by
 * `minigate relay add`; only its SHA-256 is stored, and a check compares hashes in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { storeOp, type Store } from '../store/index.js';

/** Prefix of relay tokens, so one pasted in the wrong place is recognisable (and greppable in a leak). */
const TOKEN_PREFIX = 'mgr_';

export interface RelayName {
  name: string;
  createdAt: number;
  lastSeenAt: number | null;
}

export function newRelayToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function relayTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function createRelayRecords(store: Store) {
  const db = store.db;
  const n = (v: unknown) => (v === null ? null : Number(v));
  return {
    /** Registers a name with a new token (returned, to be shown once); false when the name exists. */
    add: (name: string, now: number) =>
      storeOp('relayAdd', async () => {
        const existing = await db.selectFrom('relay_names').select('name').where('name', '=', name).executeTakeFirst();
        if (existing) return null;
        const token = newRelayToken();
        await db.insertInto('relay_names').values({ name, token_hash: relayTokenHash(token), created_at: now, last_seen_at: null }).execute();
        return token;
      }),
    list: () =>
      storeOp('relayList', async () =>
        (await db.selectFrom('relay_names').select(['name', 'created_at', 'last_seen_at']).orderBy('name').execute()).map(
          (r): RelayName => ({ name: r.name, createdAt: Number(r.created_at), lastSeenAt: n(r.last_seen_at) }),
        ),
      ),
    revoke: (name: string) =>
      storeOp('relayRevoke', async () => Number((await db.deleteFrom('relay_names').where('name', '=', name).executeTakeFirst()).numDeletedRows) > 0),
    /** True when `token` is the one of `name` (a token serves only its own name). */
    verify: (name: string, token: string) =>
      storeOp('relayVerify', async () => {
        const row = await db.selectFrom('relay_names').select('token_hash').where('name', '=', name).executeTakeFirst();
        const given = Buffer.from(relayTokenHash(token), 'hex');
        // Compared even without a row, so an unknown name takes as long as a wrong token.
        const expected = Buffer.from(row ? row.token_hash.trim() : '0'.repeat(64), 'hex');
        return timingSafeEqual(given, expected) && row !== undefined;
      }),
    touch: (name: string, now: number) =>
      storeOp('relayTouch', async () => {
        await db.updateTable('relay_names').set({ last_seen_at: now }).where('name', '=', name).execute();
      }),
  };
}

export type RelayRecords = ReturnType<typeof createRelayRecords>;
