/**
 * Schemas of the files routes, public (`/files`, where files.path puts it) and internal
 * (`/v1/files`). Bodies of uploads are bytes, documented by content type; the JSON bodies keep
 * their hand checks (they take form fields as strings too), the schemas describe them.
 */
import { z } from 'zod';
import type { Operation } from '../http/index.js';

const FileInfo = z
  .object({
    id: z.string(),
    url: z.string(),
    size: z.number(),
    sha256: z.string(),
    contentType: z.string(),
    name: z.string(),
    access: z.enum(['private', 'public']),
    createdAt: z.number(),
    meta: z.record(z.string(), z.unknown()).optional(),
  });
const InternalFileInfo = z.object({ ...FileInfo.shape, appid: z.string(), openid: z.string() });
const FileList = z.object({ files: z.array(FileInfo), next: z.number().optional().meta({ description: 'Pass as ?before= for the next page.' }) });
const CreateUpload = z.object({
  name: z.string().optional(),
  size: z.union([z.number(), z.string()]).optional(),
  contentType: z.string().optional(),
  access: z.enum(['private', 'public']).optional(),
  meta: z.record(z.string(), z.unknown()).optional(),
});
const UploadCreated = z.object({ id: z.string(), maxPartSize: z.number(), maxParts: z.number(), expiresAt: z.number() });
const UploadStatus = z.looseObject({ id: z.string(), name: z.string(), size: z.number().nullable() });
const LinkRequest = z.object({ ttl: z.union([z.number(), z.string()]).optional().meta({ description: 'Seconds, up to files.linkTtl.' }) });
const Link = z.object({ url: z.string(), expiresAt: z.number() });
const InternalLink = z.object({ path: z.string(), expiresAt: z.number() });

const tags = ['files'];
const session = 'session' as const;
const common = {
  401: { description: 'No valid session (SESSION_*).' },
  404: { description: 'No such file or upload of this user (FILE_NOT_FOUND).' },
};
const fileId = z.object({ id: z.string() });
const uploadId = z.object({ uid: z.string() });

export const operations = {
  upload: {
    summary: 'Uploads a file in one request (multipart/form-data as wx.uploadFile sends, or the raw bytes).',
    tags,
    security: session,
    bodyContentType: 'multipart/form-data',
    responses: { 201: { description: 'The stored file.', schema: FileInfo }, ...common, 413: { description: 'Over files.maxFileSize (BODY_TOO_LARGE).' }, 415: { description: 'A type files.types refuses (FILE_TYPE_REFUSED).' } },
  },
  list: {
    summary: "The user's files, newest first.",
    tags,
    security: session,
    query: z.object({ limit: z.string().optional().meta({ description: '1 to 100, default 20.' }), before: z.string().optional() }),
    responses: { 200: { description: 'A page of files.', schema: FileList }, 401: common[401] },
  },
  createUpload: {
    summary: 'Starts a resumable upload in parts.',
    tags,
    security: session,
    body: CreateUpload,
    responses: { 201: { description: 'The upload.', schema: UploadCreated }, 400: { description: 'A field is invalid (BAD_REQUEST).' }, 401: common[401] },
  },
  uploadStatus: {
    summary: 'A resumable upload: the parts received so far.',
    tags,
    security: session,
    params: uploadId,
    responses: { 200: { description: 'The upload.', schema: UploadStatus }, ...common },
  },
  putPart: {
    summary: 'One part of a resumable upload (the raw bytes).',
    tags,
    security: session,
    params: z.object({ uid: z.string(), n: z.string().meta({ description: 'The part number, from 1.' }) }),
    bodyContentType: 'application/octet-stream',
    responses: { 200: { description: 'The part is stored.', schema: z.looseObject({}) }, ...common, 413: { description: 'Over maxPartSize (BODY_TOO_LARGE).' } },
  },
  complete: {
    summary: 'Joins the parts into the file.',
    tags,
    security: session,
    params: uploadId,
    responses: { 201: { description: 'The stored file.', schema: FileInfo }, ...common, 409: { description: 'Parts are missing (UPLOAD_INCOMPLETE).' } },
  },
  abort: {
    summary: 'Abandons a resumable upload.',
    tags,
    security: session,
    params: uploadId,
    responses: { 200: { description: 'Aborted.', schema: z.object({ aborted: z.literal(true) }) }, ...common },
  },
  download: {
    summary: 'Downloads a file (Range supported); a signed link (?exp=&sig=) needs no session.',
    tags,
    security: session,
    params: fileId,
    query: z.object({ exp: z.string().optional(), sig: z.string().optional() }),
    responses: { 200: { description: 'The bytes.', contentType: 'application/octet-stream' }, 206: { description: 'A range of the bytes.', contentType: 'application/octet-stream' }, ...common },
  },
  remove: {
    summary: 'Deletes a file of the user.',
    tags,
    security: session,
    params: fileId,
    responses: { 200: { description: 'Deleted.', schema: z.object({ deleted: z.literal(true) }) }, ...common },
  },
  link: {
    summary: 'A signed download link that needs no session.',
    tags,
    security: session,
    params: fileId,
    body: LinkRequest,
    responses: { 200: { description: 'The link.', schema: Link }, 400: { description: 'ttl out of range (BAD_REQUEST).' }, ...common },
  },
  internalGet: {
    summary: 'A file and its owner.',
    tags,
    security: 'internal',
    params: fileId,
    responses: { 200: { description: 'The file.', schema: InternalFileInfo }, 404: { description: 'FILE_NOT_FOUND.' } },
  },
  internalRemove: {
    summary: 'Deletes a file.',
    tags,
    security: 'internal',
    params: fileId,
    responses: { 200: { description: 'Deleted.', schema: z.object({ deleted: z.literal(true) }) }, 404: { description: 'FILE_NOT_FOUND.' } },
  },
  internalLink: {
    summary: "A signed download path, for the service to put behind its own host.",
    tags,
    security: 'internal',
    params: fileId,
    body: LinkRequest,
    responses: { 200: { description: 'The path.', schema: InternalLink }, 400: { description: 'ttl out of range (BAD_REQUEST).' }, 404: { description: 'FILE_NOT_FOUND.' } },
  },
} satisfies Record<string, Operation>;
