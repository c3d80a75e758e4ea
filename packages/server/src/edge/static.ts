/**
 * Static files (an admin site, a landing page): index.html, optional SPA fallback, ETag and
 * Last-Modified validation, single byte ranges, and no way out of the root (path traversal):
 * encoded slashes, `..`, NUL and symlinks leading outside are refused before any file is opened.
 */
import { createReadStream, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { AppError } from '../core/index.js';
import { parseRange, type HttpContext } from '../http/index.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.mp4': 'video/mp4',
  '.mp3': 'audio/mpeg',
};

export function contentType(file: string): string {
  return TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export interface StaticOptions {
  root: string;
  spa: boolean;
}

/** The safe relative path of a request, or null when it tries to leave the root or is malformed. */
export function safeRelativePath(rest: string): string | null {
  // Encoded separators and NUL are refused outright rather than interpreted.
  if (/%(2f|5c|00)/i.test(rest)) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.some((s) => s === '..')) return null;
  return segments.join('/');
}

export function createStaticHandler(options: StaticOptions) {
  let rootReal: Promise<string> | undefined;
  const root = () => {
    // A root that does not exist (yet) is asked again next time, not remembered as a failure.
    rootReal ??= realpath(options.root).catch((error: unknown) => {
      rootReal = undefined;
      throw error;
    });
    return rootReal;
  };

  /** The file to serve and its stats (a directory's index.html), or null when there is none inside the root. */
  async function resolve(relative: string): Promise<{ file: string; stats: Stats; directory: boolean } | null> {
    const base = await root().catch(() => null);
    if (base === null) return null; // no root directory: nothing to serve (404)
    const candidate = path.join(base, relative);
    let real: string;
    try {
      real = await realpath(candidate);
    } catch {
      return null;
    }
    if (real !== base && !real.startsWith(base + path.sep)) return null; // a symlink out of the root
    const stats = await stat(real);
    if (stats.isDirectory()) {
      const index = path.join(real, 'index.html');
      try {
        const indexReal = await realpath(index);
        if (!indexReal.startsWith(base + path.sep)) return null;
        return { file: indexReal, stats: await stat(indexReal), directory: true };
      } catch {
        return null;
      }
    }
    return stats.isFile() ? { file: real, stats, directory: false } : null;
  }

  return async (ctx: HttpContext, rest: string): Promise<void> => {
    const { req, res } = ctx;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new AppError('METHOD_NOT_ALLOWED', { details: { allowed: ['GET', 'HEAD'] } });
    }
    const relative = safeRelativePath(rest);
    if (relative === null) throw new AppError('NOT_FOUND');
    let found = await resolve(relative);
    if (found?.directory && !ctx.path.endsWith('/')) {
      // A directory asked for without its slash: relative links in its index need the slash.
      res.writeHead(301, { location: `${ctx.path}/${ctx.query ? `?${ctx.query}` : ''}`, 'content-length': 0 });
      res.end();
      return;
    }
    if (!found && options.spa && !path.extname(relative)) found = await resolve('');
    if (!found) throw new AppError('NOT_FOUND');
    send(ctx, found.file, found.stats);
  };
}

function send(ctx: HttpContext, file: string, stats: Stats): void {
  const { req, res } = ctx;
  const etag = `W/"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
  const lastModified = stats.mtime.toUTCString();
  res.setHeader('etag', etag);
  res.setHeader('last-modified', lastModified);
  res.setHeader('cache-control', 'no-cache');
  res.setHeader('accept-ranges', 'bytes');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('content-type', contentType(file));

  const ifNoneMatch = req.headers['if-none-match'];
  const ifModifiedSince = req.headers['if-modified-since'];
  const notModified =
    ifNoneMatch !== undefined
      ? ifNoneMatch.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*')
      : ifModifiedSince !== undefined && Date.parse(ifModifiedSince) >= Math.floor(stats.mtimeMs / 1000) * 1000;
  if (notModified) {
    res.writeHead(304);
    res.end();
    return;
  }

  let start = 0;
  let end = stats.size - 1;
  let status = 200;
  const range = req.headers.range;
  const ifRange = req.headers['if-range'];
  if (range && (ifRange === undefined || ifRange === etag || ifRange === lastModified)) {
    const parsed = parseRange(range, stats.size);
    if (parsed === 'unsatisfiable') {
      res.setHeader('content-range', `bytes */${stats.size}`);
      throw new AppError('RANGE_NOT_SATISFIABLE');
    }
    if (parsed) {
      [start, end] = parsed;
      status = 206;
      res.setHeader('content-range', `bytes ${start}-${end}/${stats.size}`);
    }
  }
  res.writeHead(status, { 'content-length': Math.max(0, end - start + 1) });
  if (req.method === 'HEAD' || stats.size === 0) {
    res.end();
    return;
  }
  pipeline(createReadStream(file, { start, end }), res, () => undefined);
}
