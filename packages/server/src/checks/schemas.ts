/** Schemas of the internal API's content checks (they describe; the feature checks the fields). */
import { z } from 'zod';
import type { Operation } from '../http/index.js';

const tags = ['checks'];
const security = 'internal' as const;
const user = {
  session: z.string().optional().meta({ description: "The user's session token (preferred: minigate finds the openid)." }),
  openid: z.string().optional().meta({ description: 'Or the openid.' }),
};
const errors = {
  400: { description: 'Unknown appid (APP_UNKNOWN), or a field is invalid (BAD_REQUEST, WECHAT_BAD_ARGUMENT).' },
  401: { description: 'The session token is invalid, expired or of another app (SESSION_*).' },
  502: { description: 'WeChat answered with an error (WECHAT_ERROR).' },
  503: { description: 'WeChat is unreachable or limiting (WECHAT_UNAVAILABLE, WECHAT_RATE_LIMITED).' },
};

export const operations = {
  text: {
    summary: 'Content security check of a text (msgSecCheck v2) for a user.',
    tags,
    security,
    params: z.object({ appid: z.string() }),
    body: z.object({
      ...user,
      scene: z.number().meta({ description: '1 profile, 2 comment, 3 forum, 4 social log.' }),
      content: z.string(),
      nickname: z.string().optional(),
      title: z.string().optional(),
      signature: z.string().optional(),
    }),
    responses: { 200: { description: "WeChat's verdict.", schema: z.looseObject({}) }, ...errors },
  },
  media: {
    summary: 'Asynchronous check of an image or audio (mediaCheckAsync); the verdict reaches the webhook as kind media_check.',
    tags,
    security,
    params: z.object({ appid: z.string() }),
    body: z.object({
      ...user,
      scene: z.number(),
      mediaUrl: z.string(),
      mediaType: z.enum(['image', 'audio']),
      meta: z.record(z.string(), z.unknown()).optional().meta({ description: 'Passed back with the verdict.' }),
    }),
    responses: { 202: { description: 'Accepted; the traceId matches the verdict.', schema: z.object({ traceId: z.string() }) }, ...errors },
  },
} satisfies Record<string, Operation>;
