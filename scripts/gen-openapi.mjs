// Writes docs/openapi/public.json and internal.json (run after `npm run build`): starts a real
// minigate with every feature on (SQLite in a temporary directory, the sandbox as WeChat) and
// saves what GET /openapi/{public,internal}.json answers on its internal listener.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetchOpenApiDocuments } from './openapi-documents.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'minigate-openapi-'));
try {
  const documents = await fetchOpenApiDocuments(dir);
  for (const [name, document] of Object.entries(documents)) {
    writeFileSync(new URL(`../docs/openapi/${name}.json`, import.meta.url), `${JSON.stringify(document, null, 2)}\n`);
    console.log(`docs/openapi/${name}.json written`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
