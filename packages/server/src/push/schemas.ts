/** Schemas of WeChat's message push receiver (`/wechat/push/:appid`, where the service is mounted). */
import { z } from 'zod';
import type { Operation } from '../http/index.js';

const appid = z.object({ appid: z.string() });
const signed = {
  signature: z.string().optional(),
  timestamp: z.string().optional(),
  nonce: z.string().optional(),
};

export const operations = {
  verify: {
    summary: "WeChat's URL check when push is configured: echoes echostr when the signature matches.",
    tags: ['push'],
    params: appid,
    query: z.object({ ...signed, echostr: z.string().optional() }),
    responses: {
      200: { description: 'echostr, as plain text.', contentType: 'text/plain' },
      400: { description: 'Unknown appid (APP_UNKNOWN).' },
      403: { description: 'The signature does not match (PUSH_SIGNATURE_MISMATCH).' },
      404: { description: 'Push is not configured for the app (PUSH_NOT_CONFIGURED).' },
    },
  },
  receive: {
    summary: 'A message push from WeChat (XML or JSON, plain or encrypted); queued for apps[].push.webhook.',
    tags: ['push'],
    params: appid,
    query: z.object({ ...signed, encrypt_type: z.string().optional(), msg_signature: z.string().optional() }),
    bodyContentType: 'text/xml',
    responses: {
      200: { description: '"success", as WeChat expects.', contentType: 'text/plain' },
      400: { description: 'Unknown appid (APP_UNKNOWN) or an unreadable message (BAD_REQUEST, PUSH_DECRYPT_FAILED).' },
      403: { description: 'The signature does not match (PUSH_SIGNATURE_MISMATCH).' },
      404: { description: 'Push is not configured for the app (PUSH_NOT_CONFIGURED).' },
    },
  },
} satisfies Record<string, Operation>;
