// The OpenAPI documents as a default deployment with every feature on serves them (shared by
// scripts/gen-openapi.mjs and the test that checks docs/openapi/ is current).
import { createSandbox } from '../packages/sandbox/dist/index.js';
import { loadConfig } from '../packages/server/dist/config/index.js';
import { createServer } from '../packages/server/dist/server.js';
import { createLogger } from '../packages/server/dist/core/index.js';

const APPID = 'wx0123456789abcdef';
const TOKEN = 'openapi-document-token-0123456789abcdef';

export async function fetchOpenApiDocuments(dataDir) {
  const sandbox = createSandbox({ apps: [{ appid: APPID, secret: 'openapi-app-secret-0123456789abcdef' }] });
  await sandbox.start();
  const config = loadConfig({
    object: {
      dataDir,
      listen: { http: '127.0.0.1:0', internal: '127.0.0.1:0' },
      internal: { token: TOKEN },
      wechat: { apiBase: sandbox.url },
      apps: [{ appid: APPID, secret: 'openapi-app-secret-0123456789abcdef' }],
      log: { level: 'warn' },
    },
    env: {},
  });
  const server = createServer(config, { logger: createLogger({ level: 'warn' }) });
  try {
    await server.start();
    const get = async (api) => {
      const response = await fetch(`${server.urls.internal}/openapi/${api}.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
      if (response.status !== 200) throw new Error(`GET /openapi/${api}.json: ${response.status} ${await response.text()}`);
      return response.json();
    };
    return { public: await get('public'), internal: await get('internal') };
  } finally {
    await server.close();
    await sandbox.close();
  }
}
