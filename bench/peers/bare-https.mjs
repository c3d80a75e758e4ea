// The peer for the keep-alive memory bench: a bare node:https server answering every request with
// a small JSON body, keep-alive as long as minigate's (30 s). What an idle connection costs Node
// itself, TLS included.
//
//   node bench/peers/bare-https.mjs <cert> <key>
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [, , cert, key] = process.argv;
const body = JSON.stringify({ openid: 'o_bench' });
const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => console.log(`peer https://127.0.0.1:${server.address().port}`));
