/**
 * `minigate admin add|list|remove|passwd`: the admin console's users, kept in the store.
 * Passwords come from a TTY prompt (asked twice, not echoed), `--password-file F`, or the first
 * line of standard input (scripts); never from an argument, which `ps` would show.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createAdminRecords, hashPassword, newTotpSecret, passwordProblem, totpUri } from '../admin/index.js';
import { createSecretBox } from '../auth/index.js';
import { createLogger } from '../core/index.js';
import { createStoreFeature } from '../startup/index.js';
import { EXIT_FAILURE, UsageError, configFile, loadOrExit } from './shared.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

/** One line typed without echo (the terminal shows nothing while the password is typed). */
function askHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stderr.write(question);
    output._writeToOutput = () => undefined;
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    rl.on('SIGINT', () => {
      rl.close();
      reject(new Error('cancelled'));
    });
  });
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/, 1)[0] ?? '';
}

async function newPassword(file: string | undefined): Promise<string> {
  let password: string;
  if (file) password = readFileSync(file, 'utf8').split(/\r?\n/, 1)[0] ?? '';
  else if (process.stdin.isTTY) {
    password = await askHidden('Password: ');
    if ((await askHidden('Password again: ')) !== password) throw new Error('the two passwords differ');
  } else password = await readStdinLine();
  const problem = passwordProblem(password);
  if (problem) throw new Error(problem);
  return password;
}

export async function admin(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, 'password-file': { type: 'string' }, totp: { type: 'boolean', default: false } },
  });
  const [action, name] = positionals;
  if (!action || !['add', 'list', 'remove', 'passwd'].includes(action)) throw new UsageError('expected admin add|list|remove|passwd');
  if (action !== 'list' && (!name || !NAME.test(name))) throw new UsageError('expected a name (letters, digits, _ . @ -; at most 64)');
  const config = loadOrExit(configFile(values.config));
  const storeFeature = createStoreFeature(config, { logger: createLogger({ level: 'warn' }) });
  try {
    await storeFeature.start();
    const records = createAdminRecords(storeFeature.store);
    const box = createSecretBox(storeFeature.secretKey.key, 'admin totp');
    const now = Date.now();
    switch (action) {
      case 'list': {
        const users = await records.listUsers();
        if (!users.length) process.stdout.write('no admin users (add one with: minigate admin add NAME)\n');
        for (const u of users) process.stdout.write(`${u.name}\t${u.totp ? 'totp' : 'password only'}\tcreated ${new Date(u.createdAt).toISOString()}\n`);
        break;
      }
      case 'add': {
        if (await records.getUser(name!)) throw new Error(`${name} already exists (minigate admin passwd ${name} changes the password)`);
        const password = await newPassword(values['password-file']);
        const secret = values.totp ? newTotpSecret() : null;
        await records.addUser({ name: name!, passwordHash: await hashPassword(password), totpSecret: secret ? box.seal(secret) : null, createdAt: now });
        process.stdout.write(`added ${name}\n`);
        if (secret) {
          // Shown once: it is kept only sealed with the secret key.
          process.stdout.write(`TOTP secret: ${secret}\n${totpUri(name!, secret)}\n(add it to an authenticator app now; it is not shown again)\n`);
        }
        break;
      }
      case 'remove':
        if (!(await records.removeUser(name!))) throw new Error(`no admin named ${name}`);
        process.stdout.write(`removed ${name} (and ended its console sessions)\n`);
        break;
      case 'passwd': {
        if (!(await records.getUser(name!))) throw new Error(`no admin named ${name}`);
        const password = await newPassword(values['password-file']);
        const secret = values.totp ? newTotpSecret() : undefined;
        await records.setPassword(name!, await hashPassword(password), secret ? box.seal(secret) : undefined);
        process.stdout.write(`changed the password of ${name} (its console sessions ended)\n`);
        if (secret) process.stdout.write(`TOTP secret: ${secret}\n${totpUri(name!, secret)}\n(add it to an authenticator app now; it is not shown again)\n`);
        break;
      }
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    process.stderr.write(`minigate admin ${action}: ${(error as Error).message}\n`);
    process.exitCode = EXIT_FAILURE;
  } finally {
    await storeFeature.close();
  }
}
