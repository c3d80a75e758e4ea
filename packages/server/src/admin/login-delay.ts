/**
 * Slowing down password guessing without locking anyone out: after failures from one address
 * for one account, that pair's next attempt waits 0.5 s, then 1 s, 2 s, … at most 10 s. Only
 * that (account, address) pair slows, so an attacker elsewhere cannot keep the real admin out;
 * attempts of a pair run one at a time, so parallel guesses queue behind the delay.
 */
export const LOGIN_DELAY_BASE_MS = 500;
export const LOGIN_DELAY_MAX_MS = 10_000;
/** A pair with no failure for this long is forgotten. */
export const LOGIN_DELAY_FORGET_MS = 15 * 60_000;
/** Pairs remembered at most (the oldest go first): memory stays bounded under a spray of names. */
export const LOGIN_DELAY_MAX_PAIRS = 10_000;

export const loginDelayMs = (failures: number): number => (failures <= 0 ? 0 : Math.min(LOGIN_DELAY_BASE_MS * 2 ** (failures - 1), LOGIN_DELAY_MAX_MS));

interface Pair {
  failures: number;
  lastFailureAt: number;
  queue: Promise<unknown>;
}

export interface LoginDelay {
  /** Runs `attempt` for the pair after the pair's delay; `attempt` returns true on success. */
  run(account: string, address: string, attempt: () => Promise<boolean>): Promise<boolean>;
}

export function createLoginDelay(now: () => number = () => performance.now(), sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): LoginDelay {
  const pairs = new Map<string, Pair>();
  return {
    run(account, address, attempt) {
      const key = `${account.toLowerCase()}\n${address}`;
      let pair = pairs.get(key);
      if (pair && now() - pair.lastFailureAt > LOGIN_DELAY_FORGET_MS && pair.failures > 0) pair.failures = 0;
      if (!pair) {
        pair = { failures: 0, lastFailureAt: 0, queue: Promise.resolve() };
        pairs.set(key, pair);
        if (pairs.size > LOGIN_DELAY_MAX_PAIRS) pairs.delete(pairs.keys().next().value!);
      }
      const p = pair;
      const result = p.queue.then(async () => {
        const wait = loginDelayMs(p.failures);
        if (wait) await sleep(wait);
        const ok = await attempt();
        if (ok) {
          pairs.delete(key);
        } else {
          p.failures++;
          p.lastFailureAt = now();
          // Most recently failing pairs stay longest.
          pairs.delete(key);
          pairs.set(key, p);
        }
        return ok;
      });
      p.queue = result.catch(() => undefined);
      return result;
    },
  };
}
