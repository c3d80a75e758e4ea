/**
 * The server's secret key: 32 bytes that encrypt session_key at rest. From config
 * (`secretKey` / `secretKeyFile`), else generated once into `<dataDir>/secret.key` (mode 0600).
 *
 * The database remembers a fingerprint of the key it was set up with, so an instance started
 * with a different key is refused instead of silently failing to read every session.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const SECRET_KEY_FILE = 'secret.key';
export const FINGERPRINT_META_KEY = 'secret_key_fingerprint';

/** Decodes 64 hex digits or base64(url) of 32 bytes. */
export function decodeSecretKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== 32) throw new Error('the secret key must be 32 bytes (64 hex digits or base64)');
  return key;
}

export interface SecretKeySource {
  key: Buffer;
  /** Where it came from, for messages: "config" or the file path. */
  origin: string;
  /** True when this call created the file. */
  created: boolean;
}

export function loadSecretKey(configured: string | undefined, dataDir: string): SecretKeySource {
  if (configured) return { key: decodeSecretKey(configured), origin: 'config secretKey', created: false };
  const file = path.join(dataDir, SECRET_KEY_FILE);
  try {
    return { key: decodeSecretKey(readFileSync(file, 'utf8')), origin: file, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot use ${file}: ${(error as Error).message}`);
    }
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  // Written whole to a temporary name, then linked into place: another process starting at the
  // same moment either wins the link (and we read its key) or finds no file; never half a key.
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temporary, `${key.toString('hex')}\n`, { mode: 0o600 });
  try {
    linkSync(temporary, file);
    return { key, origin: file, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadSecretKey(undefined, dataDir);
    throw error;
  } finally {
    unlinkSync(temporary);
  }
}

/** A public fingerprint of the key (HMAC of a constant; reveals nothing about the key). */
export function keyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('minigate secret key fingerprint v1').digest('hex').slice(0, 32);
}

/**
 * Records the key's fingerprint on first use and checks it afterwards.
 * Throws with an operator-facing message when the database was set up with another key.
 */
export async function checkKeyAgainstStore(
  key: SecretKeySource,
  meta: (key: string, init?: string) => Promise<string | null>,
): Promise<void> {
  const fingerprint = keyFingerprint(key.key);
  const stored = await meta(FINGERPRINT_META_KEY, fingerprint);
  if (stored !== fingerprint) {
    throw new Error(
      `the secret key (${key.origin}) is not the one this database was set up with; ` +
        'every instance sharing a database needs the same secretKey (copy it, or set secretKey / secretKeyFile in the config)',
    );
  }
}
