// Bundles the admin console (Preact + htm, no JSX step) into dist/: app.js, app.css and
// index.html, served from memory by src/admin/ui.ts. Everything the page needs is in the bundle:
// no CDN, it works offline. Run by the root `build`, `prepare` and `test` scripts.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
mkdirSync(`${here}dist`, { recursive: true });
await build({
  entryPoints: [`${here}src/app.js`],
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  outfile: `${here}dist/app.js`,
});
copyFileSync(`${here}src/app.css`, `${here}dist/app.css`);
copyFileSync(`${here}src/index.html`, `${here}dist/index.html`);
