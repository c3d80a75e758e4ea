import { createHmac } from 'node:crypto';

/**
 * X-Minigate-Signature of a body minigate POSTs to a business service (push deliveries,
 * channel events): `v1=` + hex HMAC-SHA256 under upstreamSecret of `v1\n<timestamp>\n<body>`.
 * docs/push.md shows how to check it.
 */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`v1\n${timestamp}\n${body}`).digest('hex')}`;
}

/** The headers of a signed POST (timestamp in Unix seconds). */
export function signedHeaders(secret: string | undefined, body: string, nowMs: number): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return {
    'content-type': 'application/json',
    'x-minigate-timestamp': timestamp,
    ...(secret ? { 'x-minigate-signature': webhookSignature(secret, timestamp, body) } : {}),
  };
}
