/** `minigate backup`, `export` and `import`: the thin CLI over move.ts and the SQLite backup. */
import { closeSync, existsSync, openSync, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { dialectOf, redactUrl } from '../store/index.js';
import { SECRET_KEY_FILE } from '../auth/index.js';
import { EXIT_FAILURE, UsageError } from './errors.js';
import { configFile, loadOrExit } from './shared.js';
import { describeCounts, exportDeployment, importDeployment, MoveError } from './move.js';

async function refusals(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof MoveError)) {
      const cause = (error as { cause?: { message?: string } }).cause;
      process.stderr.write(`minigate: ${redactUrl(cause?.message ?? (error as Error).message)}\n`);
    } else process.stderr.write(`minigate: ${error.message}\n`);
    process.exitCode = EXIT_FAILURE;
  }
}

export async function exportCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, out: { type: 'string', short: 'o' }, force: { type: 'boolean' } } });
  if (!values.out) throw new UsageError('export needs --out FILE');
  const config = loadOrExit(configFile(values.config));
  await refusals(async () => {
    const { header } = await exportDeployment(config, values.out!, { force: values.force });
    process.stdout.write(`exported ${redactUrl(config.store)} to ${values.out} (${describeCounts(header)}; migration ${header.migration})\n`);
    process.stderr.write(`${values.out} holds the secret key and every session: keep it private, delete it once imported\n`);
  });
}

export async function importCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, force: { type: 'boolean' } } });
  if (positionals.length !== 1) throw new UsageError('import needs one FILE (made by minigate export)');
  const config = loadOrExit(configFile(values.config));
  await refusals(async () => {
    const { header, keyFile } = await importDeployment(config, positionals[0]!, { force: values.force });
    process.stdout.write(`imported ${positionals[0]} into ${redactUrl(config.store)} (${describeCounts(header)})\n`);
    if (keyFile) process.stdout.write(`wrote the secret key to ${keyFile}\n`);
  });
}

/** A word for the shell, quoted when it needs to be. */
function sh(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export async function backupCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, out: { type: 'string', short: 'o' }, force: { type: 'boolean' } } });
  if (!values.out) throw new UsageError('backup needs --out FILE');
  const out = values.out;
  const config = loadOrExit(configFile(values.config));
  const keyNote = config.secretKey
    ? 'keep the secretKey from the config with it: sessions cannot be read without it'
    : `keep ${path.join(config.dataDir, SECRET_KEY_FILE)} with it: sessions cannot be read without it`;
  const dialect = dialectOf(config.store);
  if (dialect !== 'sqlite') {
    const u = new URL(config.store);
    const database = decodeURIComponent(u.pathname.slice(1));
    const user = decodeURIComponent(u.username);
    // The password is never printed: the line reads it from the environment variable the tool uses.
    const line =
      dialect === 'mysql'
        ? [...(u.password ? ['MYSQL_PWD="$MYSQL_PWD"'] : []), 'mysqldump', '--single-transaction', '--host', u.hostname, '--port', u.port || '3306', ...(user ? ['--user', user] : []), `--result-file=${out}`, database]
        : [...(u.password ? ['PGPASSWORD="$PGPASSWORD"'] : []), 'pg_dump', '--format=custom', '--host', u.hostname, '--port', u.port || '5432', ...(user ? ['--username', user] : []), `--file=${out}`, database];
    process.stdout.write(`${line.map((w, i) => (i === 0 && w.includes('="$') ? w : sh(w))).join(' ')}\n`);
    process.stderr.write(
      `minigate does not dump ${dialect === 'mysql' ? 'MySQL/MariaDB' : 'PostgreSQL'} itself: run the line above${u.password ? ` with ${dialect === 'mysql' ? 'MYSQL_PWD' : 'PGPASSWORD'} set to the store password` : ''}; ${keyNote}\n`,
    );
    return;
  }
  const file = path.resolve(config.store.slice('sqlite:'.length));
  if (!existsSync(file)) {
    process.stderr.write(`minigate: no database at ${file}\n`);
    process.exitCode = EXIT_FAILURE;
    return;
  }
  if (existsSync(out) && !values.force) throw new UsageError(`${out} exists; choose another name or pass --force`);
  const { default: SQLite } = await import('better-sqlite3');
  const database = new SQLite(file, { readonly: true, fileMustExist: true });
  const temporary = `${out}.${process.pid}.tmp`;
  try {
    // Made 0600 before SQLite writes into it: the copy holds what the database holds.
    closeSync(openSync(temporary, 'wx', 0o600));
    // SQLite's online backup: a consistent copy while minigate keeps writing.
    await database.backup(temporary);
    renameSync(temporary, out);
  } catch (error) {
    if (existsSync(temporary)) unlinkSync(temporary);
    process.stderr.write(`minigate: backup failed: ${(error as Error).message}\n`);
    process.exitCode = EXIT_FAILURE;
    return;
  } finally {
    database.close();
  }
  process.stdout.write(`backed up ${file} to ${out}\n`);
  process.stderr.write(`${keyNote}\n`);
}
