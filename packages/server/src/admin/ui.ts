/**
 * The console's page: index.html, app.js and app.css built by esbuild into
 * packages/server/admin-ui/dist (admin-ui/build.mjs, run by `npm run build`). They are read once
 * at start and served from memory by name: no path from a request ever reaches the file system.
 */
import { readFileSync } from 'node:fs';
import { AppError } from '../core/index.js';
import type { HttpContext } from '../http/index.js';

export const UI_DIR = new URL('../../admin-ui/dist/', import.meta.url);

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** No script but ours, no framing, no form posts elsewhere: a table cell holding `<script>` stays text. */
export const CONSOLE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export interface ConsoleUi {
  /** Serves `/`, `/index.html`, `/app.js`, `/app.css`; NOT_FOUND for anything else. */
  serve(ctx: HttpContext, rest: string): void;
}

export function loadConsoleUi(dir: URL = UI_DIR): ConsoleUi {
  const files = new Map<string, Buffer>();
  for (const name of Object.keys(TYPES)) {
    try {
      files.set(name, readFileSync(new URL(name, dir)));
    } catch {
      // Not built: the console answers with a pointer to the build step.
    }
  }
  return {
    serve(ctx, rest) {
      const method = ctx.req.method ?? 'GET';
      if (method !== 'GET' && method !== 'HEAD') throw new AppError('METHOD_NOT_ALLOWED', { details: { allowed: ['GET', 'HEAD'] } });
      const name = rest === '/' ? 'index.html' : rest.slice(1);
      const type = TYPES[name];
      if (!type) throw new AppError('NOT_FOUND');
      const body = files.get(name);
      if (!body) throw new AppError('NOT_FOUND', { message: 'The admin console is not built; run `npm run build`.' });
      ctx.res.writeHead(200, {
        'content-type': type,
        'content-length': body.length,
        // The page is small and changes with each release; always ask again.
        'cache-control': 'no-cache',
        ...CONSOLE_HEADERS,
      });
      ctx.res.end(method === 'HEAD' ? undefined : body);
    },
  };
}
