import path from 'node:path';
import type { FilesConfig } from '../config/index.js';
import type { Logger } from '../core/index.js';
import { createLocalStorage } from './local.js';
import { createS3Storage } from './s3.js';
import type { FileStorage } from './storage.js';

/** The storage `files.storage` names. */
export function createStorage(config: FilesConfig['storage'], dataDir: string, logger: Logger): FileStorage {
  if (config.type === 's3') {
    return createS3Storage({
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      region: config.region,
      bucket: config.bucket!,
      accessKeyId: config.accessKeyId!,
      secretAccessKey: config.secretAccessKey!,
      forcePathStyle: config.forcePathStyle,
      prefix: config.prefix,
      logger,
    });
  }
  return createLocalStorage(path.resolve(dataDir, config.dir ?? 'files'));
}
