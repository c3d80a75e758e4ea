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


const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3 };

/** A byte size: a number of bytes, or a string such as "20MiB", "500KB", "2GiB". */
export function size(description: string) {
  return z
    .union([z.number().int().min(0), z.string()])
    .transform((value, ctx) => {
      if (typeof value === 'number') return value;
      const match = /^(\d+(?:\.\d+)?)\s*([KMG]i?B|B)$/i.exec(value.trim());
      if (!match) {
        ctx.addIssue({ code: 'custom', message: 'expected a size such as 20MiB, 500KB or a number of bytes' });
        return z.NEVER;
      }
      return Math.round(Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!);
    })
    .meta({ description, format: 'size' });
}
