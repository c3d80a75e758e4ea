// The peer for the proxy bench: the smallest HTTPS reverse proxy a team would hand-write in Node
// 20 — node:https in front, an undici Pool (keep-alive) to the upstream, bodies streamed both
// ways, no auth, no logs, no limits. minigate's authenticated proxy is measured against it.
//
//   node bench/peers/node-proxy.mjs <upstream origin> <cert> <key>
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';

// undici is minigate's own dependency; taking it from there keeps both on one version.
const { Pool } = createRequire(new URL('../../packages/server/package.json', import.meta.url))('undici');
const [, , upstream, cert, key] = process.argv;
const pool = new Pool(upstream, { connections: 128 });
// Hop-by-hop headers are the proxy's own, not forwarded (and undici refuses some of them).
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);
const strip = (headers) => {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP.has(k)) out[k] = v;
  return out;
};

const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { path: req.url, method: req.method, headers: strip(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers));
      return res;
    },
    (error) => {
      if (!error) return;
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway');
      }
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`peer https://127.0.0.1:${server.address().port}`));
