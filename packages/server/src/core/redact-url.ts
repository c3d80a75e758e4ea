/** Passwords out of URLs, for logs and CLI output. Here (not in store/) so `validate` loads no database code. */

/** The URL without its password. */
export function redactUrl(url: string): string {
  return url.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@/\s]*@/gi, '$1:***@');
}
