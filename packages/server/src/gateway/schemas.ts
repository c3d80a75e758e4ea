/**
 * Schemas of the internal API's WeChat part (`/v1/apps/:appid/…`). The helpers keep their own
 * checks of WeChat's arguments (shared with code callers); these describe the bodies.
 */
import { z } from 'zod';
import type { Operation } from '../http/index.js';

const appid = z.object({ appid: z.string().meta({ description: 'A configured appid.' }) });
const AccessToken = z.object({ accessToken: z.string(), expiresAt: z.number().meta({ description: 'Epoch milliseconds.' }) });
export const RejectedRequest = z.object({
  accessToken: z.string({ error: 'the token WeChat refused (40001, 42001 or 40014) is required' }).min(1).max(2048),
});
const anyJson = z.looseObject({});
const tags = ['wechat'];
const security = 'internal' as const;
const errors = {
  400: { description: 'Unknown appid (APP_UNKNOWN), or a field is invalid (BAD_REQUEST, WECHAT_BAD_ARGUMENT).' },
  502: { description: 'WeChat answered with an error (WECHAT_ERROR, WECHAT_CREDENTIALS_INVALID).' },
  503: { description: 'WeChat is unreachable or limiting (WECHAT_UNAVAILABLE, WECHAT_RATE_LIMITED).' },
};

/** A JSON helper route: its body is passed on to WeChat after the helper's checks. */
function helper(summary: string, body: z.ZodObject): Operation {
  return { summary, tags, security, params: appid, body, responses: { 200: { description: "WeChat's answer.", schema: anyJson }, ...errors } };
}

export const operations = {
  accessToken: {
    summary: "The app's access_token (cached; refreshed before it expires).",
    tags,
    security,
    params: appid,
    responses: { 200: { description: 'The token.', schema: AccessToken }, ...errors },
  },
  refresh: {
    summary: 'Refreshes the access_token now.',
    tags,
    security,
    params: appid,
    responses: { 200: { description: 'The new token.', schema: AccessToken }, ...errors },
  },
  rejected: {
    summary: 'Reports a token WeChat refused; returns a fresh one (refreshed once deployment-wide).',
    tags,
    security,
    params: appid,
    body: RejectedRequest,
    responses: { 200: { description: 'A valid token.', schema: AccessToken }, ...errors },
  },
  passthrough: {
    summary: "Any WeChat server API with the app's access_token added (GET or POST, body passed as is).",
    tags,
    security,
    params: z.object({ appid: z.string(), rest: z.string().meta({ description: "WeChat's API path, e.g. wxa/getwxacode." }) }),
    bodyContentType: 'application/json',
    responses: { 200: { description: "WeChat's answer, as it came.", contentType: 'application/json' }, ...errors },
  },
  phoneNumber: helper("A user's phone number from a getPhoneNumber code.", z.object({ code: z.string(), openid: z.string().optional() })),
  urlScheme: helper('A URL Scheme that opens the mini program.', z.looseObject({})),
  urlLink: helper('A URL Link that opens the mini program.', z.looseObject({})),
  wxacode: {
    summary: 'A mini program code image (unlimited kind) for a scene.',
    tags,
    security,
    params: appid,
    body: z.looseObject({ scene: z.string(), page: z.string().optional(), width: z.number().optional() }),
    responses: { 200: { description: 'The image.', contentType: 'image/png' }, ...errors },
  },
} satisfies Record<string, Operation>;
