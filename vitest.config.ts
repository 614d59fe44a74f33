import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Seconds each slow file took in a whole run (`npm test` alone on this 2-core machine,
 * 2026-12-01). Files run longest first, so that the last ones to start are short and the two
 * forks end together. Vitest orders by its own cache of durations, but a fresh clone (CI) has
 * none and ran the files in name order: the two-minute consumer test started near the end and
 * ran alone. Files not listed count as 5 s; a cached duration, when there is one, wins.
 */
const EXPECTED_SECONDS: ReadonlyMap<string, number> = new Map([
  ['test/package/consumer.test.ts', 124],
  ['test/assembly/assembly.test.ts', 90],
  ['test/cancel/timing.test.ts', 70],
  ['test/cancel/packed-before-submit.test.ts', 45],
  ['test/runtime/dispatch.test.ts', 50],
  ['test/redispatch/redispatch.test.ts', 44],
  ['test/cli/cli.test.ts', 41],
  ['test/cli/cancel.test.ts', 40],
  ['test/ui/dashboard.test.ts', 37],
  ['test/ui/resilience.test.ts', 18],
  ['test/cancel/cancel.test.ts', 36],
  ['test/runtime/argument-shaped.test.ts', 33],
  ['test/runtime/failure-paths.test.ts', 31],
  ['test/examples/demo.test.ts', 60],
  ['test/cli/offline.test.ts', 28],
  ['test/runtime/partition.test.ts', 25],
  ['test/ui/server.test.ts', 24],
  ['test/cancel/recovery.test.ts', 24],
  ['test/security/transient.test.ts', 23],
  ['test/infra/synth.test.ts', 23],
  ['test/cancel/races.test.ts', 22],
  ['test/cli/local.test.ts', 19],
  ['test/cli/init.test.ts', 18],
  ['test/sdk/compiler/exactness.test.ts', 25],
  ['test/cli/watch.test.ts', 16],
  ['test/examples/research.test.ts', 15],
  ['test/ui/scale.test.ts', 15],
  ['test/client/defaults.test.ts', 14],
  ['test/lambdas/deadline.test.ts', 14],
  ['test/cancel/merge.test.ts', 12],
  ['test/localstack/awscli.test.ts', 12],
  ['test/security/foreign-handle.test.ts', 12],
  ['test/examples/custom-executor.test.ts', 11],
  ['test/cancel/pending-child.test.ts', 11],
  ['test/cancel/stuck.test.ts', 10],
  ['test/client/handles.test.ts', 10],
  ['test/infra/nag.test.ts', 10],
  ['test/client/client.test.ts', 10],
  ['test/localstack/lambda/lambda.test.ts', 9],
  ['test/cancel/force.test.ts', 9],
  ['test/infra/monitoring.test.ts', 9],
  ['test/localstack/stepfunctions/local-cloud.test.ts', 9],
  ['test/package/consumer.test.ts:246:75', 0],
]);

class LongestFirst extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const seconds = (spec: TestSpecification): number => {
      const key = relative(spec.project.config.root, spec.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${key}`)?.duration;
      return cached !== undefined ? cached / 1000 : EXPECTED_SECONDS.get(key) ?? 5;
    };
    return Promise.resolve([...files].sort((a, b) => seconds(b) - seconds(a)));
  }
}

// Integration tests start real servers on loopback; two forks keep a 2-core machine busy
// without starving the servers the tests talk to. Three forks were tried (2026-12-01): the
// whole run took 614 s instead of 633 s, and at load 10-15 the demo's cancel left a quantum
// task running past the demo's end, so two it is.
/**
 * Files that start no local cloud and share no lattice names: they run in a fork that is
 * reused from file to file (`isolate: false`), so aws-cdk-lib, the compiler and the model are
 * imported once per fork rather than once per file. Measured 2026-12-01: these 40 files took
 * 82 s of CPU isolated (in a whole run) and 49 s sharing two forks (run alone). The rest stay
 * isolated: their fixture modules register lattices by name in the default registry
 * ("inner" in two of them), and their clouds, processes and environment are theirs alone.
 */
const SHARED_FORK = [
  'test/sdk/**/*.test.ts',
  'test/arch/**/*.test.ts',
  'test/infra/**/*.test.ts',
  'test/assembly/intrinsics.test.ts',
  'test/cli/format.test.ts',
  'test/localstack/apigateway/apigateway.test.ts',
  'test/localstack/apigateway/routes.test.ts',
  'test/localstack/braket/simulator.test.ts',
  'test/localstack/counters.test.ts',
  'test/localstack/events/*.test.ts',
  'test/localstack/faults.test.ts',
  'test/localstack/sigv4.test.ts',
  'test/localstack/stepfunctions/interpreter.test.ts',
];

export default defineConfig({
  test: {
    exclude: ['node_modules/**'],
    pool: 'forks',
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    // Per-file CPU, only when VALENCE_CPU_LOG names a log (test/setup/cpu-per-file.ts).
    setupFiles: process.env['VALENCE_CPU_LOG'] ? ['test/setup/cpu-per-file.ts'] : [],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'isolated', include: ['test/**/*.test.ts'], exclude: ['node_modules/**', ...SHARED_FORK] } },
      { extends: true, test: { name: 'shared', include: SHARED_FORK, isolate: false } },
    ],
  },
});
