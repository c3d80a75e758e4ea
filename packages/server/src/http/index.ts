/**
 * The HTTP toolkit every feature's routes stand on: the router, the request context, bodies with
 * limits, JSON and upgrade answers, body deadlines, download ranges, and the `Service` contract.
 */
export type { HttpContext, ClientInfo, Handler, UpgradeHandler } from './context.js';
export { header } from './context.js';
export { Router, routeTo } from './router.js';
export { readJsonBody, readBody, JSON_BODY_LIMIT_BYTES } from './body.js';
export { sendJson, rejectUpgrade, errorResponseBytes } from './reply.js';
export { armDeadline, extendRequestDeadline } from './deadlines.js';
export { parseRange } from './range.js';
export type { Service, ServiceName } from './service.js';
export type { Operation, ResponseDoc, Security, Agree } from './operation.js';
export { ErrorResponse, parseWith, readBodyAs, issueMessage } from './operation.js';
export type { MountedRouter, DocumentInfo } from './openapi.js';
export { openApiDocument, openApiPath, undocumentedRoutes } from './openapi.js';
export type { RouteEntry } from './router.js';
