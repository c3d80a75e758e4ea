/**
 * The channel webhook (`channel.webhook`): events to a business service (connect, message,
 * close; best effort, one attempt each) and the question a `join: ask` room puts to it.
 * Bodies are JSON, signed like push deliveries (X-Minigate-Signature under upstreamSecret).
 */
import type { ChannelConfig } from '../config/index.js';
import { AppError, signedHeaders, type Clock, type Logger } from '../core/index.js';

/** Events waiting to be sent; past this they are dropped (and counted in the log). */
const QUEUE_MAX = 10_000;
const IN_FLIGHT_MAX = 32;

export type ChannelEventName = 'connect' | 'message' | 'close';

export interface ChannelWebhook {
  /** Sends an event if the webhook wants it (never waits, never throws). */
  event(name: ChannelEventName, body: Record<string, unknown>): void;
  /** Asks about a join: true for 2xx, false for 403 (or another 4xx); CHANNEL_UNAVAILABLE otherwise. */
  ask(body: Record<string, unknown>): Promise<boolean>;
  close(): Promise<void>;
}

export function createChannelWebhook(settings: NonNullable<ChannelConfig['webhook']>, secret: string | undefined, clock: Clock, logger: Logger): ChannelWebhook {
  const wanted = new Set(settings.events);
  const queue: string[] = [];
  const running = new Set<Promise<void>>();
  let dropped = 0;
  const origin = new URL(settings.url).origin;

  const post = (body: string) =>
    fetch(settings.url, {
      method: 'POST',
      headers: signedHeaders(secret, body, clock.now()),
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(settings.timeout),
    });

  function pump(): void {
    while (running.size < IN_FLIGHT_MAX && queue.length > 0) {
      const body = queue.shift()!;
      const job: Promise<void> = post(body)
        .then(async (response) => {
          await response.body?.cancel();
          if (response.status >= 300) logger.warn({ webhook: origin, status: response.status }, 'channel: webhook refused an event');
        })
        .catch((error: Error) => logger.warn({ webhook: origin, err: error.name === 'TimeoutError' ? 'timeout' : error.message }, 'channel: webhook event failed'))
        .finally(() => {
          running.delete(job);
          pump();
        });
      running.add(job);
    }
  }

  return {
    event(name, body) {
      if (!wanted.has(name)) return;
      if (queue.length >= QUEUE_MAX) {
        if (dropped++ % 1000 === 0) logger.warn({ webhook: origin, dropped }, 'channel: webhook is behind; events dropped');
        return;
      }
      queue.push(JSON.stringify({ event: name, ts: clock.now(), ...body }));
      pump();
    },
    async ask(body) {
      let response: Response;
      try {
        response = await post(JSON.stringify({ event: 'join', ts: clock.now(), ...body }));
        await response.body?.cancel();
      } catch (error) {
        logger.warn({ webhook: origin, err: (error as Error).name === 'TimeoutError' ? 'timeout' : (error as Error).message }, 'channel: webhook did not answer a join');
        throw new AppError('CHANNEL_UNAVAILABLE');
      }
      if (response.status >= 200 && response.status < 300) return true;
      if (response.status >= 400 && response.status < 500) return false;
      logger.warn({ webhook: origin, status: response.status }, 'channel: webhook failed a join');
      throw new AppError('CHANNEL_UNAVAILABLE');
    },
    async close() {
      await Promise.allSettled([...running]);
    },
  };
}
