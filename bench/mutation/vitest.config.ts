// The unit tests a mutation run uses: test/sdk only (no local cloud, no servers). Which of
// them comes from VALENCE_MUTATION_TESTS (comma-separated globs), set by bench/mutation.ts per
// folder, so a mutant of sdk/model runs the model's unit tests and not the slow compiler ones.
//
// isolate: false keeps one worker and its module cache across mutant runs. Stryker switches
// mutants through a global, not by reloading code, so nothing needs a fresh module; isolated,
// every mutant run re-imported each test file's graph (sdk/index.ts loads the AWS SDK drivers)
// and paid ~5 s of imports for a 7 ms test (measured on sdk/compiler/dot.ts: 5.5 s per mutant
// isolated, 2 s not). The test command keeps its own isolated config.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: (process.env.VALENCE_MUTATION_TESTS ?? 'test/sdk/**/*.test.ts').split(','),
    testTimeout: 60_000,
    isolate: false,
  },
});
