import { defineConfig } from 'vitest/config';

// Integration tests start real servers on loopback; two forks keep a 2-core machine busy
// without starving the servers the tests talk to.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Not yet reliable: test/cancel/packed-before-submit.test.ts left two packed siblings
    // RUNNING past its 90 s ceiling in 2 of 2 runs alone at load 29-57 (issue 13 is open).
    exclude: ['test/cancel/packed-before-submit.test.ts', 'node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
