/**
 * `minigate relay add|list|revoke`: the relay names (the dev tunnel) and their tokens, kept in
 * the store. `add` prints the new token once, as the last line of its output (scripts take
 * `tail -n 1`); only its SHA-256 is kept.
 */
import { parseArgs } from 'node:util';
import { RELAY_NAME_PATTERN } from 'minigate-protocol';
import { createLogger } from '../core/index.js';
import { createRelayRecords } from '../relay/index.js';
import { createStoreFeature } from '../startup/index.js';
import { EXIT_FAILURE, UsageError, configFile, loadOrExit } from './shared.js';

export async function relay(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
  const [action, name] = positionals;
  if (!action || !['add', 'list', 'revoke'].includes(action)) throw new UsageError('expected relay add|list|revoke');
  if (action !== 'list' && (!name || !RELAY_NAME_PATTERN.test(name))) throw new UsageError('expected a relay name (lower-case letters, digits and -; at most 32)');
  const config = loadOrExit(configFile(values.config));
  const storeFeature = createStoreFeature(config, { logger: createLogger({ level: 'warn' }) });
  try {
    await storeFeature.start();
    const records = createRelayRecords(storeFeature.store);
    switch (action) {
      case 'list': {
        const names = await records.list();
        if (!names.length) process.stdout.write('no relay names (add one with: minigate relay add NAME)\n');
        for (const r of names) {
          process.stdout.write(`${r.name}\tcreated ${new Date(r.createdAt).toISOString()}\t${r.lastSeenAt ? `last connected ${new Date(r.lastSeenAt).toISOString()}` : 'never connected'}\n`);
        }
        break;
      }
      case 'add': {
        const token = await records.add(name!, Date.now());
        if (token === null) throw new Error(`${name} already exists (minigate relay revoke ${name}, then add it again for a new token)`);
        if (!config.relay) process.stdout.write('note: the relay is off in this config; add `relay: {}` and a route with `tunnel: ' + name + '`\n');
        process.stdout.write(`added relay ${name}; its token (shown once, keep it in a file for --token-file):\n${token}\n`);
        break;
      }
      case 'revoke':
        if (!(await records.revoke(name!))) throw new Error(`no relay named ${name}`);
        process.stdout.write(`revoked ${name} (a client connected with it keeps its link until it drops; restart minigate to cut it now)\n`);
        break;
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    process.stderr.write(`minigate relay ${action}: ${(error as Error).message}\n`);
    process.exitCode = EXIT_FAILURE;
  } finally {
    await storeFeature.close();
  }
}
