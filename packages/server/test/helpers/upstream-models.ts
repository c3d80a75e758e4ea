/**
 * How three kinds of upstream turn the target they receive into the path they route on, for the
 * traversal tests: if minigate forwards `/open/…` and an upstream routes it as `/api/…`, an
 * `auth: none` route has reached an `auth: required` one. Each returns null when that upstream
 * would refuse the target itself.
 */

/** Percent-decodes every escape once (bytes → UTF-8, invalid sequences kept as U+FFFD). */
function decodeAll(path: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    if (path[i] === '%' && /^[0-9a-f]{2}$/i.test(path.slice(i + 1, i + 3))) {
      bytes.push(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(path[i]!, 'latin1'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 3986 §5.2.4 over a path; null when `..` climbs above the root. */
function resolveDots(path: string): string | null {
  const out: string[] = [];
  const segments = path.split('/').slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.' || s === '..') {
      if (s === '..') {
        if (out.length === 0) return null;
        out.pop();
      }
      if (i === segments.length - 1) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

const pathOnly = (target: string) => target.split('?')[0]!.split('#')[0]!;

/** Express, Koa, Fastify and browsers: WHATWG URL parsing (which treats `\` as `/` and `%2e` as `.`), then a decode. */
export function whatwgPath(target: string): string | null {
  let pathname: string;
  try {
    pathname = new URL(target, 'http://upstream.test').pathname;
  } catch {
    return null;
  }
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** nginx (merge_slashes on): decodes the escapes, merges slash runs, resolves dot-segments (400 above the root). */
export function nginxPath(target: string): string | null {
  const decoded = decodeAll(pathOnly(target)).replace(/\/{2,}/g, '/');
  return resolveDots(decoded);
}

/** Tomcat / Spring: strips `;` parameters of each raw segment, decodes, normalises slashes and dots. */
export function tomcatPath(target: string): string | null {
  const stripped = pathOnly(target)
    .split('/')
    .map((segment) => segment.split(';')[0]!)
    .join('/');
  // Spring's UrlPathHelper strips `;` again after decoding (`%3B`).
  const decoded = decodeAll(stripped)
    .split('/')
    .map((segment) => segment.split(';')[0]!)
    .join('/')
    .replace(/\/{2,}/g, '/');
  return resolveDots(decoded);
}

export const UPSTREAM_MODELS = { whatwg: whatwgPath, nginx: nginxPath, tomcat: tomcatPath };

/** True when the path is the prefix or under it (`/api`, `/api/…`). */
export function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Whole path segments for the property tests: targets are these joined by `/`, so that traversal
 * in every disguise lands next to the prefix it could climb into.
 */
export const HOSTILE_SEGMENTS = [
  '..', '..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '.', '%2e', '', '..;', '..;x', '.;', '%2e%2e;', '..%3b', '..%3Bx', '%252e%252e',
  '%25%32%65%25%32%65', '..\\', '..%5c', '%c0%ae%c0%ae', 'api', 'api', 'API', 'x', 'open', 'internal', 'admin', 'a;b', '~',
];

/** Pieces hostile targets are built from: traversal in every disguise, slash runs, parameters, case. */
export const HOSTILE_PIECES = [
  '/', '//', '.', '..', '%2e', '%2E', '%2e%2e', '.%2e', '%2E.', '%252e', '%252e%252e', '%25%32%65', '%2f', '%2F', '%252f',
  '%5c', '%5C', '\\', '..\\', ';', ';x', '..;', ';jsessionid=1', '%3b', '%3B', '..%3b', '%00', '%0a', '%c0%ae', '%C0%AF',
  '%e0%80%ae', '%ff', 'é', '%c3%a9', 'api', 'API', 'Api', 'open', 'x', 'admin', 'internal', '?', '?a=../api', '#', '%23',
  '%3f', '*', '~', '%7e', '%41pi', '%61pi', '%u002e', '&', '=', '@', ':', '+',
];
