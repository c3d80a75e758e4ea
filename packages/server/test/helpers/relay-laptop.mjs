// The "laptop" services of relay.test.ts, run as their own process (inside the laptop's network
// namespace when the test makes one): an echo that answers with the headers it got, a 20 MB
// download (random bytes; their SHA-256 is printed at start for the test to check), an upload counter and a WebSocket echo.
// Listens on 127.0.0.1 only: nothing outside the laptop can connect to it. Prints {"port":N,"downloadSha":…}.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const DOWNLOAD_BYTES = 20 * 1024 * 1024;

{
  const download = randomBytes(DOWNLOAD_BYTES);
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/dev/download')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': download.length });
      res.end(download);
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      // The laptop tries to set minigate's console cookie and an identity header: neither may reach the phone.
      res.writeHead(200, {
        'content-type': 'application/json',
        'set-cookie': ['minigate_admin=forged; Path=/', 'laptop=1; Path=/'],
        'x-minigate-openid': 'o-forged-by-laptop',
      });
      res.end(JSON.stringify({ method: req.method, url, bytes, sha: hash.digest('hex'), headers: req.headers }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({ hello: req.url, openid: req.headers['x-minigate-openid'] ?? null }));
    socket.on('message', (data) => socket.send(`echo:${String(data)}`));
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port, downloadSha: createHash('sha256').update(download).digest('hex') })}\n`));
}
