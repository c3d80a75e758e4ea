/** The `minigate` command: one thin file per subcommand. */
import { readFileSync } from 'node:fs';
import * as devCommand from './dev.js';
import * as migrateCommand from './migrate.js';
import * as sandboxCommand from './sandbox.js';
import { EXIT_USAGE, UsageError } from './shared.js';
import * as startCommand from './start.js';
import * as validateCommand from './validate.js';

const commands: Record<string, { help: string; run: (argv: string[]) => void | Promise<void> }> = {
  dev: { help: devCommand.help, run: devCommand.dev },
  start: { help: startCommand.help, run: startCommand.start },
  validate: { help: validateCommand.help, run: validateCommand.validate },
  migrate: { help: migrateCommand.help, run: migrateCommand.migrate },
  sandbox: { help: sandboxCommand.help, run: sandboxCommand.sandbox },
};

const overview = `minigate — a self-hosted backend and edge server for WeChat Mini Programs

Usage: minigate <command> [options]

Commands:
  dev        run locally with no config: SQLite, the WeChat sandbox, a dev app
  start      run from minigate.yaml (-c FILE)
  validate   check a config file and list every problem
  migrate    apply database migrations and exit
  sandbox    run the WeChat API sandbox alone

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
  await command.run(rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`minigate: ${(error as Error).message}\n${usage ? 'Run `minigate --help` for usage.\n' : ''}`);
  process.exit(usage ? EXIT_USAGE : 1);
});
