/**
 * What minigate creates under dataDir is for its own user only: directories 0700, files 0600
 * (set on each file as it is created, never by changing the process umask, which would reach
 * into every library). Existing files that others can read are reported, not changed: the
 * operator may have a reason (a group that backs them up), and chmod is theirs to run.
 */
import { mkdirSync, statSync } from 'node:fs';
import type { Logger } from './logger.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates a directory (and missing parents) for this user only; an existing one is left as it is. */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** One warning per existing file that group or others can read (missing files are skipped). */
export function warnIfReadable(files: string[], logger: Logger, what: string): void {
  for (const file of files) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if (mode & 0o044) {
      logger.warn({ file, mode: mode.toString(8).padStart(4, '0') }, `${what} ${file} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${file}`);
    }
  }
}
