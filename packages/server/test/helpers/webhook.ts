/** A business service's webhook for the tests: keeps what minigate delivers, answers as told. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  headers: IncomingHttpHeaders;
  /** The body as sent (what a signature covers). */
  raw: string;
  /** The body parsed as JSON (minigate's deliveries are JSON); undefined when it is not. */
  body: any;
}

/**
 * Records every delivery; answers each with the next queued status (200 when none is queued),
 * or never while `hang` is set. Served on 127.0.0.1 under `path`.
 */
export class RecordingWebhook {
  deliveries: Delivery[] = [];
  statuses: number[] = [];
  hang = false;
  readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      this.deliveries.push({ headers: req.headers, raw, body });
      if (this.hang) return;
      res.writeHead(this.statuses.shift() ?? 200).end('ok');
    });
  });

  constructor(private readonly path = '/hooks') {}

  /** Listens and returns the URL to configure as the webhook. */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.path}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
