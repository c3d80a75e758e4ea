/**
 * Which room names a `channel.rooms[].match` pattern covers. The channel feature compiles its rules
 * with this, and the schema uses it to refuse a `push.room` no rule covers, so both agree without
 * config importing the channel feature.
 */

import { userRoom } from 'minigate-protocol';

/** The prefix of the built-in per-user room `user:<openid>`, covered without a rule. */
const USER_ROOM_PREFIX = userRoom('');

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

/**
 * A test for the rooms `match` covers: `*` is any run of room characters, `{openid}` the given
 * user's openid, or any openid when none is given (the server asking about a room).
 */
export function roomMatcher(match: string): (room: string, openid?: string) => boolean {
  const parts = match.split(/(\{openid\}|\*)/).filter(Boolean);
  const hasOpenid = parts.includes('{openid}');
  const build = (openid: string | undefined) =>
    new RegExp(`^${parts.map((p) => (p === '*' ? '[A-Za-z0-9_\\-:.@]+' : p === '{openid}' ? (openid === undefined ? '[A-Za-z0-9_\\-]+' : escape(openid)) : escape(p))).join('')}$`);
  const any = build(undefined);
  return hasOpenid ? (room, openid) => (openid === undefined ? any : build(openid)).test(room) : (room) => any.test(room);
}

/**
 * Whether some user could be in `room` at all: the built-in `user:<openid>` room, a room a rule
 * covers, or the Wafer tunnel's room. The channel feature gives such a room a policy.
 */
export function roomCovered(rules: readonly { match: string }[], waferRoom: string | undefined, room: string): boolean {
  return room.startsWith(USER_ROOM_PREFIX) || rules.some((rule) => roomMatcher(rule.match)(room)) || room === waferRoom;
}
