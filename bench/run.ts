/**
 * `npm run bench`: runs every benchmark with its baseline in the same process run, writes one
 * JSON file per benchmark plus summary.json under bench/results/, and prints a summary table.
 *
 * Options: `--only start,overhead,cancel,cancel-scale,compile,large,vitest,soak` to run a subset (`soak`, like `vitest`, runs only when named) (the summary keeps
 * the other rows of the previous run, marked as carried over). `vitest` (the whole `vitest run`
 * suite, timed) runs only when named; otherwise its last recorded result is shown. Every result
 * file and table row carries the 1-minute load average before → after its benchmark. The whole run takes about 10–15 minutes on a 2-core machine; sizes the issue asks
 * for that would take longer are scaled down, and every result file says how (`scaling`).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCancelLatency } from './cancel-latency.ts';
import { runCancelScaleBench } from './cancel-scale.ts';
import { runCompileScale } from './compile-scale.ts';
import { ISSUE18, RESULTS_DIR, fmt, loadAverage, machine, progress, round, writeResult, type BenchOutcome, type SummaryRow } from './lib.ts';
import { runVitestWall, vitestRowFromFile } from './vitest-wall.ts';
import { runOrchestration } from './orchestration.ts';
import { runLargeLattice } from './large-lattice.ts';
import { runSoak } from './soak.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const START_RUNS = 3;

/** Benchmark 5, by the existing bench/localcloud-start.ts (its own child processes and result file). */
async function runLocalCloudStart(): Promise<BenchOutcome> {
  progress(`start: bench/localcloud-start.ts --runs ${START_RUNS}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/localcloud-start.ts', '--runs', String(START_RUNS)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench/localcloud-start.ts exited ${code}`))));
  });
  const result = JSON.parse(readFileSync(`${RESULTS_DIR}localcloud-start.json`, 'utf8')) as {
    localCloud: Record<string, number>;
    baseline: Record<string, number>;
    ratio: Record<string, number>;
    meetsTargets: Record<string, boolean>;
  };
  const c = result.localCloud;
  const b = result.baseline;
  const rows: SummaryRow[] = [
    {
      benchmark: '5 local cloud',
      metric: `import + start ms (median of ${START_RUNS})`,
      value: fmt((c['importMs'] ?? 0) + (c['startMs'] ?? 0), 0),
      baseline: `bare http server ${fmt((b['importMs'] ?? 0) + (b['startMs'] ?? 0), 0)}`,
      ratio: `×${fmt(result.ratio['importPlusStart'] ?? NaN, 1)}`,
      goal: '< 1,000',
      met: result.meetsTargets['startUnder1s'] ? 'yes' : 'NO',
    },
    {
      benchmark: '5 local cloud',
      metric: 'spawn → first answer ms (+ first DynamoDB & S3 ms)',
      value: `${fmt(c['spawnToReadyMs'] ?? NaN, 0)} (+${fmt(c['firstDynamoDbAndS3Ms'] ?? NaN, 0)})`,
      baseline: `bare http server ${fmt(b['spawnToReadyMs'] ?? NaN, 0)}`,
      ratio: `×${fmt(result.ratio['spawnToReady'] ?? NaN, 2)}`,
      goal: '-',
      met: '-',
    },
    {
      benchmark: '5 local cloud',
      metric: 'idle RSS MB',
      value: fmt(c['idleRssMb'] ?? NaN, 0),
      baseline: `bare http server ${fmt(b['idleRssMb'] ?? NaN, 0)}`,
      ratio: `×${fmt(result.ratio['idleRss'] ?? NaN, 2)}`,
      goal: '< 200',
      met: result.meetsTargets['idleRssUnder200Mb'] ? 'yes' : 'NO',
    },
  ];
  return { name: 'localcloud-start', result, rows };
}

function table(rows: readonly SummaryRow[]): string {
  const headers: (keyof SummaryRow)[] = ['benchmark', 'metric', 'value', 'baseline', 'ratio', 'goal', 'met', 'load'];
  const cells = [headers.map(String), ...rows.map((r) => headers.map((h) => r[h] ?? '-'))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(cells[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' } } });
  const only = values.only ? new Set(values.only.split(',')) : undefined;
  const wanted = (name: string) => !only || only.has(name);
  const started = Date.now();
  const host = machine();
  progress(`machine: ${String(host['cpuModel'])}, ${String(host['nproc'])} CPUs, Node ${String(host['node'])}`);

  const outcomes: BenchOutcome[] = [];
  const failures: { benchmark: string; error: string }[] = [];
  const attempt = async (name: string, run: () => Promise<BenchOutcome | BenchOutcome[]>): Promise<void> => {
    if (!wanted(name)) return;
    const t0 = performance.now();
    // Other work on the machine slows every figure: each result says how loaded it was.
    const loadBefore = loadAverage();
    try {
      const got = await run();
      const loadAfter = loadAverage();
      const load = `${loadBefore[0]} → ${loadAfter[0]}`;
      for (const outcome of Array.isArray(got) ? got : [got]) {
        const stamped = { ...outcome, rows: outcome.rows.map((r) => ({ ...r, load, source: outcome.name })) };
        outcomes.push(stamped);
        const extra = { date: new Date().toISOString(), machine: host, benchmarkWallMs: round(performance.now() - t0, 0), loadAverageBefore: loadBefore, loadAverageAfter: loadAfter };
        if (outcome.name === 'localcloud-start' || outcome.name === 'vitest-wall') {
          // These wrote their own file (a child process); add the load figures to it.
          try {
            const written = JSON.parse(readFileSync(`${RESULTS_DIR}${outcome.name}.json`, 'utf8')) as Record<string, unknown>;
            writeResult(outcome.name, { ...written, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter });
          } catch {
            // Nothing written: nothing to stamp.
          }
        } else writeResult(outcome.name, { ...outcome.result, ...extra });
      }
    } catch (error) {
      // One broken benchmark must not hide the others' numbers; it is reported as missing.
      failures.push({ benchmark: name, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      progress(`FAILED ${name}: ${failures.at(-1)?.error}`);
    }
  };

  await attempt('start', runLocalCloudStart);
  await attempt('overhead', runOrchestration);
  await attempt('cancel', runCancelLatency);
  await attempt('cancel-scale', runCancelScaleBench);
  await attempt('compile', runCompileScale);
  await attempt('large', runLargeLattice);
  // The soak (issue 14) runs two 5 × 1,000-node runs: only on request (`--only soak`).
  if (only?.has('soak')) await attempt('soak', runSoak);
  // `vitest run` is the whole suite: only on request (`--only vitest`), never by default.
  if (only?.has('vitest')) await attempt('vitest', runVitestWall);
  else {
    const recorded = vitestRowFromFile();
    if (recorded && !only) outcomes.push(recorded);
  }

  let rows = outcomes.flatMap((o) => o.rows);
  let carried: string[] = [];
  if (only) {
    // A partial run keeps the other benchmarks' rows from the previous summary, marked as such.
    try {
      const previous = JSON.parse(readFileSync(`${RESULTS_DIR}summary.json`, 'utf8')) as { date?: string; rows?: SummaryRow[] };
      // Rows are kept per producing result file (issue 18's rows come from several benchmarks).
      const freshSources = new Set(rows.map((r) => r.source));
      const freshBenchmarks = new Set(rows.map((r) => r.benchmark));
      const kept = (previous.rows ?? []).filter((r) => (r.source === undefined ? !freshBenchmarks.has(r.benchmark) : !freshSources.has(r.source)));
      carried = [...new Set(kept.map((r) => r.benchmark))].map((b) => `${b} (from the run of ${previous.date ?? 'unknown date'})`);
      rows = [...kept, ...rows].sort((a, b) => a.benchmark.localeCompare(b.benchmark, 'en', { numeric: true }));
    } catch {
      // No previous summary: this run's rows only.
    }
  }
  // Issue 18's table first: each of its figures beside its goal.
  rows = [...rows.filter((r) => r.benchmark === ISSUE18), ...rows.filter((r) => r.benchmark !== ISSUE18)];
  const summary = {
    command: 'npm run bench',
    date: new Date().toISOString(),
    totalWallSeconds: round((Date.now() - started) / 1000, 1),
    machine: host,
    scaling: Object.fromEntries(outcomes.map((o) => [o.name, (o.result as { scaling?: string }).scaling ?? 'as in the issue'])),
    notImplemented: [] as string[],
    failures,
    ...(carried.length > 0 ? { rowsCarriedOver: carried } : {}),
    rows,
    files: outcomes.map((o) => `bench/results/${o.name}.json`),
  };
  writeResult('summary', summary);
  process.stdout.write(`\nvalence benchmarks — ${String(host['cpuModel'])}, ${String(host['nproc'])} CPUs, Node ${String(host['node'])}, ${summary.totalWallSeconds} s\n\n`);
  process.stdout.write(`${table(rows)}\n\n`);
  process.stdout.write('Ratios: overhead = local cloud ÷ in-process / local cloud ÷ interpreter; cancel = latency ÷ API round trip; compile = compile ÷ build.\n');
  for (const [name, scaling] of Object.entries(summary.scaling)) process.stdout.write(`Scaling (${name}): ${scaling}\n`);
  for (const note of summary.notImplemented) process.stdout.write(`Not implemented: ${note}\n`);
  for (const f of failures) process.stdout.write(`FAILED: ${f.benchmark}: ${f.error}\n`);
  process.stdout.write(`Results: ${summary.files.join(', ')}, bench/results/summary.json\n`);
  if (failures.length > 0) process.exitCode = 1;
}

await main();
