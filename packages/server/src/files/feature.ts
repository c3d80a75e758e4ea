import path from 'node:path';
import type { Config, ConfigCheck } from '../config/index.js';
import type { SessionService } from '../auth/index.js';
import type { Router } from '../http/index.js';
import { StartError, type Feature, type SharedDeps } from '../feature/index.js';
import type { Store } from '../store/index.js';
import { createStorage } from './create-storage.js';
import { filesMetrics } from './metrics.js';
import { createFilesService, type FilesService } from './service.js';

/**
 * What the files feature refuses in a config (also run by `minigate validate`): uploads must never
 * be reachable as static files, only by id through /files.
 */
export const filesConfigIssues: ConfigCheck = (config) => {
  if (!config.files.enabled || config.files.storage.type !== 'local') return [];
  const filesDir = path.resolve(config.dataDir, config.files.storage.dir ?? 'files');
  return config.routes.flatMap((route, i) =>
    route.static && (filesDir + path.sep).startsWith(path.resolve(route.static) + path.sep)
      ? [{ path: ['routes', i, 'static'], message: `serves the uploads directory (files.storage.dir ${filesDir}); keep uploads outside served directories` }]
      : [],
  );
};

export interface FilesFeatureDeps extends SharedDeps {
  store: Store;
  sessions: SessionService;
  secretKey: Buffer;
}

/** Uploads and downloads (files.enabled): the service, its storage and its sweeps. */
export interface FilesFeature extends Feature {
  /** Deletes a file by id (the admin console); false when unknown. */
  remove(id: string): Promise<boolean>;
}

export function createFilesFeature(config: Config, deps: FilesFeatureDeps): FilesFeature {
  let files: FilesService | undefined;
  const make = () => {
    if (files) return files;
    const storage = createStorage(config.files.storage, config.dataDir, deps.logger);
    return (files = createFilesService({
      config: config.files,
      apps: deps.apps,
      store: deps.store,
      storage,
      sessions: deps.sessions,
      secretKey: deps.secretKey,
      clock: deps.clock,
      logger: deps.logger,
      metrics: filesMetrics(deps.metrics, storage.kind),
    }));
  };
  return {
    name: 'files',
    remove: (id) => make().remove(id),
    validate() {
      const filesDir = path.resolve(config.dataDir, config.files.storage.dir ?? 'files');
      const [problem] = filesConfigIssues(config);
      const route = problem ? config.routes[problem.path[1] as number]! : undefined;
      if (route) throw new StartError(`files.storage.dir (${filesDir}) is inside routes[].static ${route.static}; keep uploads outside served directories`);
    },
    services: () => [make().service],
    internalRoutes: (router: Router) => make().registerInternal(router),
    async start() {
      make().start();
    },
    drain() {
      files?.drain();
    },
    async close() {
      await files?.close();
    },
  };
}
