/**
 * Shared pieces of the benchmarks: the machine description, statistics, result files, the
 * local cloud with the benchmark workflows deployed, and the AWS prices used for costs.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startLocalCloud, type LocalCloud, type LocalCloudOptions } from '../localstack/index.ts';
import { connect, type ValenceClient } from '../sdk/client/index.ts';
import { stateMachineName } from '../sdk/contract.ts';

export const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
export const WORKFLOWS = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));

/** One line of the printed summary table (and of summary.json). */
export interface SummaryRow {
  readonly benchmark: string;
  readonly metric: string;
  readonly value: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly goal: string;
  /** `yes`, `NO`, or `-` when there is no goal. */
  readonly met: string;
  /** 1-minute load average before → after the benchmark that produced the row (set by run.ts). */
  readonly load?: string;
  /** The benchmark outcome (result file) that produced the row (set by run.ts; partial runs keep the others). */
  readonly source?: string;
}

/** Load averages (1, 5, 15 min) rounded to 0.01: recorded before and after each benchmark. */
export function loadAverage(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

/** Issue 18's goals, one place, so the rows and the JSON agree. */
export const ISSUE18_GOALS = {
  chainPerNodeOverheadMs: 6,
  fanoutWallMs: 4_000,
  largeWallMs: 120_000,
  largeDispatchCallMs: 4_000,
  largeNodes: 20_000,
  startDelayP50Ms: 5,
  startDelayP95Ms: 15,
  makespanOverCriticalPath: 1.05,
  lambdaInvocationsPerNode: 1.05,
  dynamoDbWritesPerNode: 2.5,
  s3RequestsPerNode: 0.5,
  usdPer1000Nodes: 0.033,
} as const;

/** The benchmark label of issue 18's rows (sorted first in the table). */
export const ISSUE18 = '0 issue 18';

/** What each benchmark module returns: its full JSON and its summary rows. */
export interface BenchOutcome {
  readonly name: string;
  readonly result: Record<string, unknown>;
  readonly rows: SummaryRow[];
}

/** The machine, as the README's Performance section states it. */
export function machine(): Record<string, unknown> {
  const cpuInfo = (() => {
    try {
      return /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim();
    } catch {
      return undefined;
    }
  })();
  const freeH = (() => {
    try {
      return execSync('free -h', { encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  })();
  return {
    node: process.version,
    nproc: cpus().length,
    cpuModel: cpuInfo ?? cpus()[0]?.model,
    totalMemoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    freeH,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    platform: `${process.platform} ${process.arch}`,
  };
}

/** The value at quantile `q` (0..1) by the nearest-rank method. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** p50, p95, min, max, mean of a sample, rounded to 0.1. */
export function describe(values: readonly number[]): { n: number; p50: number; p95: number; min: number; max: number; mean: number } {
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    n: values.length,
    p50: r(quantile(values, 0.5)),
    p95: r(quantile(values, 0.95)),
    min: r(Math.min(...values)),
    max: r(Math.max(...values)),
    mean: r(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)),
  };
}

/** Rounds to `digits` decimals. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Writes `bench/results/{name}.json`. */
export function writeResult(name: string, result: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = `${RESULTS_DIR}${name}.json`;
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}

/** Prints one progress line (stderr, so stdout stays the table). */
export function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** A local cloud with bench/fixtures/workflows.ts deployed, and a client. */
export interface BenchCloud {
  readonly cloud: LocalCloud;
  readonly client: ValenceClient;
  /** `arn:…:execution:valence_{lattice}:{dispatchId}`. */
  executionArn(lattice: string, dispatchId: string): string;
  close(): Promise<void>;
}

/** Starts the local cloud with the benchmark workflows; `close()` stops it. */
export async function startBenchCloud(options: Partial<LocalCloudOptions> = {}): Promise<BenchCloud> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const cloud = await startLocalCloud({
    port: 0,
    workflows: WORKFLOWS,
    batchDelays: { submittedMs: 20, pendingMs: 20, runnableMs: 20, startingMs: 20 },
    ...options,
    environment: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...options.environment },
  });
  const client = connect({ endpoint: cloud.endpoint, region: cloud.region, credentials: cloud.credentials });
  return {
    cloud,
    client,
    executionArn: (lattice, dispatchId) => `arn:aws:states:${cloud.region}:${cloud.accountId}:execution:${stateMachineName('valence', lattice)}:${dispatchId}`,
    async close() {
      client.close();
      await cloud.stop();
    },
  };
}

/**
 * Public AWS prices, us-east-1, as used for every dollar figure (checked for this benchmark;
 * re-check before quoting: prices change).
 */
export const PRICES = {
  source: 'public AWS price pages, us-east-1 (Step Functions, Lambda, DynamoDB on-demand, S3 Standard)',
  stepFunctionsStandardPerStateTransition: 0.025 / 1000,
  lambdaPerRequest: 0.2 / 1_000_000,
  lambdaPerGbSecondX86: 0.0000166667,
  lambdaPerGbSecondArm: 0.0000133334,
  dynamoDbPerWriteRequestUnit: 0.625 / 1_000_000,
  dynamoDbPerReadRequestUnit: 0.125 / 1_000_000,
  s3PerPut: 0.005 / 1000,
  s3PerGet: 0.0004 / 1000,
} as const;

/** The infra default for the step handler: 1,024 MB, ARM64 (infra/orchestrator.ts, infra/private/handler.ts). */
export const STEP_HANDLER = { memoryMb: 1024, architecture: 'arm64' } as const;

/** Formats a number for the table. */
export function fmt(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
