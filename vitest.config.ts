import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run on the sources; the CLI end-to-end tests run the build.
    alias: [
      { find: /^minigate-protocol$/, replacement: src('protocol') },
      { find: /^minigate-sandbox$/, replacement: src('sandbox') },
      { find: /^minigate-client$/, replacement: src('client') },
      { find: /^minigate$/, replacement: src('server') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // Suites with their own npm script (pm2, …): vitest.slow.config.ts.
    exclude: [...configDefaults.exclude, 'packages/*/test/slow/**'],
    pool: 'forks',
    // Two files at a time: most suites wait on child processes, sockets and timers, so two share
    // the 2-core CI machine well (15 min → 8 min); load-sensitive tests carry their own headroom.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Quiet by default; a failing test prints what it captured.
    silent: 'passed-only',
  },
});
