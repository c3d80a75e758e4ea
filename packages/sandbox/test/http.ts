/** One HTTP call to a running sandbox, for the sandbox's tests. */
export interface Reply {
  status: number;
  contentType: string;
  text: string;
  body: any;
}

export interface RequestOptions {
  query?: Record<string, string>;
  json?: unknown;
  raw?: string;
  contentType?: string;
}

export async function sandboxRequest(base: string, method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const target = new URL(path, base);
  for (const [k, v] of Object.entries(options.query ?? {})) target.searchParams.set(k, v);
  const init: RequestInit = { method };
  if (options.json !== undefined) {
    init.body = JSON.stringify(options.json);
    init.headers = { 'content-type': options.contentType ?? 'application/json' };
  } else if (options.raw !== undefined) {
    init.body = options.raw;
    init.headers = { 'content-type': options.contentType ?? 'text/plain' };
  }
  const response = await fetch(target, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text, body };
}
