/** Schemas of the internal API's subscribe part (they describe; the feature checks the template itself). */
import { z } from 'zod';
import type { Operation } from '../http/index.js';

const tags = ['subscribe'];
const security = 'internal' as const;
const appErrors = { 400: { description: 'Unknown appid (APP_UNKNOWN), unknown template (SUBSCRIBE_TEMPLATE_UNKNOWN) or data that does not fit it (SUBSCRIBE_DATA_INVALID).' } };

const Grant = z.object({
  templateId: z.string(),
  kind: z.enum(['one-time', 'long-term']),
  count: z.number().meta({ description: 'One-time sends left (0 for a long-term grant, which is not counted).' }),
  source: z.enum(['push', 'client']).meta({ description: "Where the grant came from: WeChat's push, or the SDK's report (client-reported)." }),
  updatedAt: z.number().meta({ description: 'Epoch milliseconds.' }),
});

export const operations = {
  send: {
    summary: "Sends a subscribe message after checking the template's keywords and the user's grants (a one-time grant is used up).",
    tags,
    security,
    params: z.object({ appid: z.string() }),
    body: z.object({
      touser: z.string().meta({ description: "The user's openid." }),
      templateId: z.string(),
      data: z.record(z.string(), z.object({ value: z.string() })).meta({ description: 'By keyword (thing1, time2, …).' }),
      page: z.string().optional(),
      miniprogramState: z.enum(['developer', 'trial', 'formal']).optional(),
      lang: z.string().optional(),
    }),
    responses: {
      200: { description: "WeChat's answer (errcode 0 and msgid).", schema: z.looseObject({}) },
      ...appErrors,
      409: { description: 'The user has no grant left for this template (SUBSCRIBE_NOT_GRANTED); WeChat was not called.' },
      502: { description: 'WeChat answered with an error (WECHAT_ERROR).' },
      503: { description: 'WeChat is unreachable or limiting (WECHAT_UNAVAILABLE, WECHAT_RATE_LIMITED).' },
    },
  },
  grants: {
    summary: "A user's subscribe grants, per template.",
    tags,
    security,
    params: z.object({ appid: z.string(), openid: z.string() }),
    responses: { 200: { description: 'The grants.', schema: z.object({ grants: z.array(Grant) }) }, 400: { description: 'Unknown appid (APP_UNKNOWN) or a malformed openid (BAD_REQUEST).' } },
  },
} satisfies Record<string, Operation>;
