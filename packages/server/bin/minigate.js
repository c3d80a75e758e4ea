#!/usr/bin/env node
// The minigate CLI. Runs the compiled sources (npm ci builds them through the root `prepare`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('minigate is not built yet: run `npm run build` at the repository root (npm ci does it too).\n');
  process.exit(2);
}
await import(main.href);
