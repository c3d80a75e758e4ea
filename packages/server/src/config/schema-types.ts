/** Value types shared by the config schema: durations, addresses, secrets, paths, host names. */
import { z } from 'zod';
import { DURATION_PATTERN, formatDuration, parseDuration } from './duration.js';
import { parseListenAddress } from './listen.js';

/** A duration string (`30s`, `15m`, `7d`) that parses to milliseconds. */
export function duration(description: string, min?: string) {
  const minMs = min === undefined ? 1 : parseDuration(min)!;
  return z
    .string()
    .regex(DURATION_PATTERN, { error: 'expected a duration such as "30s", "15m" or "7d"' })
    .transform((text) => parseDuration(text)!)
    .refine((ms) => ms >= minMs, { error: `must be at least ${formatDuration(minMs)}` })
    .meta({ description, format: 'duration' });
}

/** A listen address (`8080`, `127.0.0.1:8080`, `[::1]:8443`) that parses to `{host, port}`. */
export function listenAddress(description: string) {
  return z
    .union([z.string(), z.number().int()])
    .transform((value, ctx) => {
      const address = parseListenAddress(value);
      if (!address) {
        ctx.addIssue({
          code: 'custom',
          message: 'expected a port or host:port such as "8080", "127.0.0.1:8080" or "[::1]:8080"',
        });
        return z.NEVER;
      }
      return address;
    })
    .meta({ description, format: 'listen-address' });
}

export function secret(description: string) {
  return z.string().min(1, { error: 'must not be empty' }).meta({ description, secret: true });
}

export const filePath = (description: string) => z.string().min(1).meta({ description, format: 'path' });

export const HOSTNAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
export const hostname = z
  .string()
  .regex(HOSTNAME, { error: 'expected a host name such as api.example.com' })
  .transform((h) => h.toLowerCase());

