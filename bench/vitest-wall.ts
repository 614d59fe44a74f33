/**
 * Issue 18's last figure: the wall time of `vitest run` (the whole suite), which should fall
 * as the local cloud gets faster. It runs the suite in a child process and records the wall
 * time, the load average before and after, and vitest's own summary lines.
 *
 * The whole suite is heavy on a shared 2-core machine, so `npm run bench` never runs it by
 * default: `npm run bench -- --only vitest` or `node --import tsx bench/vitest-wall.ts` does,
 * and later bench runs show the recorded result with its date.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ISSUE18, RESULTS_DIR, fmt, loadAverage, machine, progress, round, writeResult, type BenchOutcome, type SummaryRow } from './lib.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** What bench/results/vitest-wall.json holds. */
interface VitestWall {
  readonly benchmark: 'vitest-wall';
  readonly command: string;
  readonly date: string;
  readonly wallMs: number;
  readonly exitCode: number | null;
  /** vitest's "Test Files" / "Tests" summary lines, as printed. */
  readonly summary: readonly string[];
  readonly loadAverageBefore: readonly number[];
  readonly loadAverageAfter: readonly number[];
  readonly machine: Record<string, unknown>;
}

function rowOf(result: VitestWall): SummaryRow {
  return {
    benchmark: ISSUE18,
    metric: '`vitest run` wall s',
    value: `${fmt(result.wallMs / 1000, 0)}${result.exitCode === 0 ? '' : ` (exit ${String(result.exitCode)})`}`,
    baseline: `${result.summary.join('; ') || 'no summary'} (${result.date.slice(0, 10)})`,
    ratio: '-',
    goal: 'report it; it should fall',
    met: '-',
    load: `${result.loadAverageBefore[0] ?? '?'} → ${result.loadAverageAfter[0] ?? '?'}`,
    source: 'vitest-wall',
  };
}

/** Runs `vitest run` once and records its wall time. */
export async function runVitestWall(): Promise<BenchOutcome> {
  const loadBefore = loadAverage();
  progress(`vitest: npx vitest run (whole suite), load ${loadBefore.join(' ')}`);
  const t0 = performance.now();
  let output = '';
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url)), 'run'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
  const wallMs = performance.now() - t0;
  const summary = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(Test Files|Tests)\s/.test(l));
  const result: VitestWall = {
    benchmark: 'vitest-wall',
    command: 'npx vitest run',
    date: new Date().toISOString(),
    wallMs: round(wallMs, 0),
    exitCode,
    summary,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadAverage(),
    machine: machine(),
  };
  writeResult('vitest-wall', result);
  progress(`vitest: ${fmt(wallMs / 1000, 0)} s, exit ${String(exitCode)}`);
  return { name: 'vitest-wall', result: result as unknown as Record<string, unknown>, rows: [rowOf(result)] };
}

/** The row of the last recorded `vitest run`, or a row saying it was not measured. */
export function vitestRowFromFile(): BenchOutcome | undefined {
  try {
    const result = JSON.parse(readFileSync(`${RESULTS_DIR}vitest-wall.json`, 'utf8')) as VitestWall;
    return { name: 'vitest-wall', result: result as unknown as Record<string, unknown>, rows: [rowOf(result)] };
  } catch {
    return undefined;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outcome = await runVitestWall();
  console.log(JSON.stringify(outcome.result, null, 2));
}
