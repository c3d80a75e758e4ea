// The peer for the channel benchmarks: the smallest room server a team would hand-write with
// the `ws` package — a room is a Set of sockets, a publish is sent as the same string to every
// socket in the room. No sessions, no rules, no limits, no ids, no logs: it is the floor
// minigate's fan-out and per-connection memory are measured against.
//
//   node bench/peers/bare-ws-fanout.mjs [--cert leaf.pem --key leaf.key]
// prints "peer ws://127.0.0.1:<port>" (or wss:// with a certificate) once it listens.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

// ws is minigate's own dependency; taking it from there keeps both on the same version.
const { WebSocketServer } = createRequire(new URL('../../packages/server/package.json', import.meta.url))('ws');

const { values } = parseArgs({ options: { cert: { type: 'string' }, key: { type: 'string' } } });
const tls = values.cert && values.key;
const server = tls
  ? createHttpsServer({ cert: readFileSync(values.cert), key: readFileSync(values.key) })
  : createHttpServer();
// Same framing choices as minigate: no compression, no per-socket tracking set inside ws.
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });
const rooms = new Map();

wss.on('connection', (socket) => {
  const joined = new Set();
  socket.on('error', () => undefined);
  socket.on('message', (data) => {
    const text = data.toString();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === 'join') {
      let room = rooms.get(frame.room);
      if (!room) rooms.set(frame.room, (room = new Set()));
      room.add(socket);
      joined.add(frame.room);
      socket.send(JSON.stringify({ type: 'joined', room: frame.room }));
    } else if (frame.type === 'publish') {
      for (const member of rooms.get(frame.room) ?? []) member.send(text);
    }
  });
  socket.on('close', () => {
    for (const name of joined) rooms.get(name)?.delete(socket);
  });
});

server.listen(0, '127.0.0.1', () => console.log(`peer ${tls ? 'wss' : 'ws'}://127.0.0.1:${server.address().port}`));
