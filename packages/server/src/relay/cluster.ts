/**
 * With `workers`, which worker holds each relay name's link: the primary keeps the record and
 * tells every worker whenever it changes; a worker that gets a request for a name it does not
 * hold hands it to the holder's hand-off listener (handoff.ts). A worker that dies loses its
 * names. A name taken over (--replace) on another worker is closed on the one that held it.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';

/** The environment variable that gives every worker the hand-off key (set by the primary before it forks). */
export const HANDOFF_KEY_ENV = 'MG_RELAY_HANDOFF_KEY';

type ToPrimary = { mg: 'relay'; op: 'own' | 'drop' | 'hello'; name?: string; address?: string };
/** `since`: the primary's count of ownership changes when this one was recorded (later wins). */
type ToWorker = { mg: 'relay-owners'; owners: Record<string, { worker: number; address: string; since: number }> };

const isMessage = (message: unknown, mg: string) => typeof message === 'object' && message !== null && (message as { mg?: unknown }).mg === mg;

/** In the primary, when the relay is on: keeps the owners and makes the hand-off key. */
export function serveRelayOwners(): void {
  process.env[HANDOFF_KEY_ENV] ??= randomBytes(32).toString('hex');
  const owners: ToWorker['owners'] = {};
  let changes = 0;
  const broadcast = () => {
    for (const worker of Object.values(cluster.workers ?? {})) if (worker?.isConnected()) worker.send({ mg: 'relay-owners', owners } satisfies ToWorker);
  };
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isMessage(message, 'relay')) return;
    const { op, name, address } = message as ToPrimary;
    if (op === 'own' && name && address) owners[name] = { worker: worker.id, address, since: ++changes };
    else if (op === 'drop' && name && owners[name]?.worker === worker.id) delete owners[name];
    else if (op !== 'hello') return;
    broadcast();
  });
  cluster.on('exit', (worker) => {
    let changed = false;
    for (const [name, owner] of Object.entries(owners)) {
      if (owner.worker !== worker.id) continue;
      delete owners[name];
      changed = true;
    }
    if (changed) broadcast();
  });
}

export interface RelayOwners {
  /** This worker holds the name now (it takes it over from any other). */
  own(name: string): void;
  /** This worker no longer holds the name. */
  drop(name: string): void;
  /** The hand-off address (host:port) of the worker or instance holding the name, when it is another one. */
  elsewhere(name: string): Promise<string | undefined>;
  close(): void;
}

/** In a worker: the owners as the primary last told them; `lost` is called for a name of ours another worker took. */
export function joinRelayOwners(address: string, lost: (name: string) => void): RelayOwners {
  const me = cluster.worker?.id ?? 0;
  let owners: ToWorker['owners'] = {};
  /** Names this worker holds, with when the primary recorded it (undefined until a message says so). */
  const mine = new Map<string, number | undefined>();
  const onMessage = (message: unknown) => {
    if (!isMessage(message, 'relay-owners')) return;
    owners = (message as ToWorker).owners;
    for (const [name, since] of [...mine]) {
      const owner = owners[name];
      if (owner?.worker === me) mine.set(name, owner.since);
      // Another worker recorded after us: a takeover. (A message older than our own record is not.)
      else if (owner && since !== undefined && owner.since > since) {
        mine.delete(name);
        lost(name);
      }
    }
  };
  process.on('message', onMessage);
  const send = (message: ToPrimary) => process.send?.(message);
  send({ mg: 'relay', op: 'hello' });
  return {
    own(name) {
      mine.set(name, undefined);
      owners = { ...owners, [name]: { worker: me, address, since: Infinity } };
      send({ mg: 'relay', op: 'own', name, address });
    },
    drop(name) {
      if (!mine.delete(name)) return;
      send({ mg: 'relay', op: 'drop', name });
    },
    elsewhere(name) {
      const owner = owners[name];
      return Promise.resolve(owner && owner.worker !== me ? owner.address : undefined);
    },
    close() {
      process.off('message', onMessage);
    },
  };
}
