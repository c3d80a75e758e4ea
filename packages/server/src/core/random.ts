import { randomBytes } from 'node:crypto';

/** Randomness, injected so tests can make it deterministic. Must be a CSPRNG in production. */
export interface Random {
  bytes(length: number): Buffer;
}

export const cryptoRandom: Random = { bytes: (length) => randomBytes(length) };

/** A short random id for requests and log correlation (64 bits, hex). */
export function requestId(random: Random = cryptoRandom): string {
  return random.bytes(8).toString('hex');
}
