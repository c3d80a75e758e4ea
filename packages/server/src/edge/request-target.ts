/**
 * One normalisation of the request target, at the edge, before routing: routing, the session
 * check and the upstream all see the same path. Upstreams (nginx, Tomcat, Spring, Express)
 * resolve `..`, merge slashes and strip `;` parameters on their own; if minigate routed on the
 * raw path, `/open/../api/x` would be checked as `/open` and served as `/api/x`.
 *
 * What is done, in order (docs/edge.md, "Security model"):
 * - absolute-form (`GET http://host/p`, RFC 9112 §3.2.2): the authority is kept (it replaces
 *   Host) and the path is normalised like any other; `*` only with OPTIONS;
 * - percent-escapes of unreserved characters are decoded (`%2E` → `.`, `%41` → `A`), the others
 *   kept with upper-case hex; raw bytes above 0x7F are escaped;
 * - repeated slashes are merged, then dot-segments removed (RFC 3986 §5.2.4);
 * - refused: a `..` above the root, a `.`/`..` segment carrying `;` parameters (Tomcat's `..;`),
 *   an escaped `/`, `\`, NUL or other control character, a double-escaped `.`, `/`, `\` or NUL
 *   (`%252e`), a raw `\` or `#`, a malformed escape, invalid or overlong UTF-8.
 * The query string passes unchanged.
 */
import type { IncomingMessage } from 'node:http';
import { AppError } from '../core/index.js';

export interface RequestTarget {
  /** The normalised path: starts with `/` (or is `*` for OPTIONS). */
  path: string;
  /** The query string, unchanged, without `?`. */
  query: string;
  /** The authority of an absolute-form target (lower-case), which replaces Host. */
  authority?: string;
}

/** Anything that could need work; a target without any of these is already normal. */
const NEEDS_WORK = /[%;\\#]|\/\/|\/\.|[^\x21-\x7e]/;
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)(.*)$/is;
/** host[:port], a bracketed IPv6 literal[:port]; no userinfo. */
const AUTHORITY = /^(?:[a-z0-9._~!$&'()*+,;=-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;
const HEX = /^[0-9a-f]{2}$/i;
const DOUBLE_ENCODED = /%25(2e|2f|5c|00)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function refuse(why: string): never {
  throw new AppError('REQUEST_TARGET_INVALID', { message: `The request path is refused: ${why}.` });
}

/** Unreserved characters (RFC 3986 §2.3): their escapes are decoded. */
function unreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2d ||
    byte === 0x2e ||
    byte === 0x5f ||
    byte === 0x7e
  );
}

/** Bytes that, once decoded by an upstream, change how the path splits or reads. */
function dangerous(byte: number): string | null {
  if (byte === 0x2f) return 'an encoded "/" inside a segment';
  if (byte === 0x5c) return 'an encoded "\\"';
  if (byte === 0) return 'an encoded NUL';
  if (byte < 0x20 || byte === 0x7f) return 'an encoded control character';
  return null;
}

/** Decodes unreserved escapes, upper-cases the rest, escapes raw high bytes, checks UTF-8. */
function decodeUnreserved(path: string): string {
  let out = '';
  // Bytes of the current run of non-ASCII (escaped or raw), checked as UTF-8 when it ends.
  let run: number[] = [];
  const endRun = () => {
    if (run.length === 0) return;
    try {
      utf8.decode(new Uint8Array(run));
    } catch {
      refuse('invalid or overlong UTF-8 in an escape');
    }
    run = [];
  };
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX.test(hex)) refuse('a "%" not followed by two hex digits');
      const byte = parseInt(hex, 16);
      i += 2;
      if (byte >= 0x80) {
        run.push(byte);
        out += `%${hex.toUpperCase()}`;
        continue;
      }
      endRun();
      const why = dangerous(byte);
      if (why) refuse(why);
      if (unreserved(byte)) out += String.fromCharCode(byte);
      else out += `%${hex.toUpperCase()}`;
      continue;
    }
    if (c > 0xff) refuse('a character outside Latin-1 in the target');
    if (c >= 0x80) {
      // Node hands raw bytes over as Latin-1 characters: escape them like a client should have.
      run.push(c);
      out += `%${c.toString(16).toUpperCase()}`;
      continue;
    }
    endRun();
    if (c === 0x5c) refuse('a "\\" in the path');
    if (c === 0x23) refuse('a "#" in the path');
    if (c <= 0x20 || c === 0x7f) refuse('a control character or space in the path');
    out += path[i];
  }
  endRun();
  // `%25` before what decodes again to a dot, a slash, a backslash or NUL (`%252e`, also built
  // from escaped digits as in `%25%32%65`): an upstream that decodes twice would see traversal.
  if (DOUBLE_ENCODED.test(out)) refuse('a double-encoded ".", "/", "\\" or NUL');
  return out;
}

/** Merges repeated slashes, then removes dot-segments; refuses climbing above the root. */
function removeDotSegments(path: string): string {
  const input = path.split('/');
  // input[0] is '' (the path starts with '/'); a trailing '' means a trailing slash.
  const output: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < input.length; i++) {
    const segment = input[i]!;
    const last = i === input.length - 1;
    trailingSlash = false;
    if (segment === '') {
      if (last) trailingSlash = true;
      continue;
    }
    // `;` starts path parameters (Tomcat strips them raw, Spring after decoding `%3B` too).
    const semicolon = segment.search(/;|%3B/);
    const bare = semicolon === -1 ? segment : segment.slice(0, semicolon);
    if (bare === '.' || bare === '..') {
      if (semicolon !== -1) refuse(`a "${bare}" segment with ";" parameters`);
      if (bare === '..') {
        if (output.length === 0) refuse('a ".." above the root');
        output.pop();
      }
      if (last) trailingSlash = true;
      continue;
    }
    output.push(segment);
  }
  if (output.length === 0) return '/';
  return `/${output.join('/')}${trailingSlash ? '/' : ''}`;
}

/**
 * The normalised target of a request, or REQUEST_TARGET_INVALID (400). CONNECT (authority-form)
 * is the caller's to refuse before this.
 */
export function normalizeRequestTarget(raw: string, method: string): RequestTarget {
  let target = raw;
  let authority: string | undefined;
  if (target === '*') {
    if (method !== 'OPTIONS') refuse('"*" is only for OPTIONS');
    return { path: '*', query: '' };
  }
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (!absolute) refuse('it must start with "/" or be an absolute http(s) URL');
    if (!AUTHORITY.test(absolute[2]!)) refuse('the absolute URL has no valid host (or carries credentials)');
    authority = absolute[2]!.toLowerCase();
    const rest = absolute[3]!;
    target = rest === '' ? '/' : rest.charCodeAt(0) === 0x3f /* ? */ ? `/${rest}` : rest;
    if (target.charCodeAt(0) !== 0x2f) refuse('the absolute URL has no valid path');
  }
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  const path = NEEDS_WORK.test(rawPath) ? removeDotSegments(decodeUnreserved(rawPath)) : rawPath;
  return authority === undefined ? { path, query } : { path, query, authority };
}

/**
 * Normalises `req`'s target in place (req.url becomes the normal path and the unchanged query;
 * an absolute-form authority becomes Host), so that every reader of the request sees one path.
 */
export function applyRequestTarget(req: IncomingMessage): RequestTarget {
  const raw = req.url ?? '/';
  const target = normalizeRequestTarget(raw, req.method ?? 'GET');
  if (target.authority !== undefined) req.headers.host = target.authority;
  // Most targets are already normal: req.url is then left as it is (no new string per request).
  const normal = target.query ? `${target.path}?${target.query}` : target.path;
  if (normal !== raw) req.url = normal;
  return target;
}
