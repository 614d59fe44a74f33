import { defineConfig } from 'vitest/config';

// Integration tests start real servers on loopback; two forks keep a 2-core machine busy
// without starving the servers the tests talk to.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Not yet reliable: the throttled-flag-write cancel answered 504 or timed out in 2 of 4
    // runs on a loaded machine (issue 13 is open; its note says what remains): take it out
    // of this list to run it.
    // test/cancel/packed-before-submit.test.ts hung past its ceiling in 1 of 3 full runs (same note).
    exclude: ['test/cancel/packed-before-submit.test.ts', 'node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
