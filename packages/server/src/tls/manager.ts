/**
 * The certificates the HTTPS listener serves, chosen by SNI, and kept current: a certificate
 * file that changes on disk (or SIGHUP, or a renewal) is loaded into a new secure context while
 * open connections keep theirs; a new certificate that does not load is refused with a log line
 * and the old one stays.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TlsOptions } from 'node:tls';
import type { CertificateConfig, TlsConfig } from '../config/index.js';
import type { Clock, Logger } from '../core/index.js';
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
  /** Its own context (made at load, which also checks OpenSSL takes the key and chain). */
  context: SecureContext;
  /** Supplied at run time (ACME), not configured. */
  installed?: boolean;
}

/**
 * OpenSSL keeps one certificate per key type in a context (RSA, RSA-PSS, EC, Ed25519) and
 * picks among them by the signature algorithms the client offers: an RSA and an ECDSA
 * certificate for one name are served from one context, each to the clients that can use it.
 */
const keyTypeOf = (entry: Loaded) => entry.material.chain[0]!.publicKey.asymmetricKeyType ?? 'unknown';

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
  let fallback: { group: Loaded[]; context: SecureContext } | undefined;

  const contextOf = (material: CertificateMaterial) =>
    createSecureContext({ ...common, key: material.keyPem, cert: material.chainPem.join('') });
  /** Key and certificate options for a group: one certificate per key type. */
  const pairOptions = (group: Loaded[]) => ({ key: group.map((l) => l.material.keyPem), cert: group.map((l) => l.material.chainPem.join('')) });
  /** Contexts of groups of several certificates, by the identity of their members. */
  let combined = new Map<string, SecureContext>();
  const ids = new WeakMap<Loaded, number>();
  let nextId = 0;
  const idOf = (entry: Loaded) => {
    if (!ids.has(entry)) ids.set(entry, ++nextId);
    return ids.get(entry)!;
  };
  let fallbackKey = '';

  /**
   * The certificates serving each name (exact, or `*.suffix`), in priority order: configured
   * ones in config order, then installed ones for names no configured certificate covers; of
   * each key type the first only.
   */
  function groups(): Map<string, Loaded[]> {
    const byName = new Map<string, Loaded[]>();
    const all = [...loaded.filter((l): l is Loaded => l !== undefined), ...installed.values()];
    for (const entry of all) {
      for (const name of entry.material.names) {
        const group = byName.get(name) ?? [];
        if (entry.installed && group.some((l) => !l.installed)) continue;
        if (group.some((l) => keyTypeOf(l) === keyTypeOf(entry))) continue;
        group.push(entry);
        byName.set(name, group);
      }
    }
    return byName;
  }

  /** Warns about two configured certificates of one key type for one name: only the first serves it. */
  function warnShadowed(): void {
    const configured = loaded.filter((l): l is Loaded => l !== undefined);
    const seen = new Map<string, Loaded>();
    for (const entry of configured) {
      for (const name of entry.material.names) {
        const first = seen.get(`${keyTypeOf(entry)} ${name}`);
        if (!first) seen.set(`${keyTypeOf(entry)} ${name}`, entry);
        else if (first !== entry) {
          logger.warn(
            { name, served: first.material.source, unused: entry.material.source },
            `tls: two ${keyTypeOf(entry).toUpperCase()} certificates for "${name}"; only the first (${first.material.source}) is served for it — remove the other, or give one an RSA and the other an ECDSA key`,
          );
        }
      }
    }
  }

  function rebuild(): void {
    const byName = groups();
    const previous = combined;
    combined = new Map();
    const contextFor = (group: Loaded[]): SecureContext => {
      if (group.length === 1) return group[0]!.context;
      const key = group.map(idOf).join(',');
      const context = previous.get(key) ?? combined.get(key) ?? createSecureContext({ ...common, ...pairOptions(group) });
      combined.set(key, context);
      return context;
    };
    exact = new Map();
    wildcards = [];
    for (const [name, group] of byName) {
      if (name.startsWith('*.')) wildcards.push([name.slice(1), contextFor(group)]);
      else exact.set(name, contextFor(group));
    }
    // The default (clients that send no name): the first certificate, with its name's other key types.
    const first = loaded.find((l): l is Loaded => l !== undefined) ?? installed.values().next().value;
    // (The first certificate always heads the group of its first name.)
    const group = first ? (byName.get(first.material.names[0] ?? '') ?? [first]) : [];
    fallback = group.length ? { group, context: contextFor(group) } : undefined;
    const key = group.map(idOf).join(',');
    if (fallback && key !== fallbackKey) {
      for (const server of servers) server.setSecureContext({ ...common, ...pairOptions(fallback.group) });
    }
    fallbackKey = key;
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
        ...pairOptions(fallback.group),
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
      warnShadowed();
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
      warnShadowed();
      rebuild();
    },

    install(key, material, installOptions = {}) {
      if (installOptions.inspect !== false) check(material, false, false);
      installed.set(key, { source: { config: {} as CertificateConfig }, material, context: contextOf(material), installed: true });
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
