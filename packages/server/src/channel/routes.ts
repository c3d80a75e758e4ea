/**
 * The internal API's channel part: business services publish into rooms (a user's own room
 * `user:<openid>` is how to push to one user) and look at who is in a room.
 */
import { parseWith, readBodyAs, sendJson, type Router } from '../http/index.js';
import { PublishRequest, RoomParams, operations } from './schemas.js';
import type { ChannelHub } from './hub.js';

/** Largest server publish (clients' own frames are limited by channel.maxFrameBytes). */
export const PUBLISH_BODY_MAX_BYTES = 1 << 20;

export function registerChannelRoutes(router: Router, hub: ChannelHub): void {
  router.route('POST', '/v1/channel/publish', operations.publish, async (ctx) => {
    const body = await readBodyAs(ctx, PublishRequest, PUBLISH_BODY_MAX_BYTES);
    sendJson(ctx.res, 200, await hub.serverPublish(body.room, body.event, body.data ?? null));
  });

  router.route('GET', '/v1/channel/rooms/:room', operations.room, async (ctx) => {
    // The router decoded the segment once; a room name with % was escaped twice by the caller.
    const { room } = parseWith(RoomParams, { room: decodeURIComponent(ctx.params.room ?? '') });
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
