// StrykerJS over the pure parts of the SDK, with the vitest runner and the unit tests of
// test/sdk. Not part of `npm test`: run `npm run mutation` (bench/mutation.ts), which runs one
// folder at a time under a time budget and writes the scores to bench/results/mutation.json.
// The folder to mutate comes from VALENCE_MUTATE (a comma-separated list of globs).
const mutate = (process.env.VALENCE_MUTATE ?? 'sdk/model/**/*.ts').split(',');
const name = process.env.VALENCE_MUTATION_NAME ?? 'model';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'bench/mutation/vitest.config.ts', related: false },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate,
  // The machine is shared: one test runner unless VALENCE_MUTATION_CONCURRENCY says 2.
  concurrency: Number(process.env.VALENCE_MUTATION_CONCURRENCY ?? 1),
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) need the whole suite per mutant: skip them.
  ignoreStatic: true,
  // Error-message text is checked by a handful of tests on purpose, not letter by letter: string
  // mutants would triple the run (each mutant costs a vitest rerun, ~3 s here) for no signal.
  mutator: { excludedMutations: ['StringLiteral'] },
  timeoutMS: 20_000,
  timeoutFactor: 2,
  reporters: ['json', 'clear-text', 'progress'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: false, reportScoreTable: true },
  // Every run writes reports/mutation/<folder>.incremental.json; a full run (the default)
  // tests every mutant (force). VALENCE_MUTATION_INCREMENTAL=1 reuses that file's results for
  // mutants whose code and covering tests did not change, and reruns the mutants that new or
  // changed tests cover. bench/mutation.ts records which runs were incremental.
  incremental: true,
  force: process.env.VALENCE_MUTATION_INCREMENTAL !== '1',
  incrementalFile: `reports/mutation/${name}.incremental.json`,
  tempDirName: `.stryker-tmp/${name}`,
  cleanTempDir: true,
  ignorePatterns: ['cdk.out', 'reports', '.valence', 'bench/results'],
};
