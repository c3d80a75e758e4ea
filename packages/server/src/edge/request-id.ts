/**
 * X-Request-Id from a trusted proxy: kept when it is 1 to 128 characters of letters, digits and
 * `._:-` (what load balancers and tracing headers use), so a hostile value (CRLF, a 10 KB header,
 * unicode) never reaches a log line or an upstream. Anything else, and any client's id that did
 * not come through a trusted proxy, is replaced by one minigate generates.
 */
const PLAIN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function trustedRequestId(value: string | string[] | undefined): string | undefined {
  const id = Array.isArray(value) ? value[0] : value;
  return id !== undefined && PLAIN_ID.test(id) ? id : undefined;
}
