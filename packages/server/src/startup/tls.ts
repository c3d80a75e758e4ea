/**
 * HTTPS certificates: the configured files, the dev CA's certificate (tls.devCa), and ACME
 * (tls.acme), with the TLS manager that serves and watches them. Nothing when listen.https is off.
 */
import { X509Certificate } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { CertificateConfig } from '../config/index.js';
import type { Clock } from '../core/index.js';
import type { Logger, Metrics } from '../core/index.js';
import { warnIfReadable } from '../core/index.js';
import { StartError, type Feature } from '../feature/index.js';
import type { Store } from '../store/index.js';
import { CertificateError, type CertificateMaterial } from '../tls/index.js';
import { createAcmeManager, type AcmeManager } from '../tls/index.js';
import { ensureDevCertificate, selfSignedCertificate } from '../tls/index.js';
import { createTlsManager, type CertificateSource, type TlsManager } from '../tls/index.js';

/** A self-signed certificate for the names, served until ACME has one. */
async function temporaryCertificate(names: string[], clock: Clock): Promise<CertificateMaterial> {
  const { certPem, keyPem } = await selfSignedCertificate(names, clock.now());
  return { source: 'temporary', keyPem, chainPem: [certPem], chain: [new X509Certificate(certPem)], names };
}

export interface TlsFeature extends Feature {
  /** The TLS manager, once started (listen.https only). */
  readonly manager: TlsManager | undefined;
  /** The dev CA's certificate, when tls.devCa made one. */
  readonly devCaFile: string | undefined;
  reload(reason: string): void;
}

export interface AcmeFeature extends Feature {
  /** ACME HTTP-01 answers, once started (tls.acme only). */
  readonly challenge: ((token: string) => Promise<string | null>) | undefined;
}

export interface AcmeFeatureDeps {
  store: Store;
  tls: TlsManager | undefined;
  logger: Logger;
  clock: Clock;
  /** How often ACME renewal is checked (tests shorten it). */
  acmeCheckIntervalMs?: number | undefined;
}

/** The certificate files and the dev CA: needed before the HTTPS listener can be bound. */
export function createTlsFeature(config: Config, deps: { logger: Logger; clock: Clock; metrics?: Metrics }): TlsFeature {
  const { logger, clock } = deps;
  let manager: TlsManager | undefined;
  // Per certificate, named by its first SNI name (few, from the config or ACME; never a path with secrets).
  deps.metrics?.gauge('minigate_certificate_expiry_seconds', 'Seconds until each certificate in use expires, by its first name.', ['name'], {
    aggregate: 'max',
    collect: (gauge) => {
      for (const material of manager?.materials() ?? []) {
        const leaf = material.chain[0];
        if (leaf) gauge.set((Date.parse(leaf.validTo) - clock.now()) / 1000, { name: material.names[0] ?? material.source });
      }
    },
  });
  let devCaFile: string | undefined;
  return {
    name: 'tls',
    get manager() {
      return manager;
    },
    get devCaFile() {
      return devCaFile;
    },
    reload(reason) {
      manager?.reload(reason);
    },
    async start() {
      if (!config.listen.https) return;
      const keyFiles = config.tls.certificates.flatMap((c) => [c.key, c.pfx, c.jks]);
      warnIfReadable(keyFiles.filter((f): f is string => f !== undefined), logger, 'tls: the private key');
      const sources: CertificateSource[] = config.tls.certificates.map((c) => ({ config: c }));
      if (config.tls.devCa) {
        const dev = await ensureDevCertificate(config.dataDir, clock.now());
        devCaFile = dev.caFile;
        sources.push({ config: { cert: dev.certFile, key: dev.keyFile, names: ['localhost', '127.0.0.1', '::1'] } as CertificateConfig, devCa: true });
        if (dev.createdCa) logger.info({ caFile: dev.caFile }, 'tls: made a local dev CA; trust it to use https without warnings');
      }
      manager = createTlsManager({ tls: config.tls, sources, logger, clock });
      try {
        await manager.start();
      } catch (error) {
        if (error instanceof CertificateError) throw new StartError(`tls: ${error.message.split('\n').join('\n  tls: ')}`, { cause: error });
        throw error;
      }
      if (config.tls.acme) {
        // The HTTPS listener is bound before the store is open: a stand-in until the ACME step
        // installs the stored certificate (or its own stand-in) under the same key.
        const names = config.tls.acme.domains;
        manager.install(`acme:${names.join(',')}`, await temporaryCertificate(names, clock), { inspect: false });
      }
    },
    async close() {
      manager?.close();
    },
  };
}

/** tls.acme: certificates from an ACME CA, kept in the store (shared by the instances), renewed on a timer. */
export function createAcmeFeature(config: Config, deps: AcmeFeatureDeps): AcmeFeature {
  const { logger, clock } = deps;
  let acme: AcmeManager | undefined;
  return {
    name: 'acme',
    get challenge() {
      return acme?.challenge;
    },
    async start() {
      if (!config.tls.acme || !deps.tls) return;
      acme = createAcmeManager({
        settings: config.tls.acme,
        store: deps.store,
        tls: deps.tls,
        logger,
        clock,
        dataDir: config.dataDir,
        ...(deps.acmeCheckIntervalMs ? { checkIntervalMs: deps.acmeCheckIntervalMs } : {}),
        temporaryCertificate: (names) => temporaryCertificate(names, clock),
      });
      try {
        await acme.start();
      } catch (error) {
        throw new StartError(`tls.acme: ${(error as Error).message}`, { cause: error });
      }
    },
    drain() {
      // No renewal begins while minigate stops.
      acme?.close();
    },
    async close() {
      acme?.close();
    },
  };
}
