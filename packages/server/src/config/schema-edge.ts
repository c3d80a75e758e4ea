/**
 * The edge part of the config schema: listeners, TLS and certificates, routes, proxies.
 * (See schema.ts for the conventions.)
 */
import { RELAY_NAME_PATTERN } from 'minigate-protocol';
import { z } from 'zod';
import { routeRateLimitSchema } from './schema-limits.js';
import { duration, filePath, hostname, secret } from './schema-types.js';

export const HSTS_MAX_AGE_DEFAULT = '730d';
export const ROUTE_BODY_LIMIT_DEFAULT = 1024 * 1024;
export const UPSTREAM_TIMEOUT_DEFAULT = '60s';
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

const CERT_KINDS = ['cert', 'pfx', 'jks'] as const;
const CERT_FIELDS: Record<(typeof CERT_KINDS)[number], string[]> = {
  cert: ['cert', 'key', 'chain', 'names'],
  pfx: ['pfx', 'passphrase', 'names'],
  jks: ['jks', 'password', 'alias', 'names'],
};

export const certificateSchema = z
  .strictObject({
    cert: filePath('PEM certificate (the leaf, optionally followed by the chain: fullchain.pem, _bundle.crt).').optional(),
    key: filePath('PEM private key of `cert`.').optional(),
    chain: filePath('PEM intermediates, when `cert` holds only the leaf.').optional(),
    pfx: filePath('PKCS#12 / PFX file (the Tomcat/IIS download).').optional(),
    passphrase: secret('Passphrase of the PFX file.').optional(),
    jks: filePath('Java keystore (.jks, as Spring Boot uses).').optional(),
    password: secret('Store password of the JKS file (also used for its key).').optional(),
    alias: z.string().min(1).optional().meta({ description: 'Which key entry of the JKS file (default: the only one).' }),
    names: z
      .array(hostname)
      .min(1)
      .optional()
      .meta({ description: 'Server names (SNI) this certificate answers; default: the names in the certificate.' }),
  })
  .superRefine((entry, ctx) => {
    const kinds = CERT_KINDS.filter((k) => entry[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of cert (+ key), pfx or jks' });
      return;
    }
    const kind = kinds[0]!;
    for (const key of Object.keys(entry) as (keyof typeof entry)[]) {
      if (entry[key] !== undefined && !CERT_FIELDS[kind].includes(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `does not go with ${kind}` });
      }
    }
    if (kind === 'cert' && entry.key === undefined) ctx.addIssue({ code: 'custom', path: ['key'], message: 'is required with cert' });
  })
  .meta({ description: 'A certificate and its key: PEM files, a PFX, or a JKS keystore.' });

export const tlsSchema = z
  .strictObject({
    minVersion: z
      .enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])
      .default('TLSv1.2')
      .meta({ description: 'Oldest TLS version accepted. Below TLSv1.2 only for very old Android clients (a warning at start).' }),
    http2: z.boolean().default(false).meta({ description: 'Offer HTTP/2 by ALPN (HTTP/1.1 stays available).' }),
    hsts: z
      .union([
        z.boolean(),
        z.strictObject({
          maxAge: duration('max-age of Strict-Transport-Security.', '1s').prefault(HSTS_MAX_AGE_DEFAULT),
          includeSubDomains: z.boolean().default(false),
          preload: z.boolean().default(false),
        }),
      ])
      .default(false)
      .meta({ description: 'Send Strict-Transport-Security on HTTPS answers (true: max-age two years).' }),
    certificates: z.array(certificateSchema).default([]).meta({ description: 'Certificates, chosen by SNI.' }),
    acme: z
      .strictObject({
        email: z.email().meta({ description: 'Account contact for the CA.' }),
        domains: z.array(hostname).min(1).meta({ description: 'Names to get a certificate for (HTTP-01 on listen.http, port 80).' }),
        directory: z.url().default(LETS_ENCRYPT_DIRECTORY).meta({ description: "The CA's ACME directory URL." }),
        caFile: filePath('Extra CA to trust when talking to the ACME directory (test CAs such as pebble).').optional(),
      })
      .optional()
      .meta({ description: 'Certificates from an ACME CA (Let’s Encrypt by default), renewed automatically.' }),
    devCa: z
      .boolean()
      .default(false)
      .meta({ description: 'A local CA in dataDir and a certificate for localhost/127.0.0.1 (minigate dev turns it on).' }),
    checkDomains: z
      .boolean()
      .default(true)
      .meta({ description: 'Half a minute after start, check the served domains against WeChat\'s server-domain rules (as `minigate check -c`) and log what fails.' }),
  })
  .prefault({})
  .meta({ description: 'TLS for listen.https.' });

export const routeSchema = z
  .strictObject({
    path: z
      .string()
      .regex(/^\/[^\s?#]*$/, { error: 'expected a path starting with / (a prefix: /api matches /api and /api/…)' })
      .meta({ description: 'Path prefix; the longest matching prefix wins.' }),
    host: hostname.optional().meta({ description: 'Only for requests to this host name.' }),
    proxy: z
      .union([z.url({ protocol: /^https?$/ }), z.array(z.url({ protocol: /^https?$/ })).min(1)])
      .optional()
      .meta({ description: 'Upstream URL, or a list (round robin, an upstream that fails is skipped for 10 s). A path in the URL replaces the route prefix.' }),
    static: filePath('Directory to serve files from.').optional(),
    redirect: z.url().optional().meta({ description: 'Answer 308 to this URL (a URL ending in / gets the rest of the path).' }),
    tunnel: z
      .string()
      .regex(RELAY_NAME_PATTERN, { error: 'expected a relay name: lower-case letters, digits and -, at most 32' })
      .optional()
      .meta({ description: 'Send to the relay client (`minigate tunnel`) holding this name, after TLS, limits and auth, with the same identity headers as proxy (needs `relay`).' }),
    service: z.enum(['auth', 'wafer', 'push', 'channel', 'files', 'pay']).optional().meta({ description: 'A built-in service, mounted at this path.' }),
    auth: z
      .enum(['none', 'optional', 'required'])
      .default('none')
      .meta({ description: 'required: 401 without a session; optional and required: identity headers to the upstream.' }),
    forwardAuthorization: z
      .boolean()
      .default(true)
      .meta({
        description:
          'proxy with auth none: pass the client\'s Authorization: Bearer header (a minigate session token, if the client sends one) to the upstream; false drops it. With auth optional or required it is always dropped (the upstream gets the identity headers instead).',
      }),
    spa: z.boolean().default(false).meta({ description: 'static: answer index.html for paths that are not files.' }),
    maxBodyBytes: z
      .number()
      .int()
      .min(0)
      .default(ROUTE_BODY_LIMIT_DEFAULT)
      .meta({ description: 'Largest request body (413 beyond, before reading it).' }),
    timeout: duration('proxy: time for the upstream to answer (504 beyond).', '100ms').prefault(UPSTREAM_TIMEOUT_DEFAULT),
    rateLimit: routeRateLimitSchema.optional(),
  })
  .superRefine((route, ctx) => {
    const targets = (['proxy', 'static', 'redirect', 'service', 'tunnel'] as const).filter((k) => route[k] !== undefined);
    if (targets.length !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of proxy, static, redirect, service or tunnel' });
    if (route.rateLimit && !route.proxy && !route.static && !route.tunnel) {
      ctx.addIssue({ code: 'custom', path: ['rateLimit'], message: 'goes with proxy, static or tunnel routes (built-in services have their own: limits.*)' });
    }
  })
  .meta({ description: 'What a path serves.' });

export type RouteConfig = z.output<typeof routeSchema>;
export type CertificateConfig = z.output<typeof certificateSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
