/** The `minigate` command: one thin file per subcommand. */
import { readFileSync } from 'node:fs';
import { EXIT_USAGE, UsageError } from './errors.js';
import { relayHelp, tunnelHelp, adminHelp, backupHelp, checkHelp, devHelp, exportHelp, importHelp, initHelp, migrateHelp, sandboxHelp, startHelp, validateHelp } from './usage.js';

type Run = (argv: string[]) => void | Promise<void>;

// Commands load on use, so `--help` and `validate` stay quick.
const commands: Record<string, { help: string; load: () => Promise<Run> }> = {
  init: { help: initHelp, load: async () => (await import('./init.js')).init },
  dev: { help: devHelp, load: async () => (await import('./dev.js')).dev },
  start: { help: startHelp, load: async () => (await import('./start.js')).start },
  validate: { help: validateHelp, load: async () => (await import('./validate.js')).validate },
  check: { help: checkHelp, load: async () => (await import('./check.js')).check },
  migrate: { help: migrateHelp, load: async () => (await import('./migrate.js')).migrate },
  backup: { help: backupHelp, load: async () => (await import('./data.js')).backupCommand },
  export: { help: exportHelp, load: async () => (await import('./data.js')).exportCommand },
  import: { help: importHelp, load: async () => (await import('./data.js')).importCommand },
  sandbox: { help: sandboxHelp, load: async () => (await import('./sandbox.js')).sandbox },
  admin: { help: adminHelp, load: async () => (await import('./admin.js')).admin },
  relay: { help: relayHelp, load: async () => (await import('./relay.js')).relay },
  tunnel: { help: tunnelHelp, load: async () => (await import('./tunnel.js')).tunnel },
};

const overview = `minigate — a self-hosted backend and edge server for WeChat Mini Programs

Usage: minigate <command> [options]

Commands:
  init       write a first minigate.yaml and .env (asks, or takes flags with --yes)
  dev        run locally with no config: SQLite, the WeChat sandbox, a dev app
  start      run from minigate.yaml (-c FILE)
  validate   check a config file and list every problem
  check      tell whether a domain satisfies WeChat's server-domain rules
  migrate    apply database migrations and exit
  backup     copy the SQLite database, or print the mysqldump / pg_dump line
  export     write users, sessions, files, shared state and the secret key to a file
  import     load an export into another store (SQLite, MySQL/MariaDB, PostgreSQL)
  sandbox    run the WeChat API sandbox alone
  admin      add, list, remove admin console users or change a password
  relay      add, list, revoke relay names (the dev tunnel) and their tokens
  tunnel     serve a local service through your minigate (the dev tunnel's client)

minigate help <command> shows a command's options.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(`${overview}\n`);
    return;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (name === 'help') {
    const topic = rest[0] && commands[rest[0]];
    process.stdout.write(`${topic ? topic.help : overview}\n`);
    return;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.help}\n`);
    return;
  }
  await (await command.load())(rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`minigate: ${(error as Error).message}\n${usage ? 'Run `minigate --help` for usage.\n' : ''}`);
  process.exit(usage ? EXIT_USAGE : 1);
});
