// The peer for the login benchmark: the smallest login server a team would hand-write with
// node:http — jscode2session through fetch, a random token in an in-memory Map, no database,
// no validation, no limits, no logs. It is the floor minigate's overhead is measured against.
//
//   node bare-login.mjs <api base> <appid> <secret> [busy µs]
//
// With a busy time, each session check first spins that many microseconds (bench/budget.mjs: how
// the ratio to the bare server falls as a server does more work per request, on this machine).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const [, , apiBase, appid, secret, busy = '0'] = process.argv;
const BUSY_NS = BigInt(Math.round(Number(busy) * 1000));
const sessions = new Map();

const server = createServer(async (req, res) => {
  const send = (status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  try {
    if (req.method === 'POST' && req.url === '/auth/login') {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const { code } = JSON.parse(raw);
      const url = `${apiBase}/sns/jscode2session?appid=${appid}&secret=${secret}&js_code=${encodeURIComponent(code)}&grant_type=authorization_code`;
      const wx = await (await fetch(url)).json();
      if (!wx.openid) return send(400, { error: wx });
      const token = randomBytes(32).toString('base64url');
      sessions.set(token, { openid: wx.openid, sessionKey: wx.session_key });
      return send(200, { token, openid: wx.openid });
    }
    if (req.method === 'GET' && req.url === '/auth/session') {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (BUSY_NS > 0n) for (const start = process.hrtime.bigint(); process.hrtime.bigint() - start < BUSY_NS; );
      const session = sessions.get(token);
      return session ? send(200, { openid: session.openid }) : send(401, { error: 'no session' });
    }
    send(404, { error: 'not found' });
  } catch (error) {
    send(500, { error: String(error) });
  }
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => console.log(`peer http://127.0.0.1:${server.address().port}`));
