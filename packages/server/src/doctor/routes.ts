import { operations } from './schemas.js';
import type { CertificateConfig, Config } from '../config/index.js';
import { AppError } from '../core/index.js';
import { readJsonBody, sendJson, type Router } from '../http/index.js';
import { CertificateError, loadCertificate } from '../tls/index.js';
import { CHECK_TIMEOUT_MS, runChecks } from './checks.js';
import type { CheckType } from './types.js';

/** The URLs a config serves: each domain (ACME, certificate names, route hosts) for requests, and for sockets when channels are on. */
export function configuredUrls(config: Config): { url: string; type: CheckType }[] {
  if (!config.listen.https) return [];
  const names = new Set<string>();
  for (const name of config.tls.acme?.domains ?? []) names.add(name.toLowerCase());
  // Without names:, a certificate serves the names in it: those are the domains to check.
  for (const cert of config.tls.certificates) for (const name of cert.names ?? servedNames(cert)) names.add(name.toLowerCase());
  for (const route of config.routes) if (route.host) names.add(route.host.toLowerCase());
  const port = config.listen.https.port;
  const urls: { url: string; type: CheckType }[] = [];
  for (const name of names) {
    if (name.startsWith('*.') || !name.includes('.')) continue; // a wildcard names no one host
    const origin = `${name}${port === 443 ? '' : `:${port}`}`;
    urls.push({ url: `https://${origin}/`, type: 'request' });
    if (config.channel.enabled) urls.push({ url: `wss://${origin}${config.channel.path}`, type: 'socket' });
  }
  return urls;
}

/** The names a certificate file is for (none when it cannot be read: validate and start say why). */
function servedNames(cert: CertificateConfig): string[] {
  try {
    return loadCertificate(cert).names;
  } catch (error) {
    if (error instanceof CertificateError) return [];
    throw error;
  }
}

const TYPES: readonly CheckType[] = ['request', 'socket', 'upload', 'download'];
/** URLs one internal call may check (each takes up to a few timeouts). */
const MAX_URLS = 10;

/** `POST /v1/check {urls: [{url, type?}], resolve?: {name: ip}}` → the --json report, for the admin console. */
export function registerCheckRoutes(router: Router): void {
  router.route('POST', '/v1/check', operations.check, async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const list = Array.isArray(body.urls) ? body.urls : typeof body.url === 'string' ? [{ url: body.url, type: body.type }] : null;
    if (!list || list.length === 0 || list.length > MAX_URLS) throw new AppError('BAD_REQUEST', { message: `urls: 1 to ${MAX_URLS} of {url, type?}.` });
    const urls = list.map((entry: unknown) => {
      const { url, type = 'request' } = (entry ?? {}) as { url?: unknown; type?: unknown };
      if (typeof url !== 'string' || !TYPES.includes(type as CheckType)) throw new AppError('BAD_REQUEST', { message: `each entry: {url, type?: ${TYPES.join(' | ')}}.` });
      return { url, type: type as CheckType };
    });
    const resolve = new Map<string, string>();
    for (const [name, ip] of Object.entries((body.resolve ?? {}) as Record<string, unknown>)) {
      if (typeof ip !== 'string' || !/^[0-9a-f.:]+$/i.test(ip)) throw new AppError('BAD_REQUEST', { message: 'resolve: {name: ip}.' });
      resolve.set(name.toLowerCase(), ip);
    }
    sendJson(ctx.res, 200, await runChecks(urls, { timeoutMs: CHECK_TIMEOUT_MS, ca: [], resolve }, 60_000));
  });
}
