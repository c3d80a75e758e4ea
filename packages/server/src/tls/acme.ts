/**
 * Certificates from an ACME CA (RFC 8555; Let's Encrypt by default) with HTTP-01 on listen.http.
 *
 * Storage and lock contract: the account key, the certificate and the challenge answers live in
 * the store (`kv`), so every instance sharing a database serves the same certificate and can
 * answer a challenge another instance asked for; only the holder of the `acme:order:…` lease
 * orders, and it looks again after taking the lease (another may just have finished). Copies are
 * written under `<dataDir>/acme/` for operators.
 *
 * Renewal: checked every 10 minutes (never in a handshake), when a third of the lifetime is
 * left. Failures back off 1 min, 10 min, 100 min, then daily, while the current certificate
 * keeps being served (docs/reliability.md#tls-and-listeners).
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import path from 'node:path';
import type AcmeClient from 'acme-client';
import type { Clock, Logger } from '../core/index.js';
import type { Store } from '../store/index.js';
import { dnsNames, type CertificateMaterial } from './certificates.js';
import type { TlsManager } from './manager.js';

/** acme-client (with axios and node-forge) loads on the first order, not when the server starts. */
async function loadAcme(): Promise<typeof AcmeClient> {
  return (await import('acme-client')).default;
}

export const ACME_CHECK_INTERVAL_MS = 10 * 60_000;
export const ACME_RETRY_DELAYS_MS = [60_000, 600_000, 6_000_000, 86_400_000];
/** One request to the CA. */
const ACME_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Polling a challenge or an order until the CA says valid: 1 s, 2 s, 4 s, 8 s, then every 10 s,
 * ten polls (about a minute) in all. acme-client's default starts at 5 s and polls for about four
 * minutes; a CA that validates in a second then costs every order 5 s or more, and a CA that goes
 * down mid-order holds every later check (they wait for the running one) for minutes.
 */
const ACME_POLL = { backoffAttempts: 10, backoffMin: 1_000, backoffMax: 10_000 };
/** The order lease: long enough for an order, short enough that a crashed holder frees it soon. */
const ORDER_LEASE_MS = 10 * 60_000;

export interface AcmeSettings {
  email: string;
  domains: string[];
  directory: string;
  caFile?: string | undefined;
}

export interface AcmeManager {
  /** The key authorization for an HTTP-01 token, or null. */
  challenge(token: string): Promise<string | null>;
  /** Loads a stored certificate (or installs a temporary one) and starts the renewal timer. */
  start(): Promise<void>;
  /** One renewal check now (the timer's work). */
  check(): Promise<void>;
  close(): void;
}

interface StoredCertificate {
  chainPem: string[];
  keyPem: string;
}

export interface AcmeDeps {
  settings: AcmeSettings;
  store: Store;
  tls: TlsManager;
  logger: Logger;
  clock: Clock;
  dataDir: string;
  /** Makes a self-signed stand-in served until the first certificate arrives. */
  temporaryCertificate: (names: string[]) => Promise<CertificateMaterial>;
  checkIntervalMs?: number;
}

export function createAcmeManager(deps: AcmeDeps): AcmeManager {
  const { settings, store, tls, logger, clock } = deps;
  const names = settings.domains;
  const id = names.join(',');
  const keys = {
    account: `acme:account:${settings.directory}`,
    certificate: `acme:cert:${id}`,
    challenge: (token: string) => `acme:challenge:${token}`,
    lease: `acme:order:${id}`,
  };
  const owner = randomBytes(8).toString('hex');
  const httpsAgent = settings.caFile ? new Agent({ ca: readFileSync(settings.caFile) }) : undefined;
  let timer: NodeJS.Timeout | undefined;
  let installed: string | undefined; // fingerprint of the leaf in use
  let failures = 0;
  let nextAttempt = 0;
  let running: Promise<void> | undefined;

  function toMaterial(stored: StoredCertificate): CertificateMaterial {
    const chain = stored.chainPem.map((pem) => new X509Certificate(pem));
    return { source: `acme (${id})`, keyPem: stored.keyPem, chainPem: stored.chainPem, chain, names: names.length ? names : dnsNames(chain[0]!) };
  }

  async function stored(): Promise<StoredCertificate | null> {
    const text = await store.kvGet(keys.certificate);
    return text ? (JSON.parse(text) as StoredCertificate) : null;
  }

  function install(certificate: StoredCertificate): CertificateMaterial {
    const material = toMaterial(certificate);
    const fingerprint = material.chain[0]!.fingerprint256;
    if (fingerprint !== installed) {
      tls.install(`acme:${id}`, material);
      installed = fingerprint;
      logger.info({ domains: names, validTo: material.chain[0]!.validTo, serial: material.chain[0]!.serialNumber }, 'acme: certificate in use');
    }
    return material;
  }

  /** True when a third or less of the certificate's lifetime is left. */
  function due(material: CertificateMaterial): boolean {
    const leaf = material.chain[0]!;
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    return clock.now() >= to - (to - from) / 3;
  }

  async function accountKey(acme: typeof AcmeClient): Promise<string> {
    const existing = await store.kvGet(keys.account);
    if (existing) return existing;
    const key = (await acme.crypto.createPrivateEcdsaKey()).toString();
    await store.kvSet(keys.account, key, clock.now());
    // Another instance may have stored one at the same moment; use whichever the store kept.
    return (await store.kvGet(keys.account)) ?? key;
  }

  async function order(): Promise<StoredCertificate> {
    const acme = await loadAcme();
    if (httpsAgent) acme.axios.defaults.httpsAgent = httpsAgent;
    // acme-client retries a failed request five times over 75 s; one quick retry is enough, since
    // our own back-off (1 min, 10 min, …) takes over after a failure.
    Object.assign((acme.axios.defaults as unknown as { acmeSettings: Record<string, number> }).acmeSettings, {
      retryMaxAttempts: 1,
      retryDefaultDelay: 2,
    });
    // No request may hang an order (and with it every later check).
    acme.axios.defaults.timeout = ACME_REQUEST_TIMEOUT_MS;
    const client = new acme.Client({ directoryUrl: settings.directory, accountKey: await accountKey(acme), ...ACME_POLL });
    const key = await acme.crypto.createPrivateEcdsaKey();
    const [, csr] = await acme.crypto.createCsr({ commonName: names[0]!, altNames: names }, key);
    const pem = await client.auto({
      csr,
      email: settings.email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // The CA checks reachability itself; our own pre-check would need public DNS.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        await store.kvSet(keys.challenge(challenge.token), keyAuthorization, clock.now());
      },
      challengeRemoveFn: async (_authz, challenge) => {
        await store.kvDelete(keys.challenge(challenge.token));
      },
    });
    const chainPem = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((b) => `${b}\n`);
    return { chainPem, keyPem: key.toString() };
  }

  function writeCopies(certificate: StoredCertificate): void {
    try {
      const dir = path.join(deps.dataDir, 'acme', names[0]!);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(path.join(dir, 'fullchain.pem'), certificate.chainPem.join(''));
      writeFileSync(path.join(dir, 'key.pem'), certificate.keyPem, { mode: 0o600 });
    } catch (error) {
      logger.warn({ code: (error as NodeJS.ErrnoException).code }, 'acme: could not write the certificate copy under dataDir');
    }
  }

  async function checkOnce(): Promise<void> {
    const current = await stored();
    const material = current ? install(current) : undefined;
    if (material && !due(material)) return;
    const now = clock.now();
    if (now < nextAttempt) return;
    if (!(await store.lockAcquire(keys.lease, owner, ORDER_LEASE_MS, now))) {
      logger.debug({ domains: names }, 'acme: another instance is ordering');
      return;
    }
    try {
      // Someone may have renewed between our look and our lease.
      const again = await stored();
      if (again && !due(toMaterial(again))) {
        install(again);
        return;
      }
      logger.info({ domains: names, directory: settings.directory }, material ? 'acme: renewing the certificate' : 'acme: ordering a certificate');
      const certificate = await order();
      await store.kvSet(keys.certificate, JSON.stringify(certificate), clock.now());
      writeCopies(certificate);
      install(certificate);
      failures = 0;
      nextAttempt = 0;
    } catch (error) {
      const delay = ACME_RETRY_DELAYS_MS[Math.min(failures, ACME_RETRY_DELAYS_MS.length - 1)]!;
      failures++;
      nextAttempt = clock.now() + delay;
      logger.error(
        { domains: names, attempt: failures, retryInMs: delay, reason: (error as Error).message },
        material ? 'acme: renewal failed; the current certificate stays in use' : 'acme: ordering failed; a temporary certificate stays in use',
      );
    } finally {
      await store.lockRelease(keys.lease, owner).catch(() => undefined);
    }
  }

  const manager: AcmeManager = {
    challenge: (token) => store.kvGet(keys.challenge(token)),

    async start() {
      const current = await stored();
      if (current) install(current);
      else tls.install(`acme:${id}`, await deps.temporaryCertificate(names), { inspect: false });
      timer = setInterval(() => void manager.check(), deps.checkIntervalMs ?? ACME_CHECK_INTERVAL_MS);
      timer.unref();
      // The first check once listen.http is up (it answers the challenge).
      setTimeout(() => void manager.check(), 0).unref();
    },

    check() {
      running ??= checkOnce()
        .catch((error: unknown) => logger.error({ reason: (error as Error).message }, 'acme: check failed'))
        .finally(() => (running = undefined));
      return running;
    },

    close() {
      clearInterval(timer);
      httpsAgent?.destroy();
    },
  };
  return manager;
}
