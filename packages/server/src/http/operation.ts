/**
 * A route's description for the OpenAPI documents: the same object the router keeps, so the
 * document is made from what is served (one source). Request schemas validate; response schemas
 * only describe (checking answers on every request would cost the hot path).
 */
import { z } from 'zod';
import { AppError } from '../core/index.js';
import type { HttpContext } from './context.js';
import { readJsonBody } from './body.js';

/**
 * How a caller proves who it is: a session token, the internal bearer token, the admin console's
 * cookie (reads), the cookie plus its CSRF header (console writes), or nothing.
 */
export type Security = 'session' | 'internal' | 'adminCookie' | 'adminCsrf' | 'none';

export interface ResponseDoc {
  description: string;
  /** The JSON body; absent for a body that is not JSON (see `contentType`) or none. */
  schema?: z.ZodType;
  /** Default application/json when a schema is given. */
  contentType?: string;
}

export interface Operation {
  summary: string;
  /** Grouping in the document (a feature's name). */
  tags: string[];
  security?: Security;
  /** The `:name` path segments (and `*` as `rest`), as strings. */
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** A JSON (or urlencoded form) request body. */
  body?: z.ZodType;
  /** Another request body type (uploads, passthrough), documented without a schema. */
  bodyContentType?: string;
  /** By status; error statuses carry the registry's error shape unless a schema is given. */
  responses: Record<number, ResponseDoc>;
}

/** `{"error":{code,message,requestId}}`: every error answer. */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'A stable code from the error registry (docs/errors.md).' }),
      message: z.string(),
      requestId: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  });

/** Turns the first issue into the message a person reads: `room: <what is wrong>`. */
export function issueMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'The request is invalid.';
  const where = issue.path.length > 0 ? issue.path.join('.') : 'body';
  return `${where}: ${issue.message}`;
}

/** Validates a value with a request schema; BAD_REQUEST naming the field on failure. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new AppError('BAD_REQUEST', { message: issueMessage(result.error) });
  return result.data;
}

/** Reads the JSON body and validates it with the schema. */
export async function readBodyAs<S extends z.ZodType>(ctx: HttpContext, schema: S, limit?: number): Promise<z.infer<S>> {
  return parseWith(schema, await readJsonBody(ctx.req, limit));
}

/**
 * True when each type is assignable to the other: `const check: Agree<z.infer<typeof X>, X> = true`
 * fails to compile when a schema and the protocol's type drift apart.
 */
export type Agree<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
