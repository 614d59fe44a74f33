import { defineConfig } from 'vitest/config';

// Integration tests start real servers on loopback; two forks keep a 2-core machine busy
// without starving the servers the tests talk to.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
