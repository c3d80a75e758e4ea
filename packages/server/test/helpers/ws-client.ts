/**
 * A channel client for tests: a real `ws` WebSocket that records what arrives and waits for
 * frames by predicate.
 */
import WebSocket from 'ws';

export interface TestSocket {
  ws: WebSocket;
  /** Every text frame so far (parsed JSON when it is JSON). */
  frames: any[];
  send(frame: unknown): void;
  sendRaw(text: string | Buffer): void;
  /** The first matching frame after the one the previous `next` returned (already here, or to come). */
  next(match: (frame: any) => boolean, timeoutMs?: number): Promise<any>;
  /** Resolves with the close code. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export interface ConnectOptions {
  token?: string;
  headers?: Record<string, string>;
  protocols?: string[];
  autoPong?: boolean;
}

/** Opens a socket; rejects with the HTTP status when the upgrade is refused. */
export function connect(url: string, options: ConnectOptions = {}): Promise<TestSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], {
      headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers },
      autoPong: options.autoPong ?? true,
      perMessageDeflate: false,
    });
    const frames: any[] = [];
    const waiters: { match: (f: any) => boolean; resolve: (f: any) => void }[] = [];
    let cursor = 0;
    let closeResult: (v: { code: number; reason: string }) => void;
    const closed = new Promise<{ code: number; reason: string }>((r) => (closeResult = r));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? data : data.toString();
      let frame: unknown = text;
      try {
        frame = JSON.parse(text as string);
      } catch {
        // a Wafer packet or binary
      }
      frames.push(frame);
      for (const waiter of [...waiters]) {
        if (waiter.match(frame)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          cursor = frames.length;
          waiter.resolve(frame);
        }
      }
    });
    ws.on('close', (code, reason) => closeResult({ code, reason: reason.toString() }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.on('error', (error) => reject(error));
    ws.on('open', () =>
      resolve({
        ws,
        frames,
        send: (frame) => ws.send(JSON.stringify(frame)),
        sendRaw: (text) => ws.send(text),
        next(match, timeoutMs = 3_000) {
          for (let i = cursor; i < frames.length; i++) {
            if (match(frames[i])) {
              cursor = i + 1;
              return Promise.resolve(frames[i]);
            }
          }
          return new Promise((resolveFrame, rejectFrame) => {
            const timer = setTimeout(() => rejectFrame(new Error(`no matching frame in ${timeoutMs} ms; got ${JSON.stringify(frames).slice(-600)}`)), timeoutMs);
            waiters.push({
              match,
              resolve: (f) => {
                clearTimeout(timer);
                resolveFrame(f);
              },
            });
          });
        },
        closed,
        close: () => ws.close(),
      }),
    );
  });
}
