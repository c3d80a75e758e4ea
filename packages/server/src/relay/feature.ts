/**
 * The relay feature (the dev tunnel, docs/relay.md): accepts relay clients on the HTTPS listener
 * (the edge hands over TLS connections that chose ALPN minigate-relay), checks each hello against
 * the stored names and tokens, keeps one link per name, and gives the edge the target of every
 * `tunnel:` route.
 */
import cluster from 'node:cluster';
import { createHmac, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { createRedisBus, type Bus } from '../bus/index.js';
import type { SharedRedis } from '../core/index.js';
import type { RelayConfig } from '../config/index.js';
import type { Feature, SharedDeps } from '../feature/index.js';
import type { Tunnel, TunnelTargets } from '../edge/index.js';
import type { Store } from '../store/index.js';
import { HANDOFF_KEY_ENV, joinRelayOwners, type RelayOwners } from './cluster.js';
import { createForwarder, type Handoff } from './forward.js';
import { createHandoff, handoffReachable, startHandoffReceiver, type HandoffReceiver } from './handoff.js';
import { joinRedisOwners } from './instances.js';
import { readHello, type Link } from './link.js';
import { createRelayMeter } from './metrics.js';
import { createRelayRecords } from './records.js';
import { createBucket, type Bucket } from './throttle.js';

export interface RelayFeature extends Feature {
  /** Takes a TLS socket whose ALPN protocol is minigate-relay. */
  accept(socket: TLSSocket): void;
  /** The targets of tunnel routes, for the edge. */
  targets: TunnelTargets;
  /** Names with a client connected now (to this process). */
  online(): string[];
  /** Requests and WebSockets in flight on this process's links. */
  streams(): number;
}

export interface RelayDeps extends SharedDeps {
  store: Store;
  /** Cookie names a laptop's answer may not set (the admin console's). */
  protectedCookies: readonly string[];
  /** With several instances: where each name's owner is recorded. */
  redis?: SharedRedis | undefined;
  /** The deployment's secret key: across instances, the hand-off key derives from it. */
  secretKey: Buffer;
}

export function createRelayFeature(config: RelayConfig, deps: RelayDeps): RelayFeature {
  const { logger, clock } = deps;
  const records = createRelayRecords(deps.store);
  const links = new Map<string, Link>();
  const buckets = new Map<string, Bucket>();
  /** Names whose welcome is being written. */
  const opening = new Set<string>();
  const meter = createRelayMeter(deps.metrics, () => links.size);
  let closing = false;
  let sweeper: NodeJS.Timeout | undefined;
  // With workers or several instances: which one holds each name, and the hand-off to it (set up
  // in start()). Across instances the key must be the same everywhere without a setting of its
  // own: it derives from the secret key every instance already shares.
  const { redis } = deps;
  const handoffKey = redis
    ? createHmac('sha256', deps.secretKey).update('minigate relay hand-off v1').digest('hex')
    : cluster.isWorker
      ? process.env[HANDOFF_KEY_ENV]
      : undefined;
  let owners: RelayOwners | undefined;
  let receiver: HandoffReceiver | undefined;
  let handoff: (Handoff & { close(): void }) | undefined;
  let bus: Bus | undefined;
  // Open WebSockets (here, or handed to another process): they get 1001 when this one drains.
  const tunnels = new Set<Tunnel>();
  function track(tunnel: Tunnel): void {
    tunnels.add(tunnel);
    void tunnel.closed.then(() => tunnels.delete(tunnel));
  }
  const forward = createForwarder({
    link: (name) => links.get(name),
    handoff: {
      locate: async (name) => handoff?.locate(name),
      request: (...args) => handoff!.request(...args),
      upgrade: (...args) => handoff!.upgrade(...args),
    },
    maxStreams: config.maxStreams,
    idleMs: config.idleTimeout,
    uploadMs: config.uploadTimeout,
    protectedCookies: deps.protectedCookies,
    // One bucket per name, kept across reconnects (a reconnect does not refill it).
    bucket: config.maxBytesPerSecond ? (name) => buckets.get(name) ?? buckets.set(name, createBucket(config.maxBytesPerSecond!)).get(name)! : undefined,
    meter,
    logger,
    track,
  });

  async function accept(socket: TLSSocket): Promise<void> {
    const client = socket.remoteAddress;
    if (closing) return void socket.destroy();
    const result = await readHello(socket, config.helloTimeout);
    if (!result) {
      meter.hello('RELAY_BAD_HELLO');
      logger.info({ client }, 'relay: a client did not say a valid hello');
      return;
    }
    const { hello } = result;
    let valid = false;
    try {
      valid = await records.verify(hello.name, hello.token);
    } catch (error) {
      logger.warn({ err: (error as Error).message, relay: hello.name }, 'relay: cannot check a token (store unavailable)');
      return void socket.destroy();
    }
    if (!valid) {
      meter.hello('RELAY_AUTH_FAILED');
      logger.warn({ relay: hello.name, client }, 'relay: refused a client (unknown name or wrong token)');
      return result.refuse('RELAY_AUTH_FAILED', `The token is not the one of relay "${hello.name}" (or no such relay name).`);
    }
    const held = links.get(hello.name);
    let heldElsewhere = false;
    try {
      const address = await owners?.elsewhere(hello.name);
      // A record left by an instance that died (until it expires) does not hold the name: the
      // client reconnecting through another instance gets in.
      heldElsewhere = !hello.replace && address !== undefined && (await handoffReachable(address));
    } catch {
      // Not knowable (Redis away): this instance decides alone.
    }
    if (((held || heldElsewhere) && !hello.replace) || opening.has(hello.name)) {
      meter.hello('RELAY_NAME_TAKEN');
      logger.info({ relay: hello.name, client }, 'relay: refused a second client for a name (no --replace)');
      return result.refuse('RELAY_NAME_TAKEN', `Another client holds relay "${hello.name}"; stop it, or connect with --replace to take over.`);
    }
    if (closing || socket.destroyed) return void socket.destroy();
    if (held) {
      logger.info({ relay: hello.name, client }, 'relay: a client takes the name over (--replace)');
      links.delete(hello.name);
      held.close(true);
    }
    meter.hello('welcome');
    // Held from here: a second hello for the name while the welcome is written is refused.
    opening.add(hello.name);
    let link: Link;
    try {
      link = await result.open(config.maxStreams, config.pingInterval, (closed, reason) => {
        if (links.get(closed.name) === closed) {
          links.delete(closed.name);
          owners?.drop(closed.name);
        }
        logger.info({ relay: closed.name, reason }, 'relay: link down');
      });
    } catch {
      return void socket.destroy();
    } finally {
      opening.delete(hello.name);
    }
    links.set(hello.name, link);
    owners?.own(hello.name);
    logger.info({ relay: hello.name, client }, 'relay: link up');
    records.touch(hello.name, clock.now()).catch(() => undefined);
  }

  return {
    name: 'relay',
    accept: (socket) => void accept(socket).catch((error: unknown) => {
      logger.error({ err: error }, 'relay: accepting a client failed');
      socket.destroy();
    }),
    targets: forward.target,
    online: () => [...links.keys()],
    streams: () => [...links.values()].reduce((sum, link) => sum + link.streams, 0),
    async start() {
      if (handoffKey) {
        receiver = await startHandoffReceiver(handoffKey, config.handoffAddress, forward, logger);
        const lost = (name: string) => {
          // Taken over (--replace) by a client on another worker or instance.
          const link = links.get(name);
          if (!link) return;
          logger.info({ relay: name }, 'relay: the name was taken over on another worker or instance');
          links.delete(name);
          link.close(true);
        };
        if (redis) {
          const instance = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
          bus = createRedisBus(redis, instance, logger);
          owners = joinRedisOwners(redis, bus, instance, receiver.address, lost, logger);
        } else owners = joinRelayOwners(receiver.address, lost);
        handoff = createHandoff(handoffKey, owners, logger, track);
      }
      // A revoked name (`minigate relay revoke`, another process) loses its link at the next sweep.
      sweeper = setInterval(() => {
        if (!links.size) return;
        records.list().then((names) => {
          const kept = new Set(names.map((n) => n.name));
          for (const [name, link] of links) {
            if (kept.has(name)) continue;
            logger.info({ relay: name }, 'relay: name revoked, closing its link');
            links.delete(name);
            link.close(true);
          }
        }, () => undefined);
      }, config.pingInterval);
      sweeper.unref();
    },
    // Links are told to go away (GOAWAY): no new streams, those in flight finish.
    async drain() {
      closing = true;
      // WebSockets first: 1001 between frames, both ways, before their links go.
      for (const tunnel of tunnels) tunnel.close(1001);
      for (const link of links.values()) link.close();
      await Promise.all([...tunnels].map((tunnel) => tunnel.closed));
    },
    async close() {
      closing = true;
      clearInterval(sweeper);
      for (const link of links.values()) link.close(true);
      links.clear();
      owners?.close();
      await bus?.close();
      handoff?.close();
      await receiver?.close();
    },
  };
}
