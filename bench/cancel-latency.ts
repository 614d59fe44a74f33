/**
 * Benchmark 4: cancel latency on the local cloud, from the `cancel()` call to
 *  (a) a running Lambda electron stopped — its 10 ms heartbeat file stops growing (and, when
 *      it gets the chance, the time its AbortSignal fired, as the electron recorded it);
 *  (b) a running Batch job's process gone (`kill(pid, 0)` fails or the process is a zombie);
 *  (c) every target (the node and its descendant) terminal in DynamoDB (consistent Query).
 * Zero grace (graceSeconds 0) for issue 13's goal p95 ≤ 150 ms for (a) and (c); a stubborn electron with 1 s grace
 * for "≤ grace + 250 ms". Baseline: a signed no-op round trip to the same API
 * (`GET /dispatches/{id}`), in the same run. Also: the watchdog's DynamoDB cost.
 */
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Lattice } from '../sdk/model/index.ts';
import { DEFAULTS } from '../sdk/contract.ts';
import { cancelBatch, cancelLambda, cancelStubborn } from './fixtures/workflows.ts';
import { PRICES, describe, fmt, progress, round, startBenchCloud, type BenchCloud, type BenchOutcome, type SummaryRow } from './lib.ts';

/** Trials per variant. */
export const TRIALS = { lambdaZeroGrace: 50, batchZeroGrace: 50, lambdaStubbornGrace1s: 20, baselineRoundTrips: 50, batchGroup: 5 } as const;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const BEAT_MS = 10;

function beatTimes(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}

/** True when a process with this id exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function allTerminal(bc: BenchCloud, table: string, dispatchId: string, nodeIds: readonly number[]): Promise<boolean> {
  const out = await bc.cloud.clients.dynamodb.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :n)',
      ExpressionAttributeValues: { ':pk': { S: `D#${dispatchId}` }, ':n': { S: 'N#' } },
      ConsistentRead: true,
    }),
  );
  const status = new Map((out.Items ?? []).map((item) => [Number(item['nodeId']?.N), item['status']?.S ?? '']));
  return nodeIds.every((id) => TERMINAL.has(status.get(id) ?? ''));
}

interface Trial {
  /** cancel() call to the heartbeat's stop (last beat + one beat period: an upper bound). */
  stoppedMs?: number;
  /** cancel() call to the electron's abort listener (absent when the thread was terminated first). */
  noticedMs?: number;
  /** cancel() call to the job process gone. */
  processGoneMs?: number;
  /** cancel() call to every target terminal in DynamoDB. */
  terminalMs: number;
  /** cancel() call until it returned its report (it waits, bounded, for the work to stop). */
  cancelCallMs: number;
  method: string;
}

async function lambdaTrial(bc: BenchCloud, table: string, lattice: Lattice<[string], unknown>, name: string): Promise<Trial> {
  const dir = mkdtempSync(join(tmpdir(), 'valence-bench-cancel-'));
  try {
    const beat = join(dir, 'beat');
    const dispatchId = (await bc.client.dispatch(lattice)(dir)).id;
    await waitFor('beats', () => beatTimes(beat).length >= 3);
    const t0 = Date.now();
    const p0 = performance.now();
    const cancelling = bc.client.cancel(dispatchId, { taskIds: [0], reason: 'bench' }).then((report) => ({ report, ms: performance.now() - p0 }));
    await waitFor('targets terminal', () => allTerminal(bc, table, dispatchId, [0, 1]));
    const terminalMs = performance.now() - p0;
    const { report, ms: cancelCallMs } = await cancelling;
    // Long enough to be sure the heartbeat stopped for good.
    await sleep(300);
    const beats = beatTimes(beat);
    const last = beats.at(-1) ?? t0;
    const noticed = existsSync(join(dir, 'noticed')) ? Number(readFileSync(join(dir, 'noticed'), 'utf8')) : undefined;
    await bc.cloud.services.stepfunctions.waitForExecution(bc.executionArn(name, dispatchId));
    return {
      stoppedMs: Math.max(0, last + BEAT_MS - t0),
      ...(noticed !== undefined ? { noticedMs: noticed - t0 } : {}),
      terminalMs,
      cancelCallMs,
      method: report.cancelled.find((c) => c.id === 0)?.method ?? 'none',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function batchGroup(bc: BenchCloud, table: string, size: number): Promise<Trial[]> {
  const dirs = Array.from({ length: size }, () => mkdtempSync(join(tmpdir(), 'valence-bench-batch-')));
  try {
    const ids = await Promise.all(dirs.map(async (dir) => (await bc.client.dispatch(cancelBatch)(dir)).id));
    await Promise.all(dirs.map((dir) => waitFor('job beats', () => existsSync(join(dir, 'pid')) && beatTimes(join(dir, 'beat')).length >= 3, 60_000)));
    const trials: Trial[] = [];
    for (const [i, dispatchId] of ids.entries()) {
      const dir = dirs[i]!;
      const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      if (!alive(pid)) throw new Error(`batch job process ${pid} is not running before the cancel`);
      const p0 = performance.now();
      const cancelling = bc.client.cancel(dispatchId, { taskIds: [0], reason: 'bench' }).then((report) => ({ report, ms: performance.now() - p0 }));
      let processGoneMs: number | undefined;
      let terminalMs: number | undefined;
      await Promise.all([
        waitFor('process gone', () => !alive(pid)).then(() => (processGoneMs = performance.now() - p0)),
        waitFor('targets terminal', () => allTerminal(bc, table, dispatchId, [0, 1])).then(() => (terminalMs = performance.now() - p0)),
      ]);
      const { report, ms } = await cancelling;
      trials.push({ processGoneMs: processGoneMs!, terminalMs: terminalMs!, cancelCallMs: ms, method: report.cancelled.find((c) => c.id === 0)?.method ?? 'none' });
    }
    await Promise.all(ids.map((id) => bc.cloud.services.stepfunctions.waitForExecution(bc.executionArn('cancelBatch', id))));
    return trials;
  } finally {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

async function baselineRoundTrips(bc: BenchCloud, dispatchId: string, n: number): Promise<number[]> {
  const { apiUrl } = await bc.client.outputs();
  const url = new URL(`dispatches/${encodeURIComponent(dispatchId)}`, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  const signer = new SignatureV4({ service: 'execute-api', region: bc.cloud.region, credentials: bc.cloud.credentials, sha256: Sha256 });
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const p0 = performance.now();
    const signed = await signer.sign({
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: {},
      headers: { host: url.host },
    });
    const response = await fetch(url, { method: 'GET', headers: signed.headers as Record<string, string> });
    await response.text();
    if (response.status !== 200) throw new Error(`GET ${url.pathname} answered ${response.status}`);
    times.push(performance.now() - p0);
  }
  return times;
}

const pick = (trials: Trial[], key: keyof Trial): number[] => trials.map((t) => t[key]).filter((v): v is number => typeof v === 'number');
const methods = (trials: Trial[]): Record<string, number> => trials.reduce<Record<string, number>>((acc, t) => ({ ...acc, [t.method]: (acc[t.method] ?? 0) + 1 }), {});

/** Runs benchmark 4 on its own local cloud (watchdog and lease at their defaults). */
export async function runCancelLatency(): Promise<BenchOutcome> {
  progress('cancel: starting the local cloud');
  const bc = await startBenchCloud();
  try {
    const { tableName } = await bc.client.outputs();
    const watchdogMs = DEFAULTS.watchdogIntervalMs;
    const leaseMs = 15_000;
    // Warm the step handler, the cancel handler and the job runner once.
    progress('cancel: warm-up');
    await lambdaTrial(bc, tableName, cancelLambda, 'cancelLambda');
    await batchGroup(bc, tableName, 1);

    // The watchdog's reads, observed: one running electron for 3 s.
    progress('cancel: observing the watchdog for 3 s');
    const dir = mkdtempSync(join(tmpdir(), 'valence-bench-watch-'));
    const watchId = (await bc.client.dispatch(cancelLambda)(dir)).id;
    await waitFor('beats', () => beatTimes(join(dir, 'beat')).length >= 3);
    const g0 = bc.cloud.requestCounters.get('dynamodb', 'GetItem');
    const u0 = bc.cloud.requestCounters.get('dynamodb', 'UpdateItem');
    const w0 = performance.now();
    await sleep(3_000);
    const observedReadsPerMin = ((bc.cloud.requestCounters.get('dynamodb', 'GetItem') - g0) / (performance.now() - w0)) * 60_000;
    const observedWritesPerMin = ((bc.cloud.requestCounters.get('dynamodb', 'UpdateItem') - u0) / (performance.now() - w0)) * 60_000;
    await bc.client.cancel(watchId, { taskIds: [0] });
    await bc.cloud.services.stepfunctions.waitForExecution(bc.executionArn('cancelLambda', watchId));
    rmSync(dir, { recursive: true, force: true });

    progress(`cancel: ${TRIALS.lambdaZeroGrace} Lambda trials, zero grace`);
    const lambda: Trial[] = [];
    for (let i = 0; i < TRIALS.lambdaZeroGrace; i++) lambda.push(await lambdaTrial(bc, tableName, cancelLambda, 'cancelLambda'));
    progress(`cancel: ${TRIALS.batchZeroGrace} Batch trials, zero grace (groups of ${TRIALS.batchGroup} running jobs, cancelled one at a time)`);
    const batch: Trial[] = [];
    while (batch.length < TRIALS.batchZeroGrace) batch.push(...(await batchGroup(bc, tableName, Math.min(TRIALS.batchGroup, TRIALS.batchZeroGrace - batch.length))));
    progress(`cancel: ${TRIALS.lambdaStubbornGrace1s} stubborn Lambda trials, 1 s grace`);
    const stubborn: Trial[] = [];
    for (let i = 0; i < TRIALS.lambdaStubbornGrace1s; i++) stubborn.push(await lambdaTrial(bc, tableName, cancelStubborn, 'cancelStubborn'));
    progress(`cancel: ${TRIALS.baselineRoundTrips} baseline round trips`);
    const baselineId = (await bc.client.dispatch(cancelLambda)(tmpdir())).id;
    await bc.client.cancel(baselineId);
    const baseline = await baselineRoundTrips(bc, baselineId, TRIALS.baselineRoundTrips);

    const a = describe(pick(lambda, 'stoppedMs'));
    const c = describe(pick(lambda, 'terminalMs'));
    const b = describe(pick(batch, 'processGoneMs'));
    const cb = describe(pick(batch, 'terminalMs'));
    const sa = describe(pick(stubborn, 'stoppedMs'));
    const sc = describe(pick(stubborn, 'terminalMs'));
    const base = describe(baseline);
    const readsPerMin = 60_000 / watchdogMs;
    const renewalsPerMin = 60_000 / Math.max(watchdogMs, Math.floor(leaseMs / 3));
    // Eventually consistent reads of items under 4 KB cost half a read request unit.
    const perNodeHour = readsPerMin * 60 * 0.5 * PRICES.dynamoDbPerReadRequestUnit + renewalsPerMin * 60 * PRICES.dynamoDbPerWriteRequestUnit;
    const lambdaHour = 3600 * 1 * PRICES.lambdaPerGbSecondArm;
    const result = {
      benchmark: 'cancel-latency',
      scaling: `as the issue asks: ${TRIALS.lambdaZeroGrace} Lambda and ${TRIALS.batchZeroGrace} Batch trials with zero grace; the extra stubborn-electron variant (1 s grace) runs ${TRIALS.lambdaStubbornGrace1s} trials`,
      setup: {
        watchdogIntervalMs: watchdogMs,
        leaseMs,
        heartbeatPeriodMs: BEAT_MS,
        targets: 'node 0 (running) and its descendant node 1 (not started); cancel(dispatchId, { taskIds: [0] })',
        batch: `${TRIALS.batchGroup} jobs running at once; each cancelled alone while the others keep beating`,
        clock: 'all times from just before the cancel() call, on one machine (Date.now / performance.now)',
      },
      goals: { zeroGraceP95Ms: 150, withGraceP95Ms: 'grace + 250' },
      lambdaZeroGrace: {
        a_electronStoppedMs: a,
        a_electronNoticedSignalMs: describe(pick(lambda, 'noticedMs')),
        noticedInTrials: pick(lambda, 'noticedMs').length,
        c_targetsTerminalInDynamoDbMs: c,
        cancelCallMs: describe(pick(lambda, 'cancelCallMs')),
        methods: methods(lambda),
        met: { a: a.p95 <= 150, c: c.p95 <= 150 },
      },
      batchZeroGrace: {
        b_processGoneMs: b,
        c_targetsTerminalInDynamoDbMs: cb,
        cancelCallMs: describe(pick(batch, 'cancelCallMs')),
        methods: methods(batch),
      },
      lambdaStubbornGrace1s: {
        a_electronStoppedMs: sa,
        c_targetsTerminalInDynamoDbMs: sc,
        methods: methods(stubborn),
        met: { a: sa.p95 <= 1250, c: sc.p95 <= 1250 },
      },
      baseline: { description: 'signed GET /dispatches/{id} round trip to the cancel API (same handler, no cancel work)', roundTripMs: base },
      ratios: {
        lambdaStoppedP50OverBaselineP50: round(a.p50 / base.p50, 2),
        lambdaTerminalP50OverBaselineP50: round(c.p50 / base.p50, 2),
        batchGoneP50OverBaselineP50: round(b.p50 / base.p50, 2),
      },
      watchdog: {
        intervalMs: watchdogMs,
        readsPerRunningNodePerMinute: readsPerMin,
        leaseRenewalWritesPerRunningNodePerMinute: renewalsPerMin,
        observed: { getItemPerMinute: Math.round(observedReadsPerMin), updateItemPerMinute: Math.round(observedWritesPerMin), note: 'one running electron over 3 s; the whole cloud’s GetItem/UpdateItem, so includes any other caller' },
        usdPerRunningNodeHour: round(perNodeHour, 5),
        pricing: 'eventually consistent GetItem of an item < 4 KB = 0.5 RRU at $0.125/M; renewal = 1 WRU at $0.625/M',
        comparedWithLambdaComputeHourUsd: { lambda1GbArmPerHour: round(lambdaHour, 4), watchdogShare: round(perNodeHour / lambdaHour, 3) },
        scaling: 'reads scale with 1/interval: 50 ms doubles them, 1 s cuts them to 60 reads/min (and cancel latency rises by about the interval)',
      },
      trials: { lambdaZeroGrace: lambda, batchZeroGrace: batch, lambdaStubbornGrace1s: stubborn },
    };
    const rows: SummaryRow[] = [
      { benchmark: '4 cancel', metric: '(a) Lambda electron stopped, zero grace, p50/p95 ms', value: `${fmt(a.p50, 0)} / ${fmt(a.p95, 0)}`, baseline: `API round trip ${fmt(base.p50, 0)} / ${fmt(base.p95, 0)}`, ratio: `×${fmt(a.p50 / base.p50, 1)}`, goal: 'p95 ≤ 150', met: a.p95 <= 150 ? 'yes' : 'NO' },
      { benchmark: '4 cancel', metric: '(c) targets terminal in DynamoDB (Lambda), p50/p95 ms', value: `${fmt(c.p50, 0)} / ${fmt(c.p95, 0)}`, baseline: `API round trip ${fmt(base.p50, 0)} / ${fmt(base.p95, 0)}`, ratio: `×${fmt(c.p50 / base.p50, 1)}`, goal: 'p95 ≤ 150', met: c.p95 <= 150 ? 'yes' : 'NO' },
      { benchmark: '4 cancel', metric: '(b) Batch process gone, zero grace, p50/p95 ms', value: `${fmt(b.p50, 0)} / ${fmt(b.p95, 0)}`, baseline: `API round trip ${fmt(base.p50, 0)} / ${fmt(base.p95, 0)}`, ratio: `×${fmt(b.p50 / base.p50, 1)}`, goal: '-', met: '-' },
      { benchmark: '4 cancel', metric: '(c) targets terminal in DynamoDB (Batch), p50/p95 ms', value: `${fmt(cb.p50, 0)} / ${fmt(cb.p95, 0)}`, baseline: '-', ratio: '-', goal: '-', met: '-' },
      { benchmark: '4 cancel', metric: '(a) stubborn electron stopped, 1 s grace, p50/p95 ms', value: `${fmt(sa.p50, 0)} / ${fmt(sa.p95, 0)}`, baseline: '-', ratio: '-', goal: 'p95 ≤ 1,250', met: sa.p95 <= 1250 ? 'yes' : 'NO' },
      { benchmark: '4 cancel', metric: `watchdog cost (${watchdogMs} ms): reads/min, USD per running node-hour`, value: `${readsPerMin} (+${renewalsPerMin} writes), $${fmt(perNodeHour, 4)}`, baseline: `Lambda 1 GB ARM $${fmt(lambdaHour, 3)}/h`, ratio: `${fmt((perNodeHour / lambdaHour) * 100, 1)}%`, goal: '-', met: '-' },
    ];
    return { name: 'cancel-latency', result, rows };
  } finally {
    await bc.close();
  }
}
