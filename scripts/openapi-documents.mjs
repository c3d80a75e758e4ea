// The OpenAPI documents as a default deployment with every feature on serves them (shared by
// scripts/gen-openapi.mjs and the test that checks docs/openapi/ is current).
import { createSandbox } from '../packages/sandbox/dist/index.js';
import { loadConfig } from '../packages/server/dist/config/index.js';
import { createServer } from '../packages/server/dist/server.js';
import { createLogger } from '../packages/server/dist/core/index.js';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

const APPID = 'wx0123456789abcdef';
const TOKEN = 'openapi-document-token-0123456789abcdef';

export async function fetchOpenApiDocuments(dataDir) {
  const sandbox = createSandbox({ apps: [{ appid: APPID, secret: 'openapi-app-secret-0123456789abcdef' }] });
  await sandbox.start();
  // WeChat Pay on too: a sandbox merchant in public key mode.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const apiV3Key = 'openapi0document0apiv3key0000000';
  const registered = await fetch(`${sandbox.url}/__sandbox/pay/merchants`, {
    method: 'POST',
    body: JSON.stringify({ mchid: '1900000109', serial: 'ABCDEF0123456789', publicKey: publicKey.export({ type: 'spki', format: 'pem' }), apiV3Key }),
  }).then((r) => r.json());
  const publicKeyFile = path.join(dataDir, 'pub_key.pem');
  writeFileSync(publicKeyFile, registered.publicKey);
  const config = loadConfig({
    object: {
      dataDir,
      listen: { http: '127.0.0.1:0', internal: '127.0.0.1:0' },
      internal: { token: TOKEN },
      wechat: { apiBase: sandbox.url },
      apps: [{ appid: APPID, secret: 'openapi-app-secret-0123456789abcdef' }],
      log: { level: 'warn' },
      pay: {
        apiBase: sandbox.url,
        notifyBase: 'https://api.example.com',
        merchants: [{ mchid: '1900000109', appids: [APPID], privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }), serial: 'ABCDEF0123456789', apiV3Key, publicKeyId: registered.publicKeyId, publicKeyFile }],
      },
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
