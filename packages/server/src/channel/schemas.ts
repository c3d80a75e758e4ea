/** Schemas of the channel routes: the socket's path (public) and publish/rooms (internal). */
import { z } from 'zod';
import { EVENT_NAME, ROOM_NAME } from 'minigate-protocol';
import type { Operation } from '../http/index.js';

const room = z.string().regex(ROOM_NAME, '1 to 200 letters, digits or _ - : . @ (user:<openid> for one user)');
export const PublishRequest = z.object({
  room: z.string({ error: 'required: 1 to 200 letters, digits or _ - : . @ (user:<openid> for one user)' }).pipe(room),
  event: z.string({ error: 'required: 1 to 64 letters, digits or _ - : . @' }).regex(EVENT_NAME, '1 to 64 letters, digits or _ - : . @'),
  data: z.unknown().optional().meta({ description: 'Any JSON; null when absent.' }),
});
export const RoomParams = z.object({ room: room });

const tags = ['channel'];
export const operations = {
  socket: {
    summary: 'The WebSocket endpoint (upgrade with a session); a plain GET is refused.',
    tags,
    security: 'session',
    responses: { 101: { description: 'Switching to the WebSocket protocol (docs/channels.md).' }, 400: { description: 'Not a WebSocket upgrade (BAD_REQUEST).' } },
  },
  publish: {
    summary: 'Publishes a server message into a room (user:<openid> reaches one user).',
    tags,
    security: 'internal',
    body: PublishRequest,
    responses: { 200: { description: 'Where it was delivered.', schema: z.looseObject({}) }, 400: { description: 'room or event invalid (BAD_REQUEST).' }, 413: { description: 'Over 1 MiB (BODY_TOO_LARGE).' } },
  },
  room: {
    summary: "A room's members (deployment-wide) and connections on this instance.",
    tags,
    security: 'internal',
    params: RoomParams,
    responses: {
      200: { description: 'The room.', schema: z.object({ room: z.string(), members: z.array(z.string()), connectionsHere: z.number(), rule: z.unknown() }) },
      400: { description: 'room invalid (BAD_REQUEST).' },
    },
  },
} satisfies Record<string, Operation>;
