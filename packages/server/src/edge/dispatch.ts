/**
 * The request listener every edge listener runs: a request id, the request target checked, the
 * error wire shape, and an access log line per request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, errorBody, errorHeaders, infoLineWriter, requestId as newRequestId, type Logger, type Metrics } from '../core/index.js';
import { sendJson, type ClientInfo, type HttpContext } from '../http/index.js';
import { createRequestMetrics } from './request-metrics.js';
import { trustedRequestId } from './request-id.js';
import { applyRequestTarget } from './request-target.js';

/** What `OPTIONS *` and a refused CONNECT list. */
export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export interface DispatchOptions {
  logger: Logger;
  /** Works out the client (address, scheme, host) of a request. */
  client: (req: IncomingMessage) => ClientInfo;
  /** Answers the request; throw an AppError (or return a rejected promise) for an error answer. */
  handle: (ctx: HttpContext) => void | Promise<void>;
  /** The listener's name, a label of the request metrics. */
  listener?: string;
  metrics?: Metrics;
  /** log.access and log.accessSample: which requests get an access line. */
  access?: 'all' | 'errors' | 'off';
  accessSample?: number;
}

/** The request listener for a node:http(s) server: answers errors in our shape, logs one line. */
export function createDispatcher(options: DispatchOptions) {
  const { logger, handle } = options;
  const record = options.metrics ? createRequestMetrics(options.metrics, options.listener ?? 'http') : undefined;
  const access = options.access ?? 'all';
  const sample = options.accessSample ?? 1;
  // The line of a successful request: the same JSON as logger.info(entry, 'request'), for less.
  const accessLine = infoLineWriter(logger, 'request');
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    let requestId = newRequestId();
    const method = req.method ?? 'GET';
    let path = '';
    let query = '';
    let ctx: HttpContext | undefined;
    res.setHeader('x-request-id', requestId);

    let failure: unknown;
    const finish = () => {
      const status = res.statusCode;
      const elapsed = performance.now() - started;
      record?.(ctx?.route || 'unmatched', method, status, elapsed / 1000);
      // Error answers always get their line (unless access lines are off); successes may be sampled.
      const quiet = status < 400 && (access !== 'all' || (sample < 1 && Math.random() >= sample));
      if (failure === undefined && (quiet || access === 'off')) return;
      const length = res.getHeader('content-length');
      const entry: Record<string, unknown> = {
        requestId,
        client: ctx?.client.ip ?? req.socket.remoteAddress,
        method,
        route: ctx?.route || undefined,
        path,
        status,
        bytes: length === undefined ? ctx?.bytes : Number(length),
        ms: Math.round(elapsed * 10) / 10,
        upstreamMs: ctx?.upstreamMs,
        ua: req.headers['user-agent']?.slice(0, 200),
        appid: ctx?.appid,
        openid: ctx?.openid,
      };
      if (failure instanceof AppError && failure.code === 'SHUTTING_DOWN') {
        // Expected while draining: the client is told to retry elsewhere; no stack to read.
        entry.code = failure.code;
        logger.warn(entry, 'request cut by shutdown');
      } else if (failure !== undefined && status >= 500) {
        entry.err = failure instanceof AppError && failure.cause !== undefined ? failure.cause : failure;
        if (failure instanceof AppError && failure.details) entry.details = failure.details;
        logger.error(entry, 'request failed');
      } else if (!quiet && access !== 'off') {
        if (failure instanceof AppError) entry.code = failure.code;
        accessLine(entry);
      }
    };
    // One listener, on 'close' (a tick after 'finish' when the answer went out): a response
    // closes once, so `on` without `once`'s wrapper and removal, which a request paid twice.
    res.on('close', () => {
      if (res.writableFinished) finish();
      else logger.info({ requestId, method, path, aborted: true }, 'request aborted by client');
    });

    const fail = (error: unknown) => {
      failure = error;
      if (res.headersSent || res.destroyed) {
        if (!(error instanceof AppError)) logger.error({ requestId, method, path, err: error }, 'request failed after the answer began');
        res.destroy();
        return;
      }
      const { status, body } = errorBody(error, requestId);
      if (status === 405 && error instanceof AppError && Array.isArray(error.details?.allowed)) {
        res.setHeader('allow', (error.details.allowed as string[]).join(', '));
      }
      for (const [name, value] of Object.entries(errorHeaders(error))) res.setHeader(name, value);
      sendJson(res, status, body);
    };

    let client: ClientInfo;
    try {
      // CONNECT (authority-form) tunnels nothing here; HTTP/1.1's arrives on 'connect' (edge.ts).
      if (method === 'CONNECT') throw new AppError('METHOD_NOT_ALLOWED', { details: { allowed: ALLOWED_METHODS } });
      ({ path, query } = applyRequestTarget(req));
      if (path === '*') {
        res.writeHead(204, { allow: ALLOWED_METHODS.join(', ') });
        res.end();
        return;
      }
      client = options.client(req);
      // Behind a trusted proxy its X-Request-Id is kept (when plain and short), so one id follows the request.
      if (client.viaTrustedProxy) {
        const given = trustedRequestId(req.headers['x-request-id']);
        if (given) res.setHeader('x-request-id', (requestId = given));
      }
    } catch (error) {
      // A refused target is logged raw, never with its query (which may carry secrets).
      if (!path) path = (req.url ?? '/').split('?', 1)[0]!;
      return fail(error);
    }
    try {
      ctx = { req, res, requestId, path, query, params: {}, client, route: '', appid: undefined, openid: undefined, upstreamMs: undefined, bytes: undefined };
      const result = handle(ctx);
      if (result) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}
