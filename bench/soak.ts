/**
 * The soak (issue 14): five concurrent 1,000-node dispatches (Lambda and Batch electrons) on
 * the local cloud, with 5 % of DynamoDB calls throttled, 5 % of S3 calls answered 500, and
 * step handler invocations crashed (at once or mid-run), beside the same run without faults.
 *
 * Passes when every dispatch completes with the correct result (the sum of every square, so
 * every node's recorded output is read), every node is recorded COMPLETED exactly once (one
 * item per node), and nothing is left afterwards: no execution running, no Batch job
 * unfinished, no job process alive. It also counts how many nodes ran their electron more
 * than once (at-least-once execution after a crash), which is allowed.
 *
 * Faults are turned on once the dispatch calls have returned: they target the runtime's own
 * calls (store, payloads, jobs), not the client's dispatch writes.
 *
 * Run it alone: `npm run bench -- --only soak` (not in the default bench run: it takes many
 * minutes), or `node --import tsx bench/soak.ts`. Sizes: `VALENCE_SOAK_NODES` (1000),
 * `VALENCE_SOAK_DISPATCHES` (5), `VALENCE_SOAK_BATCH_EVERY` (100), `VALENCE_SOAK_CRASHES` (20).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListExecutionsCommand } from '@aws-sdk/client-sfn';
import { isProcessAlive } from '../localstack/batch/index.ts';
import { FaultKind } from '../localstack/core/faults.ts';
import { DispatchStatus } from '../sdk/status.ts';
import { SOAK_BATCH_EVERY, SOAK_NODES, SOAK_WIDTH, soak, soakExpected } from './fixtures/soak.ts';
import { fmt, loadAverage, machine, progress, round, startBenchCloud, writeResult, type BenchOutcome } from './lib.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/soak.ts', import.meta.url));
const DISPATCHES = Number(process.env['VALENCE_SOAK_DISPATCHES'] ?? 5);
const CRASHES = Number(process.env['VALENCE_SOAK_CRASHES'] ?? 20);
const TIMEOUT_MS = Number(process.env['VALENCE_SOAK_TIMEOUT_MS'] ?? 3_600_000);
const STEP_FUNCTION = 'valence-step';

/** What one run (with or without faults) found. */
interface SoakRun {
  readonly faults: string;
  readonly wallMs: number;
  readonly dispatches: number;
  readonly completedWithCorrectResult: number;
  readonly statuses: Record<string, number>;
  /** Nodes recorded, and recorded COMPLETED, over all dispatches. */
  readonly nodesRecorded: number;
  readonly nodesCompleted: number;
  /** Node ids recorded more than once (must be 0). */
  readonly duplicateNodeRecords: number;
  /** Electron runs (from the electrons' own logs): total, nodes that ran more than once, nodes that never ran. */
  readonly electronRuns: number;
  readonly nodesRunMoreThanOnce: number;
  readonly nodesNeverRun: number;
  readonly crashesFired: number;
  readonly stepInvocations: number;
  /** What was left after the dispatches ended. */
  readonly leftover: { readonly runningExecutions: number; readonly unfinishedJobs: number; readonly liveJobProcesses: number };
  /** Client reads that failed under faults and were retried by the soak's own poll. */
  readonly pollErrors: number;
  readonly errors: readonly string[];
  readonly load: { readonly before: number[]; readonly after: number[] };
}

async function soakOnce(withFaults: boolean): Promise<SoakRun> {
  const before = loadAverage();
  const dir = mkdtempSync(join(tmpdir(), 'valence-soak-'));
  const environment = {
    VALENCE_SOAK_DIR: dir,
    VALENCE_SOAK_NODES: String(SOAK_NODES),
    VALENCE_SOAK_BATCH_EVERY: String(SOAK_BATCH_EVERY),
  };
  // The module is also loaded in this process (the client builds the same graph).
  Object.assign(process.env, environment);
  const bench = await startBenchCloud({ workflows: FIXTURE, environment });
  const errors: string[] = [];
  let pollErrors = 0;
  try {
    const invocations = (): number => bench.cloud.counters()['lambda']?.['Invoke'] ?? 0;
    const invocationsBefore = invocations();
    const t0 = performance.now();
    const ids = await Promise.all(Array.from({ length: DISPATCHES }, async () => (await bench.client.dispatch(soak)()).id));
    progress(`soak (${withFaults ? 'faults' : 'no faults'}): ${ids.length} dispatches of ${SOAK_NODES} nodes started`);
    if (withFaults) {
      bench.cloud.faults.add({ service: 'dynamodb', errorRate: 0.05, error: FaultKind.Throttling });
      bench.cloud.faults.add({ service: 's3', errorRate: 0.05, error: FaultKind.ServerError });
      // Spread over the run: every ~(total invocations / crashes)-th step invocation, half of them mid-run.
      const every = Math.max(1, Math.floor((DISPATCHES * SOAK_NODES) / Math.max(1, CRASHES)));
      for (let k = 1; k <= CRASHES; k++) bench.cloud.faults.crashNthInvocation(k * every, STEP_FUNCTION, k % 2 === 0 ? 50 : undefined);
    }
    // Poll each dispatch until it ends; a read failed by an injected fault is retried here.
    const results = await Promise.all(
      ids.map(async (id) => {
        const deadline = performance.now() + TIMEOUT_MS;
        for (;;) {
          try {
            const result = await bench.client.getResult<number>(id);
            if (result.status !== DispatchStatus.RUNNING) return result;
          } catch (error) {
            pollErrors++;
            if (pollErrors <= 5) errors.push(`poll ${id}: ${(error as Error).name}: ${(error as Error).message}`.slice(0, 200));
          }
          if (performance.now() > deadline) throw new Error(`dispatch ${id} still running after ${TIMEOUT_MS} ms`);
          await new Promise((resolve) => setTimeout(resolve, 2_000));
        }
      }),
    );
    const wallMs = performance.now() - t0;
    const crashesLeft = bench.cloud.faults.config().lambdaCrashes.length;
    bench.cloud.faults.clear();
    const expected = soakExpected(SOAK_WIDTH);
    const statuses: Record<string, number> = {};
    let correct = 0;
    let nodesRecorded = 0;
    let nodesCompleted = 0;
    let duplicateNodeRecords = 0;
    for (const result of results) {
      statuses[result.status] = (statuses[result.status] ?? 0) + 1;
      if (result.status === DispatchStatus.COMPLETED && result.result === expected) correct++;
      else errors.push(`${result.dispatchId}: ${result.status}, result ${String(result.result)} (expected ${expected})${result.error ? `: ${result.error.message}` : ''}`.slice(0, 300));
      nodesRecorded += result.nodes.length;
      nodesCompleted += result.nodes.filter((n) => n.status === 'COMPLETED').length;
      duplicateNodeRecords += result.nodes.length - new Set(result.nodes.map((n) => n.id)).size;
    }
    // Runs per node, from the electrons' own logs.
    let electronRuns = 0;
    let nodesRunMoreThanOnce = 0;
    let nodesNeverRun = 0;
    for (const id of ids) {
      const file = readdirSync(dir).includes(`${id}.log`) ? readFileSync(join(dir, `${id}.log`), 'utf8') : '';
      const runs = new Map<number, number>();
      for (const line of file.split('\n').filter(Boolean)) runs.set(Number(line), (runs.get(Number(line)) ?? 0) + 1);
      electronRuns += [...runs.values()].reduce((a, b) => a + b, 0);
      nodesRunMoreThanOnce += [...runs.values()].filter((n) => n > 1).length;
      nodesNeverRun += SOAK_NODES - runs.size;
    }
    // Leftovers: executions, Batch jobs, job processes.
    const { stateMachineArnPrefix } = await bench.client.outputs();
    const running = await bench.cloud.clients.sfn.send(new ListExecutionsCommand({ stateMachineArn: `${stateMachineArnPrefix}soak`, statusFilter: 'RUNNING' }));
    const jobs = bench.cloud.services.batch.jobs();
    const unfinishedJobs = jobs.filter((j) => j.status !== 'SUCCEEDED' && j.status !== 'FAILED').length;
    const liveJobProcesses = jobs.filter((j) => j.pid !== undefined && isProcessAlive(j.pid)).length;
    return {
      faults: withFaults
        ? `5 % of DynamoDB calls throttled (ThrottlingException), 5 % of S3 calls 500 InternalError, ${CRASHES} step invocations crashed (half at once, half 50 ms in)`
        : 'none',
      wallMs: round(wallMs, 0),
      dispatches: ids.length,
      completedWithCorrectResult: correct,
      statuses,
      nodesRecorded,
      nodesCompleted,
      duplicateNodeRecords,
      electronRuns,
      nodesRunMoreThanOnce,
      nodesNeverRun,
      crashesFired: withFaults ? CRASHES - crashesLeft : 0,
      stepInvocations: invocations() - invocationsBefore,
      leftover: { runningExecutions: running.executions?.length ?? 0, unfinishedJobs, liveJobProcesses },
      pollErrors,
      errors,
      load: { before, after: loadAverage() },
    };
  } finally {
    bench.cloud.faults.clear();
    await bench.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether a run passed: every dispatch correct, every node recorded once, nothing left. */
function passed(run: SoakRun): boolean {
  const total = run.dispatches * SOAK_NODES;
  return (
    run.completedWithCorrectResult === run.dispatches &&
    run.nodesRecorded === total &&
    run.nodesCompleted === total &&
    run.duplicateNodeRecords === 0 &&
    run.nodesNeverRun === 0 &&
    run.leftover.runningExecutions === 0 &&
    run.leftover.unfinishedJobs === 0 &&
    run.leftover.liveJobProcesses === 0
  );
}

/**
 * One run in a child process of its own: a second local cloud started in the same process
 * as a first did not fire its Lambda crash rules (seen in a smoke run of this soak), so each
 * run gets a fresh process, as bench/localcloud-start.ts does.
 */
async function soakInChild(withFaults: boolean): Promise<SoakRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--run', withFaults ? 'faults' : 'baseline'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const line = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`soak run (${withFaults ? 'faults' : 'baseline'}) exited ${code}: ${out.slice(-500)}`);
  return JSON.parse(line) as SoakRun;
}

/** Runs the soak: the fault-free run first (the baseline), then the same under faults, each in its own process. */
export async function runSoak(): Promise<BenchOutcome> {
  progress(`soak: ${DISPATCHES} × ${SOAK_NODES} nodes (every ${SOAK_BATCH_EVERY}th square on Batch), load ${loadAverage().join(' / ')}`);
  const baseline = await soakInChild(false);
  progress(`soak: fault-free ${fmt(baseline.wallMs / 1000, 1)} s, passed ${passed(baseline)}`);
  const faulted = await soakInChild(true);
  progress(`soak: with faults ${fmt(faulted.wallMs / 1000, 1)} s, passed ${passed(faulted)}`);
  const result = {
    benchmark: 'soak (issue 14)',
    machine: machine(),
    sizes: { dispatches: DISPATCHES, nodesPerDispatch: SOAK_NODES, batchNodesPerDispatch: Math.floor(SOAK_WIDTH / SOAK_BATCH_EVERY), crashes: CRASHES },
    baseline: { ...baseline, passed: passed(baseline) },
    withFaults: { ...faulted, passed: passed(faulted) },
    slowdown: round(faulted.wallMs / Math.max(1, baseline.wallMs), 2),
  };
  writeResult('soak', result);
  const summary = (run: SoakRun): string =>
    `${run.completedWithCorrectResult}/${run.dispatches} correct, ${run.nodesCompleted}/${run.dispatches * SOAK_NODES} nodes once, ${run.nodesRunMoreThanOnce} re-run, left ${run.leftover.runningExecutions}/${run.leftover.unfinishedJobs}/${run.leftover.liveJobProcesses}, ${fmt(run.wallMs / 1000, 1)} s`;
  return {
    name: 'soak',
    result,
    rows: [
      {
        benchmark: '14 soak',
        metric: `${DISPATCHES} × ${SOAK_NODES} nodes under faults: correct, nodes recorded once, re-runs, left (executions/jobs/processes), wall s`,
        value: summary(faulted),
        baseline: `fault-free: ${summary(baseline)}`,
        ratio: `×${fmt(result.slowdown, 2)}`,
        goal: 'all correct, exactly once, 0 left',
        met: passed(faulted) && passed(baseline) ? 'yes' : 'NO',
      },
    ],
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const run = process.argv.indexOf('--run');
  if (run >= 0) {
    // A child: one run, its figures as the last line of stdout.
    const result = await soakOnce(process.argv[run + 1] === 'faults');
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }
  const outcome = await runSoak();
  process.stdout.write(`${JSON.stringify(outcome.rows, null, 2)}\n`);
  process.exitCode = outcome.rows.every((r) => r.met === 'yes') ? 0 : 1;
}
