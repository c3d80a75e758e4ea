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
