/**
 * WeChat's rules for a server-domain URL (docs/wechat-api.md §9.1), checked without the network:
 * https (wss for sockets), a domain name (not an IP or localhost), not api.weixin.qq.com, no
 * port unless that exact port is what is whitelisted (sockets: any port), and no path, query or
 * credentials to surprise anyone.
 */
import { isIP } from 'node:net';
import type { CheckResult, CheckType } from './types.js';

export interface ParsedTarget {
  host: string;
  port: number;
  /** The URL as it goes into the console list: scheme://host[:port]. */
  origin: string;
}

const CONSOLE_FIELD: Record<CheckType, string> = {
  request: 'request合法域名',
  socket: 'socket合法域名',
  upload: 'uploadFile合法域名',
  download: 'downloadFile合法域名',
};

export function consoleLine(type: CheckType, origin: string): string {
  return `${CONSOLE_FIELD[type]}: ${origin}`;
}

/** The URL check, and the target when the URL can be probed at all. */
export function checkUrl(text: string, type: CheckType): { result: CheckResult; target: ParsedTarget | null } {
  const fail = (detail: string, fix: string) => ({ result: { id: 'url' as const, title: 'URL rules', verdict: 'fail' as const, detail, fix }, target: null });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(`not a URL: ${JSON.stringify(text)}`, 'write it as https://api.example.com (wss://… for a socket)');
  }
  const scheme = type === 'socket' ? 'wss:' : 'https:';
  if (url.protocol !== scheme) {
    return fail(`${url.protocol.replace(':', '')}:// is not allowed for ${type}`, `mini programs only use ${scheme.replace(':', '')}:// here: serve TLS and use ${scheme}//${url.host}`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(host)) return fail(`${host} is an IP address`, 'WeChat takes domain names only: point a domain (with ICP filing) at this address');
  if (host === 'localhost' || host.endsWith('.localhost')) return fail(`${host} is not reachable from a phone`, 'use a public domain; locally, tick 不校验合法域名 in DevTools');
  if (host === 'api.weixin.qq.com') return fail('api.weixin.qq.com cannot be a server domain', "call WeChat's API from your server (minigate's internal API), never from the mini program");
  if (!host.includes('.')) return fail(`${host} is not a public domain name`, 'use the full domain, e.g. api.example.com');
  if (url.username || url.password) return fail('the URL carries credentials', 'remove user:password@ from the URL');

  const notes: string[] = [];
  let verdict: CheckResult['verdict'] = 'pass';
  let fix: string | undefined;
  // `new URL` drops a default :443, so the port is read from the text.
  const explicitPort = /^[a-z]+:\/\/[^/?#]*:(\d+)/i.exec(text)?.[1];
  if (explicitPort === '443' && type !== 'socket') {
    return fail(`${host}:443 names the default port`, 'drop ":443": a domain listed without a port refuses URLs that name one, even :443');
  }
  if (explicitPort !== undefined && type !== 'socket') {
    verdict = 'warn';
    notes.push(`port :${explicitPort}`);
    fix = `works only if the console lists https://${host}:${explicitPort} exactly; without a port is simpler`;
  }
  if (url.search || url.hash) {
    verdict = 'warn';
    notes.push('query or fragment');
    fix ??= 'the console takes scheme://host only; the checks ignore the query';
  }
  const port = Number(url.port || 443);
  const origin = `${scheme}//${host}${explicitPort !== undefined && (type === 'socket' ? explicitPort !== '443' : true) ? `:${explicitPort}` : ''}`;
  return {
    result: { id: 'url', title: 'URL rules', verdict, detail: notes.length ? `${origin} (${notes.join(', ')})` : `${origin} follows the rules`, ...(fix ? { fix } : {}) },
    target: { host, port, origin },
  };
}
