/** Schema of the internal `POST /v1/check` (the checks keep their hand rules, which take two shapes). */
import { z } from 'zod';
import type { Operation } from '../http/index.js';

const CheckType = z.enum(['request', 'socket', 'upload', 'download']);
const CheckRequest = z.object({
  urls: z.array(z.object({ url: z.string(), type: CheckType.optional() })).min(1).max(10).optional(),
  url: z.string().optional().meta({ description: 'One URL instead of urls.' }),
  type: CheckType.optional(),
  resolve: z.record(z.string(), z.string()).optional().meta({ description: 'Host name → IP address to connect to.' }),
});

export const operations = {
  check: {
    summary: 'Checks URLs as WeChat would reach them (the `minigate check --json` report).',
    tags: ['doctor'],
    security: 'internal',
    body: CheckRequest,
    responses: { 200: { description: 'The report.', schema: z.looseObject({}) }, 400: { description: 'urls invalid (BAD_REQUEST).' } },
  },
} satisfies Record<string, Operation>;
