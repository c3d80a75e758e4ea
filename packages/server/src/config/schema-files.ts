/** The `files` section: uploads and downloads (docs/files.md). */
import { z } from 'zod';
import { KNOWN_TYPES } from './file-types.js';
import { duration, secret, size } from './schema-types.js';

export const FILES_TYPES_DEFAULT = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/heic'];

const storageSchema = z
  .strictObject({
    type: z.enum(['local', 's3']).default('local').meta({ description: 'local: a directory on this machine; s3: S3-compatible object storage (Tencent COS, Aliyun OSS, MinIO).' }),
    dir: z.string().min(1).optional().meta({ description: 'local: the directory. Default: `<dataDir>/files` (never inside a served directory).', format: 'path' }),
    endpoint: z.url({ protocol: /^https?$/ }).optional().meta({ description: 's3: the endpoint, e.g. https://cos.ap-shanghai.myqcloud.com, https://oss-cn-hangzhou.aliyuncs.com, http://127.0.0.1:9000. Default: AWS.' }),
    region: z.string().min(1).default('us-east-1').meta({ description: 's3: the region (COS: ap-shanghai…; OSS: oss-cn-hangzhou…).' }),
    bucket: z.string().min(1).optional().meta({ description: 's3: the bucket (COS: name-appid).' }),
    accessKeyId: secret('s3: the access key id (COS SecretId, OSS AccessKey ID).').optional(),
    secretAccessKey: secret('s3: the secret access key.').optional(),
    forcePathStyle: z.boolean().default(true).meta({ description: 's3: path-style URLs (endpoint/bucket/key), which MinIO needs; false for virtual-hosted (bucket.endpoint), which COS and OSS prefer.' }),
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9_\-.]+\/)*$/, { error: 'expected a key prefix such as "minigate/" (or empty)' })
      .default('')
      .meta({ description: 's3: a key prefix, so one bucket can hold other things too.' }),
  })
  .superRefine((storage, ctx) => {
    if (storage.type !== 's3') return;
    for (const key of ['bucket', 'accessKeyId', 'secretAccessKey'] as const) {
      if (!storage[key]) ctx.addIssue({ code: 'custom', path: [key], message: `storage type s3 needs ${key}` });
    }
  })
  .meta({ description: 'Where file bytes are kept (metadata is in the store).' });

export const filesSchema = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Serve /files (uploads and downloads).' }),
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9_\-/.]*[A-Za-z0-9_\-.]$/, { error: 'expected a path such as /files' })
      .default('/files')
      .meta({ description: 'Where the file routes are.' }),
    storage: storageSchema.prefault({}),
    field: z.string().min(1).max(100).default('file').meta({ description: 'The multipart field that carries the file (`name` in wx.uploadFile).' }),
    maxFileSize: size('Largest file in one upload (413 beyond, as soon as it is known). Per app: apps[].files.maxFileSize.').prefault('20MiB'),
    maxFields: z.number().int().min(0).max(1000).default(20).meta({ description: 'Form fields (wx.uploadFile formData) allowed with the file.' }),
    maxFieldSize: size('Largest form field value.').prefault('4KiB'),
    maxParts: z.number().int().min(1).max(1000).default(32).meta({ description: 'Parts in one multipart body (file and fields).' }),
    maxHeaderPairs: z.number().int().min(1).max(2000).default(32).meta({ description: 'Header lines in one multipart part (413 UPLOAD_LIMIT beyond).' }),
    types: z
      .array(z.enum([...KNOWN_TYPES.keys()] as [string, ...string[]]))
      .min(1)
      .default(FILES_TYPES_DEFAULT)
      .meta({ description: `Allowed types, recognised by their first bytes: ${[...KNOWN_TYPES.keys()].join(', ')}.` }),
    access: z
      .enum(['private', 'public'])
      .default('private')
      .meta({ description: 'An upload\'s access unless it asks (form field `access`): private — only the uploader (with their session) or a signed link; public — anyone with the URL.' }),
    uploadTimeout: duration('Time one upload request (a whole file, or one resumable part) may take; other requests get 5 min. A body that stalls for 60 s is cut anyway.', '1s').prefault('1h'),
    quota: size('Bytes a user may keep in files (all their files together). Default: no quota.').optional(),
    linkTtl: duration('Longest lifetime of a signed link (GET /files/{id}?exp=&sig=).', '1s').prefault('1h'),
    resumable: z
      .strictObject({
        maxSize: size('Largest file a resumable upload may assemble.').prefault('4GiB'),
        maxPartSize: size('Largest part.').prefault('16MiB'),
        maxParts: z.number().int().min(1).max(10_000).default(1000).meta({ description: 'Parts in one resumable upload.' }),
        expiry: duration('An unfinished upload (and its parts) is removed after this.', '1m').prefault('24h'),
      })
      .prefault({})
      .meta({ description: 'Resumable uploads (create, PUT parts, complete) for files too big for one request.' }),
  })
  .meta({ description: 'File uploads (wx.uploadFile) and downloads (wx.downloadFile).' });

export const appFilesSchema = z
  .strictObject({
    maxFileSize: size('This app\'s largest file (instead of files.maxFileSize).').optional(),
    uploadTimeout: duration('Time one upload request (a whole file, or one resumable part) may take; other requests get 5 min. A body that stalls for 60 s is cut anyway.', '1s').prefault('1h'),
    quota: size('This app\'s per-user quota (instead of files.quota).').optional(),
  })
  .meta({ description: 'File limits for this app.' });

export type FilesConfig = z.output<typeof filesSchema>;
