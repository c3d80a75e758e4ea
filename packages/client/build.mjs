// Bundles minigate-client into single files with no imports: ESM and CommonJS for npm, and
// miniprogram_dist/index.js for WeChat DevTools' "构建 npm" (miniprogram_npm). ES2017, which
// every supported base library runs. Types come from tsc (dist/*.d.ts).
// minigate-protocol (wire types, close codes, room names) is bundled in from its sources (the
// `source` export condition), so a mini program loads the SDK with only `wx`: no require, no
// second package in miniprogram_npm, and no stale protocol dist in the bundle.
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
const common = {
  entryPoints: [`${here}src/index.ts`],
  bundle: true,
  platform: 'neutral',
  conditions: ['source'],
  target: 'es2017',
  legalComments: 'none',
  logLevel: 'warning',
};

await Promise.all([
  build({ ...common, format: 'esm', outfile: `${here}dist/minigate-client.mjs` }),
  build({ ...common, format: 'cjs', outfile: `${here}dist/minigate-client.cjs` }),
  build({ ...common, format: 'cjs', outfile: `${here}miniprogram_dist/index.js` }),
]);
