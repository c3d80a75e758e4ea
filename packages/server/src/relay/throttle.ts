/**
 * relay.maxBytesPerSecond: one token bucket per relay name, shared by all its streams and both
 * directions, so one developer's link cannot take the whole server's bandwidth. A stream whose
 * chunk overdraws the bucket waits until the bucket has refilled; back-pressure does the rest
 * (the waiting stream stops reading, HTTP/2 flow control stops the sender).
 */
import { Transform } from 'node:stream';

/** Bytes a bucket may hold: one second's worth, so a burst after a quiet spell is bounded too. */
const BURST_SECONDS = 1;

export interface Bucket {
  /** A pass-through stream that spends from this bucket. */
  through(): Transform;
}

export function createBucket(bytesPerSecond: number, now: () => number = () => performance.now()): Bucket {
  let tokens = bytesPerSecond * BURST_SECONDS;
  let last = now();
  /** Milliseconds to wait before `n` bytes may pass (spent now, the debt paid by waiting). */
  const spend = (n: number): number => {
    const at = now();
    tokens = Math.min(bytesPerSecond * BURST_SECONDS, tokens + ((at - last) / 1000) * bytesPerSecond);
    last = at;
    tokens -= n;
    return tokens >= 0 ? 0 : (-tokens / bytesPerSecond) * 1000;
  };
  return {
    through: () =>
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          const wait = spend(chunk.length);
          if (wait <= 0) return done(null, chunk);
          setTimeout(() => done(null, chunk), wait);
        },
      }),
  };
}
