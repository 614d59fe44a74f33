// The unit tests a mutation run uses: test/sdk only (no local cloud, no servers). Which of
// them comes from VALENCE_MUTATION_TESTS (comma-separated globs), set by bench/mutation.ts per
// folder, so a mutant of sdk/model runs the model's unit tests and not the slow compiler ones.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: (process.env.VALENCE_MUTATION_TESTS ?? 'test/sdk/**/*.test.ts').split(','),
    testTimeout: 60_000,
  },
});
