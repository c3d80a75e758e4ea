/**
 * Channels on one instance, as clients use them: rooms, presence, history, server publish,
 * sessions ending, bad frames and limits, and the Wafer tunnel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { CHANNEL_CLOSE } from 'minigate-protocol';
import { TICKET_TTL_MS } from '../src/channel/tickets.js';
import { createTicketUses, USED_TICKET_KEEP_MS } from '../src/channel/ticket-uses.js';
import { createTestDatabase, TEST_DIALECTS, type TestDatabase } from './helpers/databases.js';
import { startHarness, TEST_APPID, type Harness } from './helpers/harness.js';
import { connect, type TestSocket } from './helpers/ws-client.js';

const INTERNAL_TOKEN = 'internal-token-for-channel-tests-0123456789';
let h: Harness;
let wsUrl: string;

async function user(): Promise<{ token: string; openid: string }> {
  const { code, openid } = await h.code();
  const { token } = (await h.login({ code })).body;
  return { token, openid };
}

const of = (type: string, extra: Record<string, unknown> = {}) => (f: any) => f?.type === type && Object.entries(extra).every(([k, v]) => f[k] === v);

async function joined(socket: TestSocket, room: string): Promise<any> {
  const frame = socket.next(of('joined', { room }));
  socket.send({ type: 'join', room });
  return frame;
}

beforeAll(async () => {
  h = await startHarness({
    config: {
      listen: { internal: '127.0.0.1:0' },
      internal: { token: INTERNAL_TOKEN },
      channel: {
        rooms: [
          { match: 'chat:*', presence: true, history: 5 },
          { match: 'news:*', publish: 'server' },
          { match: 'dm:{openid}:*' },
        ],
        maxConnectionsPerUser: 3,
        maxFrameBytes: 4096,
        messagesPerSecond: 50,
        maxQueueBytes: 65536,
      },
    },
  });
  wsUrl = `${h.url.replace(/^http/, 'ws')}/channel`;
});
afterAll(async () => {
  await h?.close();
});

describe('rooms', () => {
  it('two users join chat:lobby, see each other come and go, and exchange messages', async () => {
    const alice = await user();
    const bob = await user();
    const a = await connect(wsUrl, { token: alice.token });
    const b = await connect(wsUrl, { token: bob.token });
    const aJoined = await joined(a, 'chat:lobby');
    expect(aJoined.presence).toEqual([alice.openid]);

    // Presence frames are set changes (the joiner may hear of itself too): wait for Bob's.
    const bobArrives = a.next((f) => f.type === 'presence' && f.joins.includes(bob.openid));
    const bJoined = await joined(b, 'chat:lobby');
    expect(bJoined.presence.sort()).toEqual([alice.openid, bob.openid].sort());
    expect(await bobArrives).toMatchObject({ type: 'presence', room: 'chat:lobby', leaves: [] });

    const ack = a.next(of('ack', { id: 'm1' }));
    const atB = b.next(of('message'));
    const atA = a.next(of('message'));
    a.send({ type: 'publish', room: 'chat:lobby', event: 'speak', data: { word: '你好' }, id: 'm1' });
    await ack;
    const received = await atB;
    expect(received).toMatchObject({ type: 'message', room: 'chat:lobby', event: 'speak', data: { word: '你好' }, from: { openid: alice.openid } });
    expect(received.id).toEqual(expect.any(String));
    expect(Math.abs(received.ts - Date.now())).toBeLessThan(5_000);
    expect((await atA).id).toBe(received.id); // the sender gets its own message too

    const bobLeaves = a.next((f) => f.type === 'presence' && f.leaves.length > 0);
    const left = b.next(of('left'));
    b.send({ type: 'leave', room: 'chat:lobby' });
    expect(await left).toEqual({ type: 'left', room: 'chat:lobby' });
    expect(await bobLeaves).toEqual({ type: 'presence', room: 'chat:lobby', joins: [], leaves: [bob.openid] });
    a.close();
    b.close();
  });

  it('answers ping with pong', async () => {
    const a = await connect(wsUrl, { token: (await user()).token });
    const pong = a.next(of('pong'));
    a.send({ type: 'ping' });
    expect(await pong).toEqual({ type: 'pong' });
    a.close();
  });

  it('gives a late joiner the room’s last messages', async () => {
    const sender = await connect(wsUrl, { token: (await user()).token });
    await joined(sender, 'chat:history');
    for (let i = 1; i <= 7; i++) {
      const ack = sender.next(of('ack', { id: `h${i}` }));
      sender.send({ type: 'publish', room: 'chat:history', event: 'n', data: i, id: `h${i}` });
      await ack;
    }
    const late = await connect(wsUrl, { token: (await user()).token });
    const frame = await joined(late, 'chat:history');
    expect(frame.history.map((m: any) => m.data)).toEqual([3, 4, 5, 6, 7]);
    sender.close();
    late.close();
  });

  it('a user leaving with one of two connections stays present', async () => {
    const carol = await user();
    const watcher = await connect(wsUrl, { token: (await user()).token });
    await joined(watcher, 'chat:two');
    const phone = await connect(wsUrl, { token: carol.token });
    const tablet = await connect(wsUrl, { token: carol.token });
    const arrives = watcher.next((f) => f.type === 'presence' && f.joins.includes(carol.openid));
    await joined(phone, 'chat:two');
    await joined(tablet, 'chat:two');
    expect((await arrives).joins.filter((o: string) => o === carol.openid)).toHaveLength(1);
    phone.close();
    await new Promise((r) => setTimeout(r, 300));
    expect(watcher.frames.filter((f) => f.type === 'presence' && f.leaves.length)).toEqual([]);
    const goes = watcher.next(of('presence'));
    tablet.close();
    expect((await goes).leaves).toEqual([carol.openid]);
    watcher.close();
  });
});

describe('the server side (internal API)', () => {
  it('publishes to one user through user:<openid>, and to a server-only room', async () => {
    const dave = await user();
    const socket = await connect(wsUrl, { token: dave.token });
    const pushed = socket.next(of('message', { room: `user:${dave.openid}` }));
    const answer = await h.internal('POST', '/v1/channel/publish', { room: `user:${dave.openid}`, event: 'order.paid', data: { order: 7 } });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: expect.any(String), local: 1 });
    expect(await pushed).toMatchObject({ event: 'order.paid', data: { order: 7 }, from: { server: true }, id: answer.body.id });

    await joined(socket, 'news:today');
    const news = socket.next(of('message', { room: 'news:today' }));
    await h.internal('POST', '/v1/channel/publish', { room: 'news:today', event: 'headline', data: 'hello' });
    expect((await news).data).toBe('hello');
    const refused = socket.next(of('error'));
    socket.send({ type: 'publish', room: 'news:today', event: 'x', id: 'p1' });
    expect(await refused).toMatchObject({ code: 'CHANNEL_PUBLISH_FORBIDDEN', id: 'p1', room: 'news:today' });

    const room = await h.internal('GET', '/v1/channel/rooms/news:today');
    expect(room.body).toMatchObject({ room: 'news:today', members: [dave.openid], connectionsHere: 1, rule: { publish: 'server' } });
    expect((await h.internal('POST', '/v1/channel/publish', { room: 'bad room', event: 'x' })).body.error.code).toBe('BAD_REQUEST');
    expect((await h.internal('POST', '/v1/channel/publish', { room: 'news:x', event: '' })).body.error.code).toBe('BAD_REQUEST');
    socket.close();
  });
});

describe('authentication', () => {
  it('refuses an upgrade without a session (401) and with a bad token', async () => {
    await expect(connect(wsUrl)).rejects.toMatchObject({ status: 401 });
    const bad = await connect(wsUrl, { token: 'x'.repeat(43) }).catch((e) => e);
    expect(bad.status).toBe(401);
    expect(JSON.parse(bad.body).error.code).toBe('SESSION_INVALID');
    // The token never goes in the URL: a query parameter does not count.
    const { token } = await user();
    await expect(connect(`${wsUrl}?token=${token}`)).rejects.toMatchObject({ status: 401 });
  });

  it('takes the token as a subprotocol (browsers cannot set headers) and X-WX-Skey', async () => {
    const { token } = await user();
    const browser = await connect(wsUrl, { protocols: ['minigate', `minigate.token.${token}`] });
    expect(browser.ws.protocol).toBe('minigate');
    browser.close();
    const wafer = await connect(wsUrl, { headers: { 'x-wx-skey': token } });
    wafer.close();
  });

  it('closes the sockets of a session that is logged out, or revoked through the internal API (4001)', async () => {
    const erin = await user();
    const socket = await connect(wsUrl, { token: erin.token });
    const started = Date.now();
    await h.post('/auth/logout', {}, { authorization: `Bearer ${erin.token}` });
    expect((await socket.closed).code).toBe(CHANNEL_CLOSE.SESSION_ENDED);
    expect(Date.now() - started).toBeLessThan(2_000);

    const frank = await user();
    const other = await connect(wsUrl, { token: frank.token });
    const id = createHash('sha256').update(frank.token).digest('hex');
    await h.internal('DELETE', `/v1/sessions/${id}`);
    expect((await other.closed).code).toBe(CHANNEL_CLOSE.SESSION_ENDED);
    await expect(connect(wsUrl, { token: frank.token })).rejects.toMatchObject({ status: 401 });
  });

  it('closes a session revoked straight in the database (another instance did it) within two seconds', async () => {
    const gina = await user();
    const socket = await connect(wsUrl, { token: gina.token });
    const id = createHash('sha256').update(gina.token).digest('hex');
    const started = Date.now();
    await h.server.store.revokeSession(id, Date.now(), 'elsewhere');
    expect((await socket.closed).code).toBe(CHANNEL_CLOSE.SESSION_ENDED);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('limits connections per user (429)', async () => {
    const { token } = await user();
    const open = await Promise.all([1, 2, 3].map(() => connect(wsUrl, { token })));
    const refused = await connect(wsUrl, { token }).catch((e) => e);
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body).error.code).toBe('CHANNEL_TOO_MANY_CONNECTIONS');
    open[0]!.close();
    await open[0]!.closed;
    await new Promise((r) => setTimeout(r, 50));
    (await connect(wsUrl, { token })).close();
    for (const s of open.slice(1)) s.close();
  });
});

describe('bad input', () => {
  it('answers malformed and unknown frames with an error and stays open', async () => {
    const { token, openid } = await user();
    const socket = await connect(wsUrl, { token });
    const cases: [string, string, string?][] = [
      ['{not json', 'CHANNEL_BAD_FRAME'],
      ['[1,2]', 'CHANNEL_BAD_FRAME'],
      ['{"type":"join"}', 'CHANNEL_BAD_FRAME'],
      ['{"type":"join","room":"has space"}', 'CHANNEL_BAD_FRAME'],
      ['{"type":"publish","room":"chat:a","event":""}', 'CHANNEL_BAD_FRAME'],
      ['{"type":"dance"}', 'CHANNEL_UNKNOWN_FRAME'],
      ['{"type":"join","room":"secret:x"}', 'CHANNEL_ROOM_FORBIDDEN', 'No channel.rooms rule covers this room.'],
      ['{"type":"join","room":"dm:someone-else:1"}', 'CHANNEL_ROOM_FORBIDDEN', 'This user may not join that room.'],
      ['{"type":"join","room":"user:someone-else"}', 'CHANNEL_ROOM_FORBIDDEN'],
      ['{"type":"publish","room":"chat:not-joined","event":"x"}', 'CHANNEL_NOT_JOINED'],
      [`{"type":"publish","room":"user:${openid}","event":"x"}`, 'CHANNEL_PUBLISH_FORBIDDEN'],
    ];
    for (const [text, code, message] of cases) {
      const error = socket.next(of('error'));
      socket.sendRaw(text);
      const frame = await error;
      expect(frame.code, text).toBe(code);
      if (message) expect(frame.message).toBe(message);
    }
    expect((await joined(socket, `dm:${openid}:notes`)).room).toBe(`dm:${openid}:notes`);
    const pong = socket.next(of('pong'));
    socket.send({ type: 'ping' });
    await pong;
    socket.close();
  });

  it('closes on an oversized frame (1009) and a binary frame (1003); the server stays up', async () => {
    const { token } = await user();
    const big = await connect(wsUrl, { token });
    big.sendRaw(JSON.stringify({ type: 'publish', room: 'chat:a', event: 'x', data: 'y'.repeat(5000) }));
    expect((await big.closed).code).toBe(1009);
    const binary = await connect(wsUrl, { token });
    binary.sendRaw(Buffer.from([1, 2, 3]));
    expect((await binary.closed).code).toBe(1003);
    expect((await h.get('/healthz')).status).toBe(200);
  });

  it('limits rooms per connection', async () => {
    const socket = await connect(wsUrl, { token: (await user()).token });
    // maxRoomsPerConnection defaults to 128; its user room does not count. Sent under the rate limit.
    for (let i = 0; i < 128; i++) {
      socket.send({ type: 'join', room: `chat:r${i}` });
      if (i % 40 === 39) await new Promise((r) => setTimeout(r, 900));
    }
    await socket.next(of('joined', { room: 'chat:r127' }), 5_000);
    await new Promise((r) => setTimeout(r, 900));
    const refused = socket.next(of('error'));
    socket.send({ type: 'join', room: 'chat:one-too-many' });
    expect(await refused).toMatchObject({ code: 'CHANNEL_TOO_MANY_ROOMS', room: 'chat:one-too-many' });
    socket.close();
  });

  it('drops frames over the rate with an error, and closes a client that keeps flooding (4029)', async () => {
    const socket = await connect(wsUrl, { token: (await user()).token });
    const limited = socket.next(of('error', { code: 'CHANNEL_RATE_LIMITED' }));
    for (let i = 0; i < 150; i++) socket.send({ type: 'ping' });
    await limited;
    const errors = socket.frames.filter((f) => f.type === 'error');
    expect(errors.length).toBe(1); // one error a second, not one per dropped frame
    for (let i = 0; i < 1000; i++) socket.send({ type: 'ping' });
    expect((await socket.closed).code).toBe(CHANNEL_CLOSE.FLOOD);
  });

  it('closes a client that does not read (4008) while the others keep receiving everything', async () => {
    const reader = await connect(wsUrl, { token: (await user()).token });
    const stuck = await connect(wsUrl, { token: (await user()).token });
    await joined(reader, 'chat:firehose');
    await joined(stuck, 'chat:firehose');
    stuck.ws.pause(); // stops reading; the kernel's buffers fill, then minigate's queue
    // Loopback buffers hold tens of MB (tcp_rmem), so it takes a lot to fill them.
    const payload = 'z'.repeat(60_000);
    let last = '';
    for (let i = 0; i < 3000 && !h.logs.lines.some((l) => l.includes('a client stopped reading')); i++) {
      const answer = await h.internal('POST', '/v1/channel/publish', { room: 'chat:firehose', event: 'bulk', data: { i, payload } });
      last = answer.body.id;
    }
    expect(h.logs.text()).toContain('channel: a client stopped reading; closed');
    await reader.next((f) => f.type === 'message' && f.id === last, 10_000);
    const received = reader.frames.filter((f) => f.type === 'message' && f.room === 'chat:firehose');
    expect(received.map((f) => f.data.i)).toEqual(received.map((_, i) => i));
    reader.close();
  });
});

describe('protocol violations on the wire', () => {
  /** Upgrades a raw TCP socket, sends `bytes`, and resolves with the close code the server sends (or null). */
  async function rawClose(token: string, bytes: Buffer): Promise<number | null> {
    const { port } = new URL(h.url);
    const socket = netConnect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    socket.write(
      `GET /channel HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    const deadline = Date.now() + 3_000;
    while (!received.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
    const headerEnd = received.indexOf('\r\n\r\n') + 4;
    socket.write(bytes);
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      setTimeout(resolve, 3_000);
    });
    socket.destroy();
    // The server's frames after the handshake: find its close frame (opcode 8) and read the code.
    let frames = received.subarray(headerEnd);
    while (frames.length >= 2) {
      const opcode = frames[0]! & 0x0f;
      let length = frames[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        length = frames.readUInt16BE(2);
        offset = 4;
      }
      if (opcode === 8) return length >= 2 ? frames.readUInt16BE(offset) : null;
      frames = frames.subarray(offset + length);
    }
    return null;
  }
  const masked = (first: number, payload: Buffer, lengthByte = payload.length) => {
    const mask = randomBytes(4);
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    return Buffer.concat([Buffer.from([first, 0x80 | lengthByte]), mask, body]);
  };

  it('closes with 1002 or 1007 and keeps serving: unmasked, reserved opcode, RSV bits, fragmented control, bad UTF-8, bad lengths', async () => {
    const { token } = await user();
    const cases: [string, Buffer, number][] = [
      ['unmasked text frame', Buffer.concat([Buffer.from([0x81, 0x02]), Buffer.from('hi')]), 1002],
      ['reserved opcode 3', masked(0x83, Buffer.from('x')), 1002],
      ['RSV1 without an extension', masked(0xc1, Buffer.from('x')), 1002],
      ['fragmented ping', masked(0x09, Buffer.from('x')), 1002],
      ['continuation without a start', masked(0x80, Buffer.from('x')), 1002],
      ['invalid UTF-8 in a text frame', masked(0x81, Buffer.from([0xc3, 0x28])), 1007],
      ['control frame over 125 bytes', Buffer.concat([Buffer.from([0x89, 0x80 | 126, 0x00, 0x80]), randomBytes(4), Buffer.alloc(128)]), 1002],
      ['64-bit length with the top bit set', Buffer.concat([Buffer.from([0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1]), randomBytes(4)]), 1009],
      ['close frame with a 1-byte payload', masked(0x88, Buffer.from([0x03])), 1002],
    ];
    for (const [what, bytes, code] of cases) {
      expect([what, await rawClose(token, bytes)]).toEqual([what, code]);
    }
    // Still up, and a well-behaved client is served.
    const socket = await connect(wsUrl, { token });
    const pong = socket.next(of('pong'));
    socket.send({ type: 'ping' });
    await pong;
    socket.close();
    expect(h.logs.text()).not.toMatch(/uncaught|unhandled/i);
  });
});

async function waferUser(at: Harness): Promise<{ skey: string; openid: string }> {
  const { code, openid } = await at.code();
  const response = await fetch(`${at.url}/weapp/login`, { headers: { 'x-wx-code': code, 'x-wx-appid': TEST_APPID } });
  const body = (await response.json()) as any;
  return { skey: body.data.skey, openid };
}

/** A Wafer tunnel URL (GET /weapp/tunnel), not yet opened. */
async function tunnelUrl(at: Harness, skey: string): Promise<string> {
  const response = await fetch(`${at.url}/weapp/tunnel`, { headers: { 'x-wx-skey': skey } });
  const body = (await response.json()) as any;
  expect(body.code).toBe(0);
  expect(body.data.connectUrl).toBe(body.url);
  expect(body.data.connectUrl).not.toContain(skey);
  return body.data.connectUrl;
}

/** Opens a tunnel URL as Wafer's client does (no headers) and waits for the greeting. */
async function openTunnel(url: string): Promise<TestSocket> {
  const socket = await connect(url);
  await socket.next((f) => f === 'timeout:15');
  return socket;
}

/** The upgrade's refusal: status and code. */
async function refusal(url: string): Promise<{ status: number; code: string }> {
  const error = await connect(url).then(
    (socket) => {
      socket.close();
      throw new Error('the upgrade was accepted');
    },
    (e) => e,
  );
  return { status: error.status, code: JSON.parse(error.body).error.code };
}

describe('Wafer2 tunnel', () => {
  const tunnel = async (skey: string) => openTunnel(await tunnelUrl(h, skey));
  const waferUserHere = () => waferUser(h);

  it('two Wafer clients chat in the tunnel room with text packets', async () => {
    const one = await waferUserHere();
    const two = await waferUserHere();
    const a = await tunnel(one.skey);
    const b = await tunnel(two.skey);
    const pong = a.next((f) => f === 'pong');
    a.sendRaw('ping');
    await pong;
    const heard = b.next((f) => typeof f === 'string' && f.startsWith('message:') && f.includes('speak'));
    a.sendRaw('message:{"type":"speak","content":{"word":"hello from wafer"}}');
    const packet = await heard;
    const message = JSON.parse(packet.slice('message:'.length));
    expect(message).toMatchObject({ type: 'speak', content: { word: 'hello from wafer' }, from: { openid: one.openid } });
    // A JSON channel client in the same room sees the same message as a frame.
    const { token } = await user();
    const modern = await connect(wsUrl, { token });
    await joined(modern, 'wafer:lobby');
    const frame = modern.next(of('message', { room: 'wafer:lobby' }));
    b.sendRaw('message:{"type":"speak","content":"from b"}');
    expect(await frame).toMatchObject({ event: 'speak', data: 'from b', from: { openid: two.openid } });
    const closed = a.closed;
    a.sendRaw('close');
    expect((await closed).code).toBe(1000);
    b.close();
    modern.close();
  });

  it('answers a bad session the Wafer way, and refuses a forged tunnel URL', async () => {
    const response = await fetch(`${h.url}/weapp/tunnel`, { headers: { 'x-wx-skey': 'nope' } });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ code: -1, error: 'ERR_SESSION_INVALID' });
    const forged = await connect(`${wsUrl}?wafer=${'a'.repeat(10)}.${'0'.repeat(64)}.${'A'.repeat(32)}`).catch((e) => e);
    expect(forged.status).toBe(401);
  });

  it('a tunnel URL opens one socket: used again while that one is open, or after it closed, it is refused with 401', async () => {
    const { skey } = await waferUserHere();
    const url = await tunnelUrl(h, skey);
    const first = await openTunnel(url);
    expect(await refusal(url)).toEqual({ status: 401, code: 'CHANNEL_TICKET_USED' });
    const closed = first.closed;
    first.sendRaw('close');
    await closed;
    expect(await refusal(url)).toEqual({ status: 401, code: 'CHANNEL_TICKET_USED' });
    // The session is fine: a new URL opens a new socket.
    const again = await tunnel(skey);
    again.close();
  });

  it('a tampered tunnel URL is refused as invalid and burns neither the real ticket nor a row', async () => {
    const { skey } = await waferUserHere();
    const url = await tunnelUrl(h, skey);
    const ticket = new URL(url).searchParams.get('wafer')!;
    const [expiry, id, tokenHash, mac] = ticket.split('.') as [string, string, string, string];
    const flip = (text: string) => (text[0] === '0' ? '1' : '0') + text.slice(1);
    const rows = async () => (await h.server.store.db.selectFrom('used_tickets').select('id').execute()).length;
    const before = await rows();
    const tampered = [
      [expiry, flip(id), tokenHash, mac], // another id: must not be claimable without the key
      [(parseInt(expiry, 36) + 3_600_000).toString(36), id, tokenHash, mac], // a later expiry
      [expiry, id, flip(tokenHash), mac], // another session
      [expiry, id, tokenHash], // the old three-part shape
    ];
    for (const parts of tampered) {
      expect(await refusal(`${wsUrl}?wafer=${parts.join('.')}`)).toEqual({ status: 401, code: 'SESSION_INVALID' });
    }
    expect(await rows()).toBe(before);
    const socket = await openTunnel(url);
    socket.close();
  });
});

describe.each(TEST_DIALECTS)('Wafer tunnel URLs are single use on %s', (dialect) => {
  let database: TestDatabase;
  let hd: Harness;
  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    hd = await startHarness({ store: database.url, config: { channel: { maxConnectionsPerUser: 10 } } });
  });
  afterAll(async () => {
    await hd?.close();
    await database?.drop();
  });

  it('the same URL opened six times at once opens exactly one socket', async () => {
    const { skey } = await waferUser(hd);
    for (let round = 0; round < 3; round++) {
      const url = await tunnelUrl(hd, skey);
      const tries = await Promise.allSettled(Array.from({ length: 6 }, () => connect(url)));
      const opened = tries.filter((t) => t.status === 'fulfilled');
      expect(opened).toHaveLength(1);
      for (const t of tries) {
        if (t.status === 'rejected') expect([t.reason.status, JSON.parse(t.reason.body).error.code]).toEqual([401, 'CHANNEL_TICKET_USED']);
      }
      (opened[0] as PromiseFulfilledResult<TestSocket>).value.close();
    }
  });

  it('an expired URL is refused as invalid, not as used', async () => {
    const { skey } = await waferUser(hd);
    const url = await tunnelUrl(hd, skey);
    hd.clock.advance(TICKET_TTL_MS + 1);
    expect(await refusal(url)).toEqual({ status: 401, code: 'SESSION_INVALID' });
    const rows = await hd.server.store.db.selectFrom('used_tickets').select('id').execute();
    expect(rows.map((r) => r.id)).not.toContain(new URL(url).searchParams.get('wafer')!.split('.')[1]);
  });

  it('remembers a use past the ticket’s expiry, and the purge forgets it only after that', async () => {
    const uses = createTicketUses({ store: hd.server.store, logger: hd.server.logger });
    const id = randomBytes(16).toString('hex');
    const expiresAt = hd.clock.now() + TICKET_TTL_MS;
    expect(await uses.claim(id, expiresAt, hd.clock.now())).toBe(true);
    expect(await uses.claim(id, expiresAt, hd.clock.now())).toBe(false);
    // (Rows of the earlier tests' tickets, expired sooner, may go too.)
    await uses.purge(expiresAt + USED_TICKET_KEEP_MS - 1);
    expect(await uses.claim(id, expiresAt, expiresAt + 1)).toBe(false);
    expect(await uses.purge(expiresAt + USED_TICKET_KEEP_MS + 1)).toBeGreaterThanOrEqual(1);
    const left = await hd.server.store.db.selectFrom('used_tickets').select('id').where('id', '=', id).execute();
    expect(left).toEqual([]);
  });
});

describe('keep-alive and origins', () => {
  let h2: Harness;
  let url2: string;
  beforeAll(async () => {
    h2 = await startHarness({
      config: { channel: { rooms: [{ match: 'chat:*', presence: true }], pingInterval: '1s', pingTimeout: '1s', origins: ['https://admin.example.com'] } },
    });
    url2 = `${h2.url.replace(/^http/, 'ws')}/channel`;
  });
  afterAll(async () => {
    await h2?.close();
  });
  const login2 = async () => {
    const { code, openid } = await h2.code();
    return { token: (await h2.login({ code })).body.token as string, openid };
  };

  it('drops a connection that stops answering pings, and takes it out of presence', { timeout: 10_000 }, async () => {
    const quiet = await login2();
    const watcher = await connect(url2, { token: (await login2()).token });
    const silent = await connect(url2, { token: quiet.token, autoPong: false });
    await joined(watcher, 'chat:ping');
    await joined(silent, 'chat:ping');
    const left = watcher.next((f) => f.type === 'presence' && f.leaves.includes(quiet.openid), 5_000);
    const closed = await silent.closed;
    expect(closed.code).toBe(1006); // terminated without a close frame: it was not listening
    await left;
    // The one that answers pings is still here (pingTimeout = pingInterval: each round's check
    // runs just after the next round's ping, which must not count against it).
    const pong = watcher.next(of('pong'));
    watcher.send({ type: 'ping' });
    await pong;
    watcher.close();
  });

  it('lets listed browser origins and mini programs (no Origin) in, and refuses other origins with 403', async () => {
    const { token } = await login2();
    const allowed = await connect(url2, { token, headers: { origin: 'https://admin.example.com' } });
    allowed.close();
    const miniProgram = await connect(url2, { token });
    miniProgram.close();
    const refused = await connect(url2, { token, headers: { origin: 'https://evil.example' } }).catch((e) => e);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error.code).toBe('CHANNEL_ORIGIN_FORBIDDEN');
  });
});
