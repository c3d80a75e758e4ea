/**
 * How the helpers read WeChat answers the sandbox never gives (the rest is tested end to end in
 * test/gateway.test.ts): here the gateway answers with a fixed body.
 */
import { describe, expect, it } from 'vitest';
import { isAppError } from '../core/errors.js';
import type { Gateway } from './gateway.js';
import { msgSecCheck } from './helpers.js';

const answering = (body: Record<string, unknown>): Gateway => ({
  call: async <T>() => body as T,
  passthrough: async () => {
    throw new Error('not used');
  },
});

const input = { openid: 'o-user', scene: 2, content: 'hello' };

describe('msgSecCheck', () => {
  it('fails closed: an answer without a known verdict is an error, not a pass', async () => {
    for (const body of [{ errcode: 0 }, { result: {} }, { result: { suggest: 'maybe' } }]) {
      const error = await msgSecCheck(answering(body), 'wx1', input).catch((e: unknown) => e);
      expect(isAppError(error, 'WECHAT_ERROR'), JSON.stringify(body)).toBe(true);
    }
  });

  it('passes the verdict, label and trace id on', async () => {
    const body = { result: { suggest: 'review', label: 21000 }, trace_id: 't-1', detail: [{ strategy: 'content' }] };
    expect(await msgSecCheck(answering(body), 'wx1', input)).toEqual({ suggest: 'review', label: 21000, traceId: 't-1', detail: [{ strategy: 'content' }] });
  });
});
