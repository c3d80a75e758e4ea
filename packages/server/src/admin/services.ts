/**
 * What the console reads and does, made from the other features' services (given by the root,
 * never reached sideways): sessions, tokens, the outbox, files, channels, certificates, checks.
 */
import { hostname } from 'node:os';
import type { Config } from '../config/index.js';
import type { SessionService } from '../auth/index.js';
import type { ChannelInspect } from '../channel/index.js';
import type { Clock } from '../core/index.js';
import { CHECK_TIMEOUT_MS, configuredUrls, runChecks, type CheckReport } from '../doctor/index.js';
import type { Outbox } from '../outbox/index.js';
import type { OutboxEntry, Store } from '../store/index.js';
import { daysLeft, type TlsManager } from '../tls/index.js';
import type { TokenManager } from '../token/index.js';

export interface CertificateInfo {
  names: string[];
  source: string;
  subject: string;
  issuer: string;
  notAfter: string;
  daysLeft: number;
}

export interface InstanceInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  /** This instance answered the request; others are known from their heartbeat (with Redis). */
  self: boolean;
}

export interface RelayInspect {
  online(): string[];
  streams(): number;
}

export interface AdminServices {
  sessions: Pick<SessionService, 'revokeById' | 'revokeUser'>;
  tokens: Pick<TokenManager, 'status' | 'forceRefresh'>;
  channel: (ChannelInspect & { publish(room: string, event: string, data: unknown): Promise<unknown> }) | undefined;
  files: { remove(id: string): Promise<boolean> } | undefined;
  /** The relay (dev tunnel), when on: names with a client connected to this process, streams in flight. */
  relay: RelayInspect | undefined;
  outboxRecent(limit: number, status?: OutboxEntry['status']): Promise<OutboxEntry[]>;
  outboxRetry(id: string): Promise<boolean>;
  certificates(): CertificateInfo[];
  acme(): { enabled: boolean; domains: string[]; directory: string | null; certificate: { names: string[]; daysLeft: number } | null };
  lastCheck(): { at: number; report: CheckReport } | null;
  runCheck(): Promise<{ at: number; report: CheckReport } | null>;
  instances(): Promise<InstanceInfo[]>;
}

export interface AdminServiceDeps {
  config: Config;
  store: Store;
  clock: Clock;
  sessions: SessionService;
  tokens: TokenManager;
  outbox: Outbox;
  tls: TlsManager | undefined;
  channel?: { inspect: ChannelInspect; publish(room: string, event: string, data: unknown): Promise<unknown> } | undefined;
  files?: { remove(id: string): Promise<boolean> } | undefined;
  relay?: RelayInspect | undefined;
  /** Every instance, when they can be known (Redis); else only this one is shown. */
  instances?: () => Promise<InstanceInfo[]>;
  startedAt: number;
}

export function createAdminServices(deps: AdminServiceDeps): AdminServices {
  const { config, store, clock } = deps;
  let last: { at: number; report: CheckReport } | null = null;
  const certificates = (): CertificateInfo[] =>
    (deps.tls?.materials() ?? []).map((m) => {
      const leaf = m.chain[0]!;
      return {
        names: m.names,
        source: m.source,
        subject: leaf.subject.replace(/\n/g, ', '),
        issuer: leaf.issuer.replace(/\n/g, ', '),
        notAfter: new Date(leaf.validTo).toISOString(),
        daysLeft: daysLeft(leaf, clock.now()),
      };
    });
  const self = (): InstanceInfo => ({ id: `${hostname()}:${process.pid}`, host: hostname(), pid: process.pid, startedAt: deps.startedAt, self: true });
  return {
    sessions: deps.sessions,
    tokens: deps.tokens,
    channel: deps.channel ? { ...deps.channel.inspect, publish: deps.channel.publish } : undefined,
    files: deps.files,
    relay: deps.relay,
    outboxRecent: (limit, status) => store.outboxRecent(limit, status),
    outboxRetry: (id) => deps.outbox.retryNow(id),
    certificates,
    acme() {
      const acme = config.tls.acme;
      if (!acme) return { enabled: false, domains: [], directory: null, certificate: null };
      const mine = certificates().find((c) => c.source.startsWith('acme'));
      return { enabled: true, domains: acme.domains, directory: acme.directory, certificate: mine ? { names: mine.names, daysLeft: mine.daysLeft } : null };
    },
    lastCheck: () => last,
    async runCheck() {
      const urls = configuredUrls(config);
      const report = await runChecks(urls, { timeoutMs: CHECK_TIMEOUT_MS, ca: [], resolve: new Map() });
      last = { at: clock.now(), report };
      return last;
    },
    instances: deps.instances ?? (async () => [self()]),
  };
}
