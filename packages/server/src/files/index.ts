
export { createFilesService, ORPHAN_AGE_MS, type FilesService, type FilesDeps } from './service.js';
export { createLocalStorage } from './local.js';
export { createS3Storage } from './s3.js';
export { sniff, cleanName, KNOWN_TYPES, type FileType } from './sniff.js';
export type { FileStorage, ObjectWriter } from './storage.js';
export { createStorage } from './create-storage.js';
export { createFilesFeature, filesConfigIssues, type FilesFeature, type FilesFeatureDeps } from './feature.js';
