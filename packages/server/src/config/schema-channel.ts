/** The `channel` section: WebSocket rooms (docs/channels.md). */
import { z } from 'zod';
import { duration } from './schema-types.js';

export const CHANNEL_PATH_DEFAULT = '/channel';

/** `chat:*`, `user:{openid}`, `order:{openid}:*`: `*` is any run of room characters. */
const ROOM_PATTERN = /^([A-Za-z0-9_\-:.@*]|\{openid\})+$/;

export const roomRuleSchema = z
  .strictObject({
    match: z
      .string()
      .regex(ROOM_PATTERN, { error: 'expected a room pattern such as "chat:*" or "dm:{openid}:*"' })
      .meta({ description: 'Room names this rule covers: `*` matches any run of characters, `{openid}` only the joining user\'s openid.' }),
    join: z
      .enum(['anyone', 'ask'])
      .default('anyone')
      .meta({ description: 'anyone: every logged-in user (of `apps`, when given); ask: the channel webhook decides each join (2xx yes, 403 no).' }),
    apps: z.array(z.string()).optional().meta({ description: 'Only users of these appids may join.' }),
    publish: z
      .enum(['members', 'server'])
      .default('members')
      .meta({ description: 'members: any connection in the room may publish; server: only the internal API (announcements, notifications).' }),
    presence: z.boolean().default(false).meta({ description: 'Tell members who joins and leaves, and list who is in on join.' }),
    history: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(0)
      .meta({ description: 'How many recent messages a late joiner gets with `joined`.' }),
  })
  .meta({ description: 'Who may join rooms whose names match, and what they may do there. The first matching rule applies.' });

export const channelSchema = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Serve the WebSocket channel (and /weapp/tunnel).' }),
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9_\-./]*$/, { error: 'expected a path such as /channel' })
      .default(CHANNEL_PATH_DEFAULT)
      .meta({ description: 'Where clients connect: wss://<host><path>.' }),
    rooms: z.array(roomRuleSchema).default([]).meta({ description: 'Room rules. Rooms no rule matches cannot be joined; every user is in `user:<openid>` regardless.' }),
    origins: z
      .array(z.string().regex(/^https?:\/\/[^/]+$/, { error: 'expected an origin such as https://example.com' }))
      .optional()
      .meta({ description: 'Browser origins allowed to connect (requests with another Origin get 403). Mini programs send no browser Origin and are not affected. Default: any.' }),
    maxFrameBytes: z.number().int().min(256).max(16 << 20).default(64 << 10).meta({ description: 'Largest frame a client may send (closed with 1009 beyond).' }),
    maxQueueBytes: z
      .number()
      .int()
      .min(16 << 10)
      .default(1 << 20)
      .meta({ description: 'Outbound bytes waiting for a client that does not read; past this it is closed with 4008 (slow).' }),
    maxRoomsPerConnection: z.number().int().min(1).max(10_000).default(128).meta({ description: 'Rooms one connection may be in (its user room not counted).' }),
    maxConnectionsPerUser: z.number().int().min(1).default(10).meta({ description: 'Open connections per user on one instance (WeChat allows a mini program 5).' }),
    messagesPerSecond: z.number().int().min(1).default(20).meta({ description: 'Frames a connection may send per second (bursts of twice that).' }),
    pingInterval: duration('How often the server pings each connection.', '1s').prefault('25s'),
    pingTimeout: duration('A connection that does not answer a ping within this is closed.', '1s').prefault('20s'),
    webhook: z
      .strictObject({
        url: z.url({ protocol: /^https?$/ }).meta({ description: 'Where events are POSTed (JSON, signed with upstreamSecret like push deliveries).' }),
        events: z
          .array(z.enum(['connect', 'message', 'close']))
          .default(['connect', 'message', 'close'])
          .meta({ description: 'Which events are sent (joins of `join: ask` rooms are always asked).' }),
        timeout: duration('Time for the webhook to answer.', '100ms').prefault('5s'),
      })
      .optional()
      .meta({ description: 'Tell a business service about connections and messages, and ask it about joins (Wafer\'s model).' }),
    wafer: z
      .strictObject({
        room: z.string().regex(/^[A-Za-z0-9_\-:.@]{1,200}$/).default('wafer:lobby').meta({ description: 'The one room Wafer tunnel clients talk in.' }),
        timeout: duration('The ping interval Wafer clients are told (timeout:<seconds>).', '1s').prefault('15s'),
      })
      .prefault({})
      .meta({ description: 'Wafer2 tunnel compatibility: GET /weapp/tunnel, text packets.' }),
  })
  .prefault({})
  .meta({ description: 'Real-time channels: authenticated WebSocket rooms.' });

export type ChannelConfig = z.output<typeof channelSchema>;
export type RoomRule = z.output<typeof roomRuleSchema>;
