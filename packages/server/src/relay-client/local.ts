/**
 * The laptop's side of each relayed stream: minigate opened an HTTP/2 stream on the link; it is
 * sent to the local service (`--to`) as an HTTP/1.1 request, and the answer streamed back. An
 * extended CONNECT stream (`:protocol: websocket`, RFC 8441) becomes an HTTP/1.1 WebSocket upgrade
 * to the local service, and the two carry the same WebSocket frames both ways.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { constants as h2, type IncomingHttpHeaders as H2Headers, type ServerHttp2Stream } from 'node:http2';

/** Headers that belong to one HTTP/1.1 connection and may not appear on HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

export interface Served {
  method: string;
  path: string;
  status: number;
  ms: number;
}

function toLocal(headers: H2Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':') && value !== undefined) out[name] = value;
  return out;
}

function toRelay(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !CONNECTION_HEADERS.has(name) && !listed.has(name)) out[name] = value;
  return out;
}

/** Serves one stream from minigate against the local service at `to`; calls `done` once answered or failed. */
export function serveStream(stream: ServerHttp2Stream, headers: H2Headers, to: URL, done: (served: Served) => void): void {
  const started = performance.now();
  const method = String(headers[':method']);
  const path = String(headers[':path'] ?? '/');
  const websocket = method === 'CONNECT' && headers[':protocol'] === 'websocket';
  const report = (status: number) => done({ method: websocket ? 'WS' : method, path, status, ms: Math.round(performance.now() - started) });
  const send = to.protocol === 'https:' ? httpsRequest : httpRequest;
  const local = send({
    protocol: to.protocol,
    hostname: to.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: to.port || undefined,
    method: websocket ? 'GET' : method,
    path,
    headers: {
      ...toLocal(headers),
      // As minigate's proxy does: the local service's own host (X-Forwarded-Host has the phone's).
      host: to.host,
      ...(websocket ? { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': randomBytes(16).toString('base64') } : {}),
    },
  });
  stream.on('error', () => local.destroy());
  stream.once('close', () => {
    if (!local.writableFinished || !stream.writableFinished) local.destroy();
  });
  local.on('error', () => {
    if (!stream.headersSent && !stream.destroyed) {
      stream.respond({ ':status': 502, 'content-type': 'text/plain; charset=utf-8' });
      stream.end(`minigate tunnel: cannot reach ${to.origin}\n`);
      report(502);
    } else stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  });
  local.once('response', (answer) => {
    if (stream.destroyed) return answer.destroy();
    stream.respond({ ':status': answer.statusCode ?? 502, ...toRelay(answer.headers) });
    answer.pipe(stream);
    answer.once('end', () => report(answer.statusCode ?? 502));
  });
  if (websocket) {
    local.once('upgrade', (answer, socket, head) => {
      const accepted: OutgoingHttpHeaders = { ':status': 200 };
      for (const name of ['sec-websocket-protocol', 'sec-websocket-extensions']) if (answer.headers[name]) accepted[name] = answer.headers[name];
      stream.respond(accepted);
      if (head.length) stream.write(head);
      socket.on('error', () => stream.close(h2.NGHTTP2_CANCEL));
      socket.once('close', () => stream.close());
      stream.once('close', () => socket.destroy());
      socket.pipe(stream);
      stream.pipe(socket);
      report(101);
    });
    local.end();
  } else stream.pipe(local);
}
