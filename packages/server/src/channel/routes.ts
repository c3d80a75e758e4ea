/**
 * The internal API's channel part: business services publish into rooms (a user's own room
 * `user:<openid>` is how to push to one user) and look at who is in a room.
 */
import { EVENT_NAME, ROOM_NAME } from 'minigate-protocol';
import { AppError } from '../core/index.js';
import { readJsonBody, sendJson, type Router } from '../http/index.js';
import type { ChannelHub } from './hub.js';

/** Largest server publish (clients' own frames are limited by channel.maxFrameBytes). */
export const PUBLISH_BODY_MAX_BYTES = 1 << 20;

export function registerChannelRoutes(router: Router, hub: ChannelHub): void {
  router.add('POST', '/v1/channel/publish', async (ctx) => {
    const body = await readJsonBody(ctx.req, PUBLISH_BODY_MAX_BYTES);
    if (typeof body.room !== 'string' || !ROOM_NAME.test(body.room)) {
      throw new AppError('BAD_REQUEST', { message: 'room: 1 to 200 letters, digits or _ - : . @ (user:<openid> for one user).' });
    }
    if (typeof body.event !== 'string' || !EVENT_NAME.test(body.event)) {
      throw new AppError('BAD_REQUEST', { message: 'event: 1 to 64 letters, digits or _ - : . @' });
    }
    sendJson(ctx.res, 200, await hub.serverPublish(body.room, body.event, body.data ?? null));
  });

  router.add('GET', '/v1/channel/rooms/:room', async (ctx) => {
    const room = decodeURIComponent(ctx.params.room ?? '');
    if (!ROOM_NAME.test(room)) throw new AppError('BAD_REQUEST', { message: 'room: 1 to 200 letters, digits or _ - : . @' });
    const described = await hub.describe(room);
    sendJson(ctx.res, 200, {
      room: described.room,
      members: described.members,
      // On this instance only (members are deployment-wide).
      connectionsHere: described.connections,
      rule: described.policy,
    });
  });
}
