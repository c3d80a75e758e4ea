import { randomBytes } from 'node:crypto';

/** Randomness, injected so tests can make it deterministic. Must be a CSPRNG in production. */
export interface Random {
  bytes(length: number): Buffer;
}

export const cryptoRandom: Random = { bytes: (length) => randomBytes(length) };

const ID_BYTES = 8;
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let offset = POOL_BYTES;

/**
 * A short random id for requests and log correlation (64 bits, hex). Ids are not secrets, so
 * they come from a pooled buffer refilled 4 KiB at a time instead of a syscall per request.
 */
export function requestId(): string {
  if (offset + ID_BYTES > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  const id = pool.toString('hex', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}
