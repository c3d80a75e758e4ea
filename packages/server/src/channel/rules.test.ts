import { describe, expect, it } from 'vitest';
import { roomCovered, type RoomRule } from '../config/index.js';
import { createRoomRules } from './rules.js';

const rule = (match: string): RoomRule => ({ match, join: 'anyone', publish: 'members', presence: false, history: 0 });

describe('room rules', () => {
  // The schema refuses a push.room with roomCovered; the channel gives a room a policy with createRoomRules.
  // A room the schema accepts must be one the channel lets somebody into, and the other way round.
  it('the schema and the channel agree on which rooms some rule covers', () => {
    const rules = [rule('chat:*'), rule('dm:{openid}:*'), rule('order:{openid}'), rule('lobby')];
    const rooms = ['chat:1', 'chat:', 'dm:o_abc:o_def', 'dm:o_abc', 'order:o_abc', 'order:o_abc:1', 'lobby', 'lobby2', 'user:o_abc', 'wafer', 'other'];
    for (const waferRoom of [undefined, 'wafer']) {
      const channel = createRoomRules(rules, waferRoom);
      for (const room of rooms) expect(roomCovered(rules, waferRoom, room), room).toBe(channel.policy(room) !== null);
    }
  });
});
