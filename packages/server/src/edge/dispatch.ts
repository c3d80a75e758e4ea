/**
 * The request listener every edge listener runs: a request id, the request target checked, the
 * error wire shape, and an access log line per request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError, errorBody, errorHeaders, requestId as newRequestId, type Logger } from '../core/index.js';
import { sendJson, type ClientInfo, type HttpContext } from '../http/index.js';
import { applyRequestTarget } from './request-target.js';

/** What `OPTIONS *` and a refused CONNECT list. */
export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export interface DispatchOptions {
  logger: Logger;
  /** Works out the client (address, scheme, host) of a request. */
  client: (req: IncomingMessage) => ClientInfo;
  /** Answers the request; throw an AppError (or return a rejected promise) for an error answer. */
  handle: (ctx: HttpContext) => void | Promise<void>;
  /** Told the status of every answered request (the admin console's request and error counts). */
  onAnswered?: ((status: number) => void) | undefined;
}

/** The request listener for a node:http(s) server: answers errors in our shape, logs one line. */
export function createDispatcher(options: DispatchOptions) {
  const { logger, handle } = options;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    const requestId = newRequestId();
    const method = req.method ?? 'GET';
    let path = '';
    let query = '';
    res.setHeader('x-request-id', requestId);

    let failure: unknown;
    const finish = () => {
      const status = res.statusCode;
      options.onAnswered?.(status);
      const entry: Record<string, unknown> = {
        requestId,
        method,
        path,
        status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      };
      if (failure instanceof AppError && failure.code === 'SHUTTING_DOWN') {
        // Expected while draining: the client is told to retry elsewhere; no stack to read.
        entry.code = failure.code;
        logger.warn(entry, 'request cut by shutdown');
      } else if (failure !== undefined && status >= 500) {
        entry.err = failure instanceof AppError && failure.cause !== undefined ? failure.cause : failure;
        if (failure instanceof AppError && failure.details) entry.details = failure.details;
        logger.error(entry, 'request failed');
      } else {
        if (failure instanceof AppError) entry.code = failure.code;
        logger.info(entry, 'request');
      }
    };
    res.once('finish', finish);
    res.once('close', () => {
      if (!res.writableFinished) logger.info({ requestId, method, path, aborted: true }, 'request aborted by client');
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
    } catch (error) {
      // A refused target is logged raw, never with its query (which may carry secrets).
      if (!path) path = (req.url ?? '/').split('?', 1)[0]!;
      return fail(error);
    }
    try {
      const result = handle({ req, res, requestId, path, query, params: {}, client });
      if (result) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}
