/**
 * Room rules (`channel.rooms[]`): which rule covers a room, and whether a user may join it.
 * The user's own room `user:<openid>` is built in: joined automatically, published to by the
 * server only, no presence, no history.
 */
import { userRoom } from 'minigate-protocol';
import { roomMatcher, type RoomRule } from '../config/index.js';

export interface RoomPolicy {
  join: 'anyone' | 'ask';
  apps?: readonly string[];
  publish: 'members' | 'server';
  presence: boolean;
  history: number;
}

const USER_ROOM: RoomPolicy = { join: 'anyone', publish: 'server', presence: false, history: 0 };

interface CompiledRule {
  policy: RoomPolicy;
  /** Matches the room for this openid. */
  test(room: string, openid: string | undefined): boolean;
}

function compile(rule: RoomRule): CompiledRule {
  const policy: RoomPolicy = {
    join: rule.join,
    ...(rule.apps ? { apps: rule.apps } : {}),
    publish: rule.publish,
    presence: rule.presence,
    history: rule.history,
  };
  return { policy, test: roomMatcher(rule.match) };
}

export interface RoomRules {
  /** The policy for a room, or null when no rule covers it. `openid` fills `{openid}` placeholders. */
  policy(room: string, openid?: string): RoomPolicy | null;
}

/** The Wafer tunnel's room, unless a rule says otherwise: everyone talks, everyone sees who is in. */
const WAFER_ROOM: RoomPolicy = { join: 'anyone', publish: 'members', presence: true, history: 0 };

export function createRoomRules(rules: readonly RoomRule[], waferRoom?: string): RoomRules {
  const compiled = rules.map(compile);
  return {
    policy(room, openid) {
      if (room.startsWith('user:')) return openid === undefined || room === userRoom(openid) ? USER_ROOM : null;
      for (const rule of compiled) if (rule.test(room, openid)) return rule.policy;
      if (room === waferRoom) return WAFER_ROOM;
      // A room that matches a rule only for another user's openid is not this user's to join.
      return null;
    },
  };
}
