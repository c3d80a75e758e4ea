/**
 * X-Request-Id from a trusted proxy: kept when it is 1 to 128 characters of letters, digits and
 * `._:-` (what load balancers and tracing headers use), so a hostile value (CRLF, a 10 KB header,
 * unicode) never reaches a log line or an upstream. Anything else, and any client's id that did
 * not come through a trusted proxy, is replaced by one minigate generates.
 *
 * Checked with one pass over the characters after the length check (no regular expression), so a
 * long hostile value costs nothing beyond its length test.
 */
export const MAX_REQUEST_ID_LENGTH = 128;

export function trustedRequestId(value: string | string[] | undefined): string | undefined {
  const id = Array.isArray(value) ? value[0] : value;
  if (id === undefined || id.length === 0 || id.length > MAX_REQUEST_ID_LENGTH) return undefined;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    const plain =
      (c >= 0x61 && c <= 0x7a) || // a-z
      (c >= 0x41 && c <= 0x5a) || // A-Z
      (c >= 0x30 && c <= 0x3a) || // 0-9 and ':'
      c === 0x2e || // .
      c === 0x5f || // _
      c === 0x2d; // -
    if (!plain) return undefined;
  }
  return id;
}
