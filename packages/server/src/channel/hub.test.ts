/**
 * The hub's ordering around `joined` when the room state is slow (Redis, or the workers' primary):
 * what is published while a join is under way reaches the joiner once, after `joined`, whether or
 * not it is also in the history — also when the client sends the same join twice.
 */
import { describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { createLocalBus, createMemoryRoomState, type RoomState } from '../bus/index.js';
import { channelSchema } from '../config/schema-channel.js';
import { systemClock } from '../core/clock.js';
import { silentLogger } from '../core/logger.js';
import { createChannelHub } from './hub.js';
import { createRoomRules } from './rules.js';

/** The real in-memory state, each answer a little late, as over a network. */
function slowState(delayMs: number): RoomState {
  const inner = createMemoryRoomState();
  const late =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
    (...args: A) =>
      new Promise<R>((resolve, reject) => setTimeout(() => f(...args).then(resolve, reject), delayMs));
  return {
    addMember: late(inner.addMember.bind(inner)),
    removeMember: late(inner.removeMember.bind(inner)),
    members: late(inner.members.bind(inner)),
    pushHistory: inner.pushHistory.bind(inner), // written at once: a message is in the history before the join reads it
    history: late(inner.history.bind(inner)),
    refresh: inner.refresh.bind(inner),
    close: inner.close.bind(inner),
  };
}

/** What the hub needs of a socket; records what it is sent. */
function socket(): { ws: WebSocket; frames: any[] } {
  const frames: any[] = [];
  const ws = { bufferedAmount: 0, send: (text: string) => frames.push(JSON.parse(text)), close: () => undefined, terminate: () => undefined };
  return { ws: ws as unknown as WebSocket, frames };
}

function hub(history: number) {
  const config = channelSchema.parse({ rooms: [{ match: 'chat:*', presence: true, history }], messagesPerSecond: 1000 });
  return createChannelHub({
    config,
    rules: createRoomRules(config.rooms),
    bus: createLocalBus(),
    state: slowState(20),
    webhook: undefined,
    clock: systemClock,
    logger: silentLogger(),
    instance: 't',
  });
}

const session = (openid: string) => ({ tokenHash: `h-${openid}`, appid: 'wx0123456789abcdef', openid, endsAt: Date.now() + 3_600_000 });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('joining while others publish', () => {
  it.each([
    ['one join', 1, 50],
    ['one join, no history', 1, 0],
    ['the same join sent twice', 2, 50],
    ['the same join sent twice, no history', 2, 0],
  ])('%s: every message from the join on arrives once, after joined', async (_what, joins, history) => {
    const h = hub(history);
    const speaker = socket();
    const joiner = socket();
    const a = h.accept(speaker.ws, session('o_speaker'), { id: 'c1', wafer: false });
    const b = h.accept(joiner.ws, session('o_joiner'), { id: 'c2', wafer: false });
    await h.join(a, 'chat:x');

    // Publish every 2 ms while the joiner's join(s) wait on the slow state.
    let joinBegun = false;
    let from = -1; // the first message published once the join has begun: it and all after must arrive
    const publishing = (async () => {
      for (let n = 0; n < 40; n++) {
        if (from < 0 && joinBegun) from = n;
        await h.publish(a, 'chat:x', 'say', n);
        await pause(2);
      }
    })();
    await pause(5);
    joinBegun = true;
    // A repeated join comes a little later, while the first still waits.
    const joining = Array.from({ length: joins }, (_, i) => (i === 0 ? h.join(b, 'chat:x') : pause(10).then(() => h.join(b, 'chat:x'))));
    await Promise.all([publishing, ...joining]);
    await pause(100);

    const joinedAt = joiner.frames.findIndex((f) => f.type === 'joined');
    expect(joinedAt).toBeGreaterThanOrEqual(0);
    const before = joiner.frames.slice(0, joinedAt).filter((f) => f.type === 'message');
    expect(before).toEqual([]);
    const seen = [
      ...joiner.frames.filter((f) => f.type === 'joined').flatMap((f) => (f.history ?? []).map((m: any) => m.data)),
      ...joiner.frames.filter((f) => f.type === 'message').map((f) => f.data),
    ];
    // Everything, once (a second joined may repeat history the client has: ids tell; live messages never repeat).
    const live = joiner.frames.filter((f) => f.type === 'message').map((f) => f.data);
    expect(new Set(live).size).toBe(live.length);
    const expected = Array.from({ length: 40 - from }, (_, i) => from + i);
    expect([...new Set(seen)].filter((v) => v >= from).sort((x, y) => x - y)).toEqual(expected);
    const firstJoined = joiner.frames[joinedAt];
    const fromHistory = new Set((firstJoined.history ?? []).map((m: any) => m.data));
    for (const value of live) expect(fromHistory.has(value)).toBe(false);
  });
});

describe('a flooding client', () => {
  /** A hub on a clock the test moves; the socket records its close code. */
  function flooded(rate: number) {
    let now = 1_000_000;
    const config = channelSchema.parse({ rooms: [{ match: 'chat:*' }], messagesPerSecond: rate });
    const h = createChannelHub({ config, rules: createRoomRules(config.rooms), bus: createLocalBus(), state: createMemoryRoomState(), webhook: undefined, clock: { now: () => now }, logger: silentLogger(), instance: 't' });
    const closed: number[] = [];
    const s = socket();
    (s.ws as unknown as { close: (code: number) => void }).close = (code: number) => void closed.push(code);
    const conn = h.accept(s.ws, session('o_flood'), { id: 'c1', wafer: false });
    return { h, conn, closed, frames: s.frames, tick: (ms: number) => (now += ms) };
  }

  it('is closed (4029) when its flood is read in slices, the bucket refilling between them', () => {
    // A busy process reads 1,000 frames sent at once in slices of 10, 20 ms apart: a frame's
    // allowance comes back every few slices. Still a flood: 500 frames a second, 25 times the rate.
    const f = flooded(20);
    for (let i = 0; i < 1000 && f.closed.length === 0; i++) {
      if (i % 10 === 0) f.tick(20);
      f.h.allow(f.conn);
    }
    expect(f.closed).toEqual([4029]);
  });

  it('is not closed when it only runs over the rate (told so once a second)', () => {
    const f = flooded(20);
    // Twice the rate for 30 seconds: half the frames dropped, never ten times the rate.
    for (let i = 0; i < 1200; i++) {
      f.tick(25);
      f.h.allow(f.conn);
    }
    expect(f.closed).toEqual([]);
    expect(f.frames.filter((x) => x.type === 'error' && x.code === 'CHANNEL_RATE_LIMITED').length).toBeGreaterThan(20);
  });
});
