/**
 * The internal API stays off the internet unless internal.allowPublic says otherwise (the config
 * checks addresses; a host name is checked here, as the address it resolves to). Every interface
 * of a host whose interfaces are all private (a container) is allowed, with a warning.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config/index.js';
import { internalListenProblem, isWildcard, listenExposure } from '../core/index.js';
import type { Logger } from '../core/index.js';
import { StartError, type Feature } from '../feature/index.js';

export function createInternalListenCheck(config: Config, deps: { logger: Logger }): Feature {
  return {
    name: 'listen.internal',
    start: () => (config.listen.internal ? checkInternalListen(config, deps.logger) : Promise.resolve()),
    close: async () => undefined,
  };
}

async function checkInternalListen(config: Config, logger: Logger): Promise<void> {
  const { host, port } = config.listen.internal!;
  const allowPublic = config.internal?.allowPublic ?? false;
  let address = host;
  if (!isIP(host) && !isWildcard(host)) {
    try {
      address = (await lookup(host)).address;
    } catch (error) {
      throw new StartError(`listen.internal: cannot resolve ${host} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
    }
  }
  const exposure = listenExposure(address, networkInterfaces());
  const problem = internalListenProblem(address === host ? host : `${host} (${address})`, exposure, allowPublic);
  if (problem) throw new StartError(`listen.internal: ${problem}`);
  if (exposure.wildcard && !allowPublic) {
    logger.warn(
      { listen: `${host}:${port}` },
      `listen.internal: ${host} listens on every interface (all of them loopback or private here); should this host get a public interface, minigate will refuse to start — bind a private address instead`,
    );
  } else if (exposure.scope === 'public') {
    logger.warn({ listen: `${host}:${port}` }, 'listen.internal: the internal API is on a public address (internal.allowPublic); keep it behind a firewall');
  }
}
