/**
 * `npm run mutation`: mutation testing (StrykerJS, vitest runner) of the pure parts of the
 * SDK — sdk/model, sdk/compiler and sdk/runtime/serialization.ts — against their unit tests
 * under test/sdk. It measures whether the unit tests notice a change in the code they cover.
 * Not part of `npm test`: it takes tens of minutes.
 *
 * One Stryker run per folder, one after the other, each with one test runner (concurrency 1:
 * the machine is shared) and a time budget after which that run is stopped and reported as
 * `budget-exceeded`. Scores per folder go to bench/results/mutation.json; Stryker's own
 * reports to reports/mutation/<folder>.json.
 *
 * A run stopped by its budget writes no Stryker report; its last progress line (tested,
 * survived, timed out so far) is recorded as `partial` instead, from reports/mutation/<folder>.log.
 *
 * Options: `--only model,compiler,runtime`, `--budget-minutes 30` (per folder),
 * `--incremental` (reuse the previous run's results for mutants whose code and covering tests
 * did not change; the result says so), `--partial-log compiler=path/to/stryker.log` (record a
 * stopped run's progress from its log, run nothing), `--from-report model --minutes 51
 * --load-before 8.4,8.3,7.7` (record a Stryker run that finished outside this script, e.g. one
 * let run past its budget, from reports/mutation/<folder>.json; run nothing).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadAverage, machine, progress, round, writeResult } from './lib.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** A folder to mutate and the unit tests that are meant to cover it. */
interface Target {
  readonly name: string;
  readonly mutate: readonly string[];
  readonly tests: readonly string[];
  /** Why these tests (and not all of test/sdk): recorded in the result. */
  readonly note: string;
}

const TARGETS: readonly Target[] = [
  {
    name: 'model',
    mutate: ['sdk/model/**/*.ts'],
    tests: ['test/sdk/model/**/*.test.ts'],
    note: 'all the model unit tests (milliseconds each, no cloud); graph-json, options-shape and mutants.test.ts were written against the survivors of earlier runs',
  },
  {
    name: 'compiler',
    mutate: ['sdk/compiler/**/*.ts'],
    tests: ['test/sdk/compiler/compile.test.ts', 'test/sdk/compiler/awaiting.test.ts', 'test/sdk/compiler/schedule.test.ts', 'test/sdk/compiler/mutants.test.ts'],
    note:
      'the cheap compiler tests: compile, awaiting, schedule (its 300 random DAGs are the exactness invariant) and mutants (small graphs aimed at the branches, bounds and exact states the others leave open). ' +
      'Left out: exactness.test.ts (an ASL interpreter with sleeping stub handlers, plus the asl-validator checks at ≈300 ms a call) and partition.test.ts (100,000-, 2,500- and 2,000-node graphs: the 1 MB limit, the AWS limits that cannot be raised, the scheduler hang catcher). ' +
      'Those were what made a compiler mutant cost ~15 s (the asl-validator test alone ≈10 s, run first for every asl.ts mutant); they moved out of compile.test.ts and schedule.test.ts into exactness.test.ts and partition.test.ts, unchanged, so npm test still runs them',
  },
  { name: 'runtime', mutate: ['sdk/runtime/serialization.ts'], tests: ['test/sdk/runtime/**/*.test.ts'], note: 'the pure part of the runtime (the serialization format); the rest needs AWS and is covered by the integration tests' },
];

/** Counts of one Stryker report, per status. */
interface Counts {
  killed: number;
  survived: number;
  timeout: number;
  noCoverage: number;
  other: number;
}

/** Mutation score as Stryker defines it: detected / (detected + undetected), in percent. */
function score(c: Counts): number | null {
  const detected = c.killed + c.timeout;
  const total = detected + c.survived + c.noCoverage;
  return total === 0 ? null : round((detected / total) * 100, 1);
}

interface StrykerReport {
  readonly files: Record<string, { readonly mutants: readonly { readonly status: string; readonly mutatorName: string; readonly location: { start: { line: number } }; readonly replacement?: string }[] }>;
}

function countReport(report: StrykerReport): { total: Counts; files: Record<string, Counts & { score: number | null }>; survivors: string[] } {
  const total: Counts = { killed: 0, survived: 0, timeout: 0, noCoverage: 0, other: 0 };
  const files: Record<string, Counts & { score: number | null }> = {};
  const survivors: string[] = [];
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const c: Counts = { killed: 0, survived: 0, timeout: 0, noCoverage: 0, other: 0 };
    for (const m of mutants) {
      if (m.status === 'Killed') c.killed++;
      else if (m.status === 'Survived') c.survived++;
      else if (m.status === 'Timeout') c.timeout++;
      else if (m.status === 'NoCoverage') c.noCoverage++;
      else c.other++;
      if (m.status === 'Survived' || m.status === 'NoCoverage') survivors.push(`${file}:${m.location.start.line} ${m.mutatorName}${m.replacement ? ` → ${m.replacement.slice(0, 60)}` : ''}`);
    }
    files[file] = { ...c, score: score(c) };
    for (const key of Object.keys(total) as (keyof Counts)[]) total[key] += c[key];
  }
  return { total, files, survivors };
}

/** Progress so far, from the last "N/M tested (S survived, T timed out)" line of a Stryker log. */
export function partialFromLog(log: string): { tested: number; total: number; survived: number; timedOut: number; scoreSoFar: number | null } | undefined {
  const lines = [...log.matchAll(/(\d+)\/(\d+) tested \((\d+) survived, (\d+) timed out\)/g)];
  const last = lines.at(-1);
  if (!last) return undefined;
  const [tested, total, survived, timedOut] = last.slice(1, 5).map(Number) as [number, number, number, number];
  return { tested, total, survived, timedOut, scoreSoFar: tested === 0 ? null : round(((tested - survived) / tested) * 100, 1) };
}

/** Runs Stryker for one target in its own process group; kills the group when the budget ends. */
function runStryker(target: Target, budgetMs: number, incremental: boolean): Promise<'finished' | 'budget-exceeded' | 'failed'> {
  mkdirSync(`${ROOT}reports/mutation`, { recursive: true });
  const log = createWriteStream(`${ROOT}reports/mutation/${target.name}.log`);
  return new Promise((resolve) => {
    const child = spawn('npx', ['stryker', 'run', 'bench/mutation/stryker.config.mjs'], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VALENCE_MUTATE: target.mutate.join(','), VALENCE_MUTATION_TESTS: target.tests.join(','), VALENCE_MUTATION_NAME: target.name, VALENCE_MUTATION_INCREMENTAL: incremental ? '1' : '0' },
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk: Buffer) => {
        log.write(chunk);
        process.stderr.write(chunk);
      });
    }
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    }, budgetMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      log.end();
      resolve(expired ? 'budget-exceeded' : code === 0 ? 'finished' : 'failed');
    });
  });
}

/** Test runners per Stryker run, as stryker.config.mjs reads it. */
function concurrency(): number {
  return Number(process.env['VALENCE_MUTATION_CONCURRENCY'] ?? 1);
}

/** A finished run's result record, whether this script ran Stryker or `--from-report` read its report. */
function finishedRecord(
  target: Target,
  counted: ReturnType<typeof countReport>,
  run: { readonly outcome: string; readonly minutes: number | null; readonly incremental: boolean | undefined; readonly load: { readonly before: readonly number[] | null; readonly after: readonly number[] } },
): Record<string, unknown> {
  return {
    ...run,
    concurrency: concurrency(),
    score: score(counted.total),
    ...counted.total,
    mutate: target.mutate,
    tests: target.tests,
    note: target.note,
    files: counted.files,
    survivors: counted.survivors,
    at: new Date().toISOString(),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, 'budget-minutes': { type: 'string', default: '30' }, 'partial-log': { type: 'string' }, incremental: { type: 'boolean', default: false }, 'from-report': { type: 'string' }, minutes: { type: 'string' }, 'load-before': { type: 'string' } } });
  const incremental = values.incremental;
  const only = values.only?.split(',');
  const budgetMs = Number(values['budget-minutes']) * 60_000;
  const folders: Record<string, unknown> = {};
  if (values['partial-log']) {
    const [name, path] = values['partial-log'].split('=') as [string, string];
    const target = TARGETS.find((t) => t.name === name);
    if (!target || !path) throw new Error(`--partial-log wants <folder>=<log path>, folder one of ${TARGETS.map((t) => t.name).join(', ')}`);
    folders[name] = { outcome: 'budget-exceeded', partial: partialFromLog(readFileSync(path, 'utf8')), mutate: target.mutate, tests: target.tests, note: target.note, at: new Date().toISOString() };
  }
  if (values['from-report']) {
    const target = TARGETS.find((t) => t.name === values['from-report']);
    if (!target) throw new Error(`--from-report wants a folder, one of ${TARGETS.map((t) => t.name).join(', ')}`);
    const counted = countReport(JSON.parse(readFileSync(`${ROOT}reports/mutation/${target.name}.json`, 'utf8')) as StrykerReport);
    folders[target.name] = finishedRecord(target, counted, {
      outcome: 'finished',
      minutes: values.minutes === undefined ? null : Number(values.minutes),
      incremental,
      load: { before: values['load-before']?.split(',').map(Number) ?? null, after: loadAverage() },
    });
  }
  const skipRuns = values['partial-log'] !== undefined || values['from-report'] !== undefined;
  for (const target of skipRuns ? [] : TARGETS.filter((t) => !only || only.includes(t.name))) {
    progress(`mutation: ${target.name} (${target.mutate.join(', ')}) against ${target.tests.join(', ')}, budget ${values['budget-minutes']} min`);
    const started = Date.now();
    const loadBefore = loadAverage();
    const outcome = await runStryker(target, budgetMs, incremental);
    const load = { before: loadBefore, after: loadAverage() };
    const minutes = round((Date.now() - started) / 60_000, 1);
    const reportPath = `${ROOT}reports/mutation/${target.name}.json`;
    if (outcome !== 'finished' || !existsSync(reportPath)) {
      const logPath = `${ROOT}reports/mutation/${target.name}.log`;
      const partial = existsSync(logPath) ? partialFromLog(readFileSync(logPath, 'utf8')) : undefined;
      folders[target.name] = { outcome, minutes, incremental, load, concurrency: concurrency(), ...(partial ? { partial } : {}), mutate: target.mutate, tests: target.tests, note: target.note, at: new Date().toISOString() };
      progress(`mutation: ${target.name} ${outcome} after ${minutes} min`);
      continue;
    }
    const counted = countReport(JSON.parse(readFileSync(reportPath, 'utf8')) as StrykerReport);
    folders[target.name] = finishedRecord(target, counted, { outcome, minutes, incremental, load });
    progress(`mutation: ${target.name} score ${score(counted.total)} % in ${minutes} min`);
  }
  // Read the file again only now: folders run separately (--only) keep each other's results.
  const file = `${ROOT}bench/results/mutation.json`;
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { folders?: Record<string, unknown> }) : {};
  writeResult('mutation', {
    what: 'StrykerJS mutation score per folder: (killed + timed out) / (killed + timed out + survived + no coverage); static and string-literal mutants left out',
    machine: machine(),
    folders: { ...previous.folders, ...folders },
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
