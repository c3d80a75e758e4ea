/**
 * The certificates the HTTPS listener serves, chosen by SNI, and kept current: a certificate
 * file that changes on disk (or SIGHUP, or a renewal) is loaded into a new secure context while
 * open connections keep theirs; a new certificate that does not load is refused with a log line
 * and the old one stays.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TlsOptions } from 'node:tls';
import type { CertificateConfig, TlsConfig } from '../../config/schema-edge.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { CertificateError, inspectCertificate, loadCertificate, type CertificateMaterial } from './certificates.js';

/** Mozilla "intermediate": ECDHE with AEAD ciphers for TLS 1.2, and TLS 1.3's suites. */
export const MODERN_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
/** TLS 1.0/1.1 have no AEAD suites: the ECDHE CBC ones, only when old clients are let in. */
const LEGACY_CIPHERS = 'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA';
const ECDH_CURVES = 'X25519:prime256v1:secp384r1';
/** How often certificate files are looked at for changes. */
export const CERT_WATCH_INTERVAL_MS = 1_000;

export interface CertificateSource {
  /** A configured certificate, or one the ACME manager or the dev CA supplies. */
  config: CertificateConfig;
  /** The dev CA's certificate: its untrusted root is expected. */
  devCa?: boolean;
}

interface Loaded {
  source: CertificateSource;
  material: CertificateMaterial;
  context: SecureContext;
}

export interface TlsManager {
  /** Options to create the HTTPS (or HTTP/2) server with. */
  serverOptions(): TlsOptions;
  /** Loads every certificate; throws CertificateError listing the unusable ones. */
  start(): Promise<void>;
  /** Lets the manager replace the default certificate of a server on reload. */
  attach(server: TlsServer): void;
  /** Loads every certificate again; one that fails keeps its previous version. */
  reload(reason: string): void;
  /** Adds or replaces a certificate that is not from the config file (ACME); `inspect: false` for a stand-in. */
  install(key: string, material: CertificateMaterial, options?: { inspect?: boolean }): void;
  /** Current materials, for status and tests. */
  materials(): CertificateMaterial[];
  close(): void;
}

export interface TlsManagerOptions {
  tls: TlsConfig;
  sources: CertificateSource[];
  logger: Logger;
  clock: Clock;
}

export function createTlsManager(options: TlsManagerOptions): TlsManager {
  const { tls, logger, clock } = options;
  const legacy = tls.minVersion === 'TLSv1' || tls.minVersion === 'TLSv1.1';
  const common: SecureContextOptions = {
    minVersion: tls.minVersion,
    maxVersion: 'TLSv1.3',
    // OpenSSL 3 refuses TLS 1.0/1.1 at its default security level.
    ciphers: legacy ? `${MODERN_CIPHERS}:${LEGACY_CIPHERS}:@SECLEVEL=0` : MODERN_CIPHERS,
    honorCipherOrder: true,
    ecdhCurve: ECDH_CURVES,
  };
  /** Configured and dev certificates, in config order (the first is the default). */
  let loaded: (Loaded | undefined)[] = [];
  /** Certificates installed at run time (ACME), by key. */
  const installed = new Map<string, Loaded>();
  const servers = new Set<TlsServer>();
  const watched = new Set<string>();
  let reloadTimer: NodeJS.Timeout | undefined;
  let exact = new Map<string, SecureContext>();
  let wildcards: [string, SecureContext][] = [];
  let fallback: Loaded | undefined;

  const contextOf = (material: CertificateMaterial) =>
    createSecureContext({ ...common, key: material.keyPem, cert: material.chainPem.join('') });

  function rebuild(): void {
    const all = [...installed.values(), ...loaded.filter((l): l is Loaded => l !== undefined)];
    exact = new Map();
    wildcards = [];
    // Configured certificates win over installed ones for the same name (an operator's choice).
    for (const entry of [...all].reverse()) {
      for (const name of entry.material.names) {
        if (name.startsWith('*.')) wildcards.unshift([name.slice(1), entry.context]);
        else exact.set(name, entry.context);
      }
    }
    const previous = fallback;
    fallback = loaded.find((l) => l !== undefined) ?? installed.values().next().value;
    if (fallback && fallback !== previous) {
      for (const server of servers) server.setSecureContext({ ...common, key: fallback.material.keyPem, cert: fallback.material.chainPem.join('') });
    }
  }

  function check(material: CertificateMaterial, devCa: boolean, atStart: boolean): string[] {
    const { errors, warnings } = inspectCertificate(material, clock.now(), { devCa });
    for (const warning of warnings) logger.warn({ certificate: material.source }, `tls: ${warning}`);
    if (!atStart) for (const error of errors) logger.error({ certificate: material.source }, `tls: ${error}`);
    return errors;
  }

  function watch(config: CertificateConfig): void {
    for (const file of [config.cert, config.key, config.chain, config.pfx, config.jks]) {
      if (!file || watched.has(file)) continue;
      watched.add(file);
      watchFile(file, { interval: CERT_WATCH_INTERVAL_MS, persistent: false }, (now, before) => {
        if (now.mtimeMs !== before.mtimeMs || now.size !== before.size || now.ino !== before.ino) {
          clearTimeout(reloadTimer);
          // Writers replace a key and a certificate one after the other; wait for both.
          reloadTimer = setTimeout(() => manager.reload(`${file} changed`), 300);
        }
      });
    }
  }

  const manager: TlsManager = {
    serverOptions() {
      if (!fallback) throw new Error('no certificate loaded');
      return {
        ...common,
        key: fallback.material.keyPem,
        cert: fallback.material.chainPem.join(''),
        SNICallback: (servername, callback) => {
          const name = servername.toLowerCase();
          let context = exact.get(name);
          if (!context) {
            const dot = name.indexOf('.');
            const suffix = dot === -1 ? undefined : name.slice(dot);
            context = wildcards.find(([w]) => w === suffix)?.[1];
          }
          callback(null, context ?? fallback?.context);
        },
      };
    },

    async start() {
      const problems: string[] = [];
      if (legacy) {
        logger.warn(
          { minVersion: tls.minVersion },
          'tls: TLS 1.0/1.1 are enabled for very old Android clients; they are weak and WeChat needs only TLS 1.2',
        );
      }
      loaded = options.sources.map((source) => {
        try {
          const material = loadCertificate(source.config);
          const errors = check(material, source.devCa === true, true);
          if (errors.length) {
            problems.push(...errors);
            return undefined;
          }
          watch(source.config);
          return { source, material, context: contextOf(material) };
        } catch (error) {
          if (error instanceof CertificateError) {
            problems.push(error.message);
            return undefined;
          }
          throw error;
        }
      });
      if (problems.length) throw new CertificateError(problems.join('\n'));
      rebuild();
    },

    attach(server) {
      servers.add(server);
    },

    reload(reason) {
      logger.info({ reason }, 'tls: reloading certificates');
      loaded = loaded.map((previous, i) => {
        const source = options.sources[i]!;
        try {
          const material = loadCertificate(source.config);
          if (check(material, source.devCa === true, false).length) throw new CertificateError('unusable, see above');
          const unchanged = previous && previous.material.chainPem.join('') === material.chainPem.join('') && previous.material.keyPem === material.keyPem;
          if (unchanged) return previous;
          logger.info({ certificate: material.source, validTo: material.chain[0]!.validTo }, 'tls: new certificate in use');
          return { source, material, context: contextOf(material) };
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          logger.error({ certificate: source.config.cert ?? source.config.pfx ?? source.config.jks, reason: message }, 'tls: new certificate refused; the previous one stays in use');
          return previous;
        }
      });
      rebuild();
    },

    install(key, material, installOptions = {}) {
      if (installOptions.inspect !== false) check(material, false, false);
      installed.set(key, { source: { config: {} as CertificateConfig }, material, context: contextOf(material) });
      rebuild();
    },

    materials() {
      return [...loaded.filter((l): l is Loaded => l !== undefined), ...installed.values()].map((l) => l.material);
    },

    close() {
      clearTimeout(reloadTimer);
      for (const file of watched) unwatchFile(file);
      watched.clear();
      servers.clear();
    },
  };
  return manager;
}
