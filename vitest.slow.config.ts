/**
 * Suites with their own npm script, kept out of `npm test` (which must stay under 15 minutes):
 * packages/<pkg>/test/slow/. `npm run test:pm2` runs the pm2 one, `npm run test:stress` the files stress one. Their output is kept: they print
 * what they measured.
 */
import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  ...base,
  test: { ...base.test, include: ['packages/*/test/slow/**/*.test.ts'], exclude: [...configDefaults.exclude], testTimeout: 120_000, silent: false },
});
