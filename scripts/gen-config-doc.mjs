// Rewrites docs/configuration.md from the config schema (run after `npm run build`).
import { writeFileSync } from 'node:fs';
import { configReference } from '../packages/server/dist/config/reference.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), configReference());
console.log('docs/configuration.md written');
