/**
 * Benchmark (issue 13): cancel at scale, and randomized cancel races under injected faults.
 *
 * Scale: for 1,000 / 5,000 / 20,000 nodes (argument-shaped, so no deploy per size; see
 * bench/fixtures/cancel-scale.ts), a whole-dispatch cancel while a Lambda electron and a Batch
 * job process run and every other node waits. Measured from the `cancel()` call:
 *  - accept: the endpoint's answer (200 with the report, or 202 with the request id);
 *  - report: the request's final report (polling `GET …/cancels/{requestId}`);
 *  - all terminal: every node terminal in DynamoDB;
 *  - stopped: the Lambda electron's heartbeat stopped and the Batch process gone.
 * Checked: the report accounts for every node once, `cancelled` holds only CANCELLED nodes,
 * and no node behind the running one ran.
 * Baselines, in the same run: a signed no-op round trip to the same API (`GET /dispatches/{id}`),
 * and the write floor: as many conditional UpdateItems as nodes, 32 at a time, on a scratch
 * partition of the same table (what marking every node costs at the least).
 *
 * Races: `--races N` small dispatches (bench/fixtures/cancel-scale.ts `raceShape`) cancelled
 * after a random delay (whole, a random subset, or 2–3 concurrent requests) under injected
 * faults: 5 % of DynamoDB calls throttled, 1 % answered 500, 1 % of S3 calls answered 503, and
 * about one crashed Lambda invocation (step or cancel handler, at once or mid-run) per four
 * races; the sweeper runs every 10 s, as it would on AWS. Counted: stuck (not terminal within
 * grace + 60 s), nodes in two lists of one report or in two requests' `cancelled`, descendants
 * started after their cancel, overcounted reports (a `cancelled` entry whose node did not end
 * CANCELLED), non-terminal nodes, and orphans: a Batch job process (node 6) still alive, or its
 * job short of SUCCEEDED/FAILED, after the dispatch ended.
 *
 * Subtree (`--sizes s10000`): a single-task cancel of node 0, whose subtree is 10,000 nodes; the
 * Batch job (node 1) is outside it and must keep running, then a whole cancel cleans up.
 *
 * Run: `node --import tsx bench/cancel-scale.ts [--sizes 1000,5000,20000,s10000] [--races 100] [--profile]`.
 * Writes bench/results/cancel-scale.json; records the load average before and after.
 */
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { BatchGetItemCommand, QueryCommand, UpdateItemCommand, type AttributeValue, type BatchGetItemCommandOutput } from '@aws-sdk/client-dynamodb';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { FaultKind } from '../localstack/core/faults.ts';
import type { CancelReport } from '../sdk/runtime/cancel.ts';
import type { CancelAccepted } from '../sdk/client/index.ts';
import { cancelScale, raceShape } from './fixtures/cancel-scale.ts';
import { startAllThreadsProfile } from './cpu-profile.ts';
import { analyseProfiles, costTable, profilesIn } from './profile-analyse.ts';
import { RESULTS_DIR, describe, fmt, loadAverage, machine, progress, round, startBenchCloud, writeResult, type BenchCloud, type BenchOutcome, type SummaryRow } from './lib.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/cancel-scale.ts', import.meta.url));
const LAYERS = 5;
const PROFILES_DIR = `${RESULTS_DIR}profiles/`;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** True when a process with this id exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
}

function lastBeat(file: string): number {
  if (!existsSync(file)) return 0;
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  return Number(lines[lines.length - 1] ?? 0);
}

async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs: number, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

async function roundTrips(bc: BenchCloud, dispatchId: string, n: number): Promise<number[]> {
  const { apiUrl } = await bc.client.outputs();
  const url = new URL(`dispatches/${encodeURIComponent(dispatchId)}`, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  const signer = new SignatureV4({ service: 'execute-api', region: bc.cloud.region, credentials: bc.cloud.credentials, sha256: Sha256 });
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const signed = await signer.sign({ method: 'GET', protocol: url.protocol, hostname: url.hostname, ...(url.port ? { port: Number(url.port) } : {}), path: url.pathname, query: {}, headers: { host: url.host } });
    const response = await fetch(url, { method: 'GET', headers: signed.headers as Record<string, string> });
    await response.text();
    times.push(performance.now() - t0);
  }
  return times;
}

/** N conditional UpdateItems, 32 at a time, on a scratch partition: the floor under marking N nodes. */
/** Those of `ids` whose node is not terminal yet (BatchGetItem, status only). */
async function notTerminal(bc: BenchCloud, dispatchId: string, ids: readonly number[]): Promise<number[]> {
  const { tableName } = await bc.client.outputs();
  const open: number[] = [];
  for (let i = 0; i < ids.length; i += 100) {
    let keys: Record<string, AttributeValue>[] | undefined = ids.slice(i, i + 100).map((n) => ({ pk: { S: `D#${dispatchId}` }, sk: { S: `N#${String(n).padStart(6, '0')}` } }));
    while (keys && keys.length > 0) {
      const out: BatchGetItemCommandOutput = await bc.cloud.clients.dynamodb.send(
        new BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys, ProjectionExpression: 'sk, #s', ExpressionAttributeNames: { '#s': 'status' }, ConsistentRead: true } } }),
      );
      for (const item of out.Responses?.[tableName] ?? []) if (!TERMINAL.has(item['status']?.S ?? '')) open.push(Number(item['sk']!.S!.slice(2)));
      keys = out.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  return open;
}

/** How many nodes of a dispatch have recorded an `await` token (their await state waits). */
async function awaitTokens(bc: BenchCloud, dispatchId: string): Promise<number> {
  const { tableName } = await bc.client.outputs();
  let count = 0;
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await bc.cloud.clients.dynamodb.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :n)',
        FilterExpression: 'attribute_exists(awaitToken)',
        ExpressionAttributeValues: { ':pk': { S: `D#${dispatchId}` }, ':n': { S: 'N#' } },
        Select: 'COUNT',
        ExclusiveStartKey: start,
      }),
    );
    count += out.Count ?? 0;
    start = out.LastEvaluatedKey;
  } while (start);
  return count;
}

async function writeFloor(bc: BenchCloud, n: number): Promise<number> {
  const { tableName } = await bc.client.outputs();
  const pk = `D#bench-floor-${n}-${Date.now()}`;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let i = next++; i < n; i = next++) {
        await bc.cloud.clients.dynamodb.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { pk: { S: pk }, sk: { S: `N#${String(i).padStart(6, '0')}` } },
            UpdateExpression: 'SET #s = :c',
            ConditionExpression: 'attribute_not_exists(#s) OR #s = :n',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':c': { S: 'CANCELLED' }, ':n': { S: 'NEW_OBJECT' } },
          }),
        );
      }
    }),
  );
  return performance.now() - t0;
}

interface ScaleRow {
  readonly mode: string;
  /** How long the dispatch took to settle (every await state waiting) before the cancel. */
  readonly settledMs: number;
  readonly nodes: number;
  readonly targets: number;
  readonly nodeOutsideKeptRunning?: boolean;
  readonly dispatchMs: number;
  readonly answer: 200 | 202;
  readonly acceptMs: number;
  readonly reportMs: number;
  readonly allTerminalMs: number;
  /** Targets by how they ended (`cancelledBy`, else status): count, median and last end, ms after the cancel call. */
  readonly endedBy?: Record<string, { count: number; p50Ms: number; lastMs: number }>;
  /** Await states waiting (tokens recorded) when the cancel was sent. */
  readonly awaitStatesWaiting?: number;
  /** Calls served by the cloud from the cancel call until every target was terminal, by `service:operation`. */
  readonly callsUntilTerminal?: Record<string, number>;
  readonly lambdaStoppedMs: number;
  readonly batchProcessGoneMs: number;
  readonly progressUpdates: number;
  readonly report: { readonly cancelled: number; readonly alreadyTerminal: number; readonly merged: number; readonly accountedOnce: boolean; readonly reportBytes: number };
  readonly nodesRan: number;
  readonly writeFloorMs: number;
  readonly load: { readonly before: number[]; readonly after: number[] };
}

async function scaleOnce(bc: BenchCloud, nodes: number, subtree: boolean, profile = false): Promise<ScaleRow> {
  const before = loadAverage();
  // A subtree cancel names node 0, whose subtree is itself and every layer: `nodes` targets.
  const width = Math.ceil((nodes - (subtree ? 1 : 2)) / LAYERS);
  const dir = mkdtempSync(join(tmpdir(), 'valence-cancel-scale-'));
  try {
    progress(`cancel-scale: dispatching ${2 + LAYERS * width} nodes`);
    const d0 = performance.now();
    const id = await bc.client.dispatch(cancelScale)(dir, LAYERS, width);
    const dispatchMs = performance.now() - d0;
    await waitUntil('the Lambda electron to beat and the Batch job to start', () => lastBeat(join(dir, 'root.beat')) > 0 && existsSync(join(dir, 'job.pid')), 600_000, 100);
    const pid = Number(readFileSync(join(dir, 'job.pid'), 'utf8'));
    // Settled: a split lattice's partitions keep invoking await states for a while after its
    // first electron starts. A cancel of a long-running dispatch meets them settled: each
    // partition's inline Map holds 40 iterations at once (as on AWS), all waiting on node 0. So
    // the bench waits until the number of recorded await tokens (read from the table; Step
    // Functions invokes in-process, so the Lambda request count says nothing) stayed the same
    // for 3 s, at most 120 s.
    const s0 = performance.now();
    let recorded = -1;
    let quietSince = performance.now();
    while (performance.now() - s0 < 120_000) {
      const now = await awaitTokens(bc, id.id);
      if (now !== recorded) {
        recorded = now;
        quietSince = performance.now();
      } else if (performance.now() - quietSince >= 3_000) break;
      await sleep(500);
    }
    const settledMs = performance.now() - s0;
    progress(`cancel-scale: ${nodes}: running (dispatched in ${fmt(dispatchMs / 1000, 1)} s), ${recorded} await states waiting; cancelling`);
    const calls0 = bc.cloud.requestCounters.snapshot();
    // `--profile`: every thread's CPU profile from the cancel call until every target is terminal.
    const profiler = profile ? await startAllThreadsProfile() : undefined;
    const t0 = performance.now();
    const wall0 = Date.now();
    // Watched from the cancel call on, beside the report's polling: a stop is timed when it
    // happens, not after the report (which came first by construction before).
    let lambdaStoppedMs = NaN;
    let batchProcessGoneMs = NaN;
    const stops = waitUntil(
      'the electron and the process to stop',
      () => {
        const now = performance.now();
        if (Number.isNaN(lambdaStoppedMs) && Date.now() - lastBeat(join(dir, 'root.beat')) > 200) lambdaStoppedMs = now - t0 - 200;
        if (Number.isNaN(batchProcessGoneMs) && !alive(pid)) batchProcessGoneMs = now - t0;
        // The Batch job (node 1) is outside a subtree cancel: it must keep running.
        return !Number.isNaN(lambdaStoppedMs) && (subtree || !Number.isNaN(batchProcessGoneMs));
      },
      300_000,
    );
    // Every target terminal, watched from the cancel call on (once a second: reading 20,000
    // nodes is itself work on the cloud), not after the report, which comes later by design.
    const isTarget = (nodeId: number | string): boolean => !subtree || Number(nodeId) !== 1;
    let allTerminalMs = NaN;
    // Only the targets not yet seen terminal are read again (a terminal node never changes), so
    // the watching costs the cloud less as the cancel goes on. Reading all 10,000 nodes once a
    // second loaded the cloud it measured: with that observer the 10,001-node subtree took
    // 54–69 s to all terminal, with this one 26–28 s (same code otherwise).
    let open = [...Array.from({ length: 2 + LAYERS * width }, (_, i) => i)].filter(isTarget);
    const terminal = waitUntil(
      'every target terminal',
      async () => {
        open = await notTerminal(bc, id.id, open);
        if (open.length > 0) return undefined;
        allTerminalMs = performance.now() - t0;
        return bc.client.getResult(id);
      },
      300_000,
      1_000,
    );
    // Awaited below; a failure before then must not be an unhandled rejection.
    terminal.catch(() => undefined);
    const answer: CancelReport | CancelAccepted = await bc.client.cancel(id, subtree ? { wait: false, taskIds: [0] } : { wait: false });
    const acceptMs = performance.now() - t0;
    const accepted = 'accepted' in answer;
    let progressUpdates = 0;
    let report: CancelReport;
    let reportMs = acceptMs;
    if (accepted) {
      for (;;) {
        const p = await bc.client.getCancelReport(id, answer.requestId);
        progressUpdates++;
        if (p.state === 'DONE' && p.report) {
          report = p.report;
          break;
        }
        if (performance.now() - t0 > 300_000) throw new Error(`the report of ${answer.requestId} was not final after 300 s`);
        await sleep(100);
      }
      reportMs = performance.now() - t0;
    } else {
      report = answer;
    }
    await stops;
    const result = await terminal;
    // Calls the cloud served from the cancel call until every target was terminal (the bench's own watching included).
    const calls1 = bc.cloud.requestCounters.snapshot();
    const callsUntilTerminal: Record<string, number> = {};
    for (const [service, ops] of Object.entries(calls1)) {
      for (const [op, n] of Object.entries(ops)) {
        const d = n - (calls0[service]?.[op] ?? 0);
        if (d > 0) callsUntilTerminal[`${service}:${op}`] = d;
      }
    }
    if (profiler) {
      const label = `cancel-${subtree ? 's' : ''}${nodes}`;
      await profiler.stop(PROFILES_DIR, label);
      const analysis = analyseProfiles(profilesIn(PROFILES_DIR, label), { top: 25 });
      process.stderr.write(`${costTable(`${label}: CPU by category`, analysis.byCategory)}\n${costTable(`${label}: CPU by function`, analysis.byFunction)}\n`);
      for (const role of analysis.byThreadRole) process.stderr.write(`${costTable(`${label}: ${role.name} (${role.threads} threads)`, role.categories)}\n`);
    }
    let jobKeptRunning: boolean | undefined;
    if (subtree) {
      // Outside the request, so still running; then the whole dispatch is cancelled to clean up (not timed).
      jobKeptRunning = alive(pid) && result.nodes.find((n) => Number(n.id) === 1)?.status === 'RUNNING';
      await bc.client.cancel(id);
      await waitUntil('the Batch process to be gone after the clean-up cancel', () => !alive(pid), 60_000);
    }
    const byId = new Map(result.nodes.map((n) => [n.id, n]));
    const listed = [...report.cancelled.map((c) => c.id), ...report.alreadyTerminal.map((c) => c.id), ...(report.merged ?? []).map((c) => c.id)];
    const targets = result.nodes.filter((n) => isTarget(n.id)).length;
    const accountedOnce = new Set(listed).size === listed.length && listed.length === targets && report.cancelled.every((c) => byId.get(Number(c.id))?.status === 'CANCELLED');
    const nodesRan = existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n').length : 0;
    const writeFloorMs = await writeFloor(bc, result.nodes.length);
    // Who ended the targets, and when (ms after the cancel call): the bulk marks (not-started),
    // the walk below a stopped node (upstream-cancelled), or a real stop.
    const endedBy: Record<string, { count: number; p50Ms: number; lastMs: number }> = {};
    const times = new Map<string, number[]>();
    for (const n of result.nodes) {
      if (!isTarget(n.id) || !n.endedAt) continue;
      const by = n.cancelledBy ?? n.status;
      times.set(by, [...(times.get(by) ?? []), Date.parse(n.endedAt) - wall0]);
    }
    for (const [by, list] of times) {
      list.sort((a, b) => a - b);
      endedBy[by] = { count: list.length, p50Ms: list[Math.floor(list.length / 2)]!, lastMs: list[list.length - 1]! };
    }
    const row: ScaleRow = {
      mode: subtree ? 'subtree (taskIds [0])' : 'whole dispatch',
      settledMs: round(settledMs, 0),
      nodes: result.nodes.length,
      targets,
      ...(jobKeptRunning !== undefined ? { nodeOutsideKeptRunning: jobKeptRunning } : {}),
      dispatchMs: round(dispatchMs, 0),
      answer: accepted ? 202 : 200,
      acceptMs: round(acceptMs, 0),
      reportMs: round(reportMs, 0),
      allTerminalMs: round(allTerminalMs, 0),
      lambdaStoppedMs: round(lambdaStoppedMs, 0),
      batchProcessGoneMs: subtree ? NaN : round(batchProcessGoneMs, 0),
      progressUpdates,
      endedBy,
      awaitStatesWaiting: recorded,
      callsUntilTerminal,
      report: { cancelled: report.cancelled.length, alreadyTerminal: report.alreadyTerminal.length, merged: (report.merged ?? []).length, accountedOnce, reportBytes: Buffer.byteLength(JSON.stringify(report)) },
      nodesRan,
      writeFloorMs: round(writeFloorMs, 0),
      load: { before, after: loadAverage() },
    };
    progress(`cancel-scale: ${row.mode} ${targets} targets of ${row.nodes}: accepted ${row.answer} in ${row.acceptMs} ms, report ${row.reportMs} ms, all terminal ${row.allTerminalMs} ms (floor ${row.writeFloorMs} ms)`);
    return row;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RaceTally {
  races: number;
  stuck: number;
  inTwoLists: number;
  cancelledByTwoRequests: number;
  startedAfterCancel: number;
  overcounted: number;
  orphanedProcesses: number;
  orphanedJobs: number;
  nonTerminalNodes: number;
  errors: string[];
  kinds: Record<string, number>;
  answers: Record<string, number>;
}

/** A small seeded generator, so a run's races can be replayed. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function race(bc: BenchCloud, rnd: () => number, tally: RaceTally): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'valence-cancel-race-'));
  try {
    const a = 50 + Math.floor(rnd() * 550);
    const b = 50 + Math.floor(rnd() * 550);
    const id = await bc.client.dispatch(raceShape)(dir, a, b);
    await sleep(Math.floor(rnd() * 900));
    const kind = rnd() < 0.34 ? 'whole' : rnd() < 0.5 ? 'subset' : 'concurrent';
    tally.kinds[kind] = (tally.kinds[kind] ?? 0) + 1;
    const subset = (): number[] => [0, 1, 2, 3, 4, 5, 6].filter(() => rnd() < 0.4).concat([Math.floor(rnd() * 7)]);
    const requests: { readonly taskIds?: number[] }[] =
      kind === 'whole' ? [{}] : kind === 'subset' ? [{ taskIds: [...new Set(subset())] }] : Array.from({ length: 2 + Math.floor(rnd() * 2) }, () => (rnd() < 0.5 ? {} : { taskIds: [...new Set(subset())] }));
    const cancelAt = new Date().toISOString();
    // A refused request (a crashed cancel invocation is a 502; a cold one past 29 s a 504) is
    // counted, and the race is still checked: the dispatch must end and leave nothing running.
    const answers = await Promise.all(
      requests.map((r) =>
        bc.client.cancel(id, { ...r, timeoutMs: 90_000 }).catch((error: unknown) => {
          tally.errors.push(`${(error as Error).name}: ${(error as Error).message}`.slice(0, 300));
          return undefined;
        }),
      ),
    );
    const reports = answers.filter((r): r is CancelReport => r !== undefined);
    tally.answers['report'] = (tally.answers['report'] ?? 0) + reports.length;
    tally.answers['refused'] = (tally.answers['refused'] ?? 0) + answers.length - reports.length;
    let result;
    try {
      result = await bc.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    } catch {
      tally.stuck++;
      result = await bc.client.getResult(id);
    }
    tally.nonTerminalNodes += result.nodes.filter((n) => !TERMINAL.has(n.status)).length;
    const byId = new Map(result.nodes.map((n) => [n.id, n]));
    const cancelledBy = new Map<number | string, number>();
    for (const report of reports) {
      const lists = [report.cancelled.map((c) => c.id), report.alreadyTerminal.map((c) => c.id), (report.merged ?? []).map((c) => c.id)].flat();
      tally.inTwoLists += lists.length - new Set(lists).size;
      for (const c of report.cancelled) {
        cancelledBy.set(c.id, (cancelledBy.get(c.id) ?? 0) + 1);
        const node = byId.get(Number(c.id));
        if (node?.status !== 'CANCELLED') tally.overcounted++;
        // A target cancelled before it started must never have started.
        if (c.previousStatus === 'NEW_OBJECT' && node?.startedAt && node.startedAt >= cancelAt) tally.startedAfterCancel++;
      }
    }
    tally.cancelledByTwoRequests += [...cancelledBy.values()].filter((n) => n > 1).length;
    // Nothing outlives the dispatch: the Batch job's process is gone and its job ended.
    const pidFile = join(dir, 'n6.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const gone = Date.now() + 10_000;
      while (alive(pid) && Date.now() < gone) await sleep(100);
      if (alive(pid)) tally.orphanedProcesses++;
    }
    const handle = byId.get(6)?.jobHandle;
    if (handle) {
      const status = (await bc.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [handle.slice(handle.lastIndexOf('/') + 1)] }))).jobs?.[0]?.status;
      if (status !== 'SUCCEEDED' && status !== 'FAILED') tally.orphanedJobs++;
    }
  } catch (error) {
    tally.errors.push(`${(error as Error).name}: ${(error as Error).message}`.slice(0, 300));
  } finally {
    tally.races++;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function races(bc: BenchCloud, n: number, seed: number): Promise<RaceTally & { readonly faults: string; readonly wallMs: number; readonly seed: number; readonly load: { before: number[]; after: number[] } }> {
  const before = loadAverage();
  const tally: RaceTally = { races: 0, stuck: 0, inTwoLists: 0, cancelledByTwoRequests: 0, startedAfterCancel: 0, overcounted: 0, orphanedProcesses: 0, orphanedJobs: 0, nonTerminalNodes: 0, errors: [], kinds: {}, answers: {} };
  const rnd = seeded(seed);
  bc.cloud.faults.add({ service: 'dynamodb', errorRate: 0.05, error: FaultKind.Throttling });
  bc.cloud.faults.add({ service: 'dynamodb', errorRate: 0.01, error: FaultKind.ServerError });
  bc.cloud.faults.add({ service: 's3', errorRate: 0.01, error: FaultKind.Unavailable });
  const t0 = performance.now();
  try {
    // Four at a time: races overlap as concurrent users' would.
    for (let i = 0; i < n; i += 4) {
      // About one crashed invocation per four races: a step or cancel handler, at once or mid-run.
      bc.cloud.faults.crashNthInvocation(1 + Math.floor(rnd() * 30), rnd() < 0.7 ? 'valence-step' : 'valence-cancel', rnd() < 0.5 ? 0 : Math.floor(rnd() * 500));
      await Promise.all(Array.from({ length: Math.min(4, n - i) }, () => race(bc, rnd, tally)));
      progress(`cancel-scale: races ${tally.races}/${n}: stuck ${tally.stuck}, overcounted ${tally.overcounted}, two lists ${tally.inTwoLists}, orphans ${tally.orphanedProcesses + tally.orphanedJobs}, errors ${tally.errors.length}`);
    }
  } finally {
    bc.cloud.faults.clear();
  }
  return {
    ...tally,
    faults: '5 % of DynamoDB calls throttled (ThrottlingException), 1 % answered 500, 1 % of S3 calls answered 503, one crashed step or cancel invocation per four races',
    wallMs: round(performance.now() - t0, 0), seed, load: { before, after: loadAverage() } };
}

/** Runs the benchmark. */
export async function runCancelScale(options: {
  readonly sizes: readonly (number | string)[];
  readonly races: number;
  readonly seed: number;
  readonly keep?: Record<string, unknown>;
  /** Profile every thread during each size's cancel (bench/cpu-profile.ts) and print where the CPU went. */
  readonly profile?: boolean;
}): Promise<Record<string, unknown>> {
  // The sweeper runs as it does on AWS (every minute there; every 10 s here, to keep the run short): faults leave work only it finishes.
  const bc = await startBenchCloud({ workflows: FIXTURE, environment: { VALENCE_LOCAL_STEP_CONCURRENCY: '8' }, ...(options.races > 0 ? { sweeper: { intervalMs: 10_000 } } : {}) });
  // The warm-up's and the probe's electrons write into directories of their own, removed at the end.
  const scratch = [mkdtempSync(join(tmpdir(), 'valence-warm-')), mkdtempSync(join(tmpdir(), 'valence-probe-'))] as const;
  try {
    const rows: ScaleRow[] = [];
    let baselineMs: number[] = [];
    // Warm the step and cancel handlers, so the first size does not pay their cold starts.
    const warm = (await bc.client.dispatch(raceShape)(scratch[0], 10, 10)).id;
    await bc.client.getResult(warm, { wait: true, timeoutMs: 120_000 });
    await roundTrips(bc, warm, 3);
    await bc.client.cancel(warm);
    for (const size of options.sizes) {
      // `s10000`: a single-task cancel whose subtree has 10,000 nodes; a number: a whole-dispatch cancel.
      const subtree = typeof size === 'string' && size.startsWith('s');
      const row = await scaleOnce(bc, Number(subtree ? String(size).slice(1) : size), subtree, options.profile);
      rows.push(row);
      // Written as it goes: a run cut short keeps the sizes it finished.
      writeResult('cancel-scale', { benchmark: 'cancel-scale (issue 13)', partial: true, machine: machine(), scale: rows, ...options.keep });
    }
    const probe = (await bc.client.dispatch(raceShape)(scratch[1], 10, 10)).id;
    await bc.client.getResult(probe, { wait: true, timeoutMs: 60_000 });
    baselineMs = await roundTrips(bc, probe, 20);
    const raceResult = options.races > 0 ? await races(bc, options.races, options.seed) : undefined;
    const base = describe(baselineMs);
    return {
      benchmark: 'cancel-scale (issue 13)',
      machine: machine(),
      goals: { acceptMs: 1_000, allTerminalAndStoppedMs: 30_000 },
      scale: rows.map((r) => ({
        ...r,
        acceptVsRoundTrip: round(r.acceptMs / base.p50, 1),
        allTerminalVsWriteFloor: round(r.allTerminalMs / Math.max(1, r.writeFloorMs), 2),
        meets: { acceptUnder1s: r.acceptMs <= 1_000, allStoppedUnder30s: Math.max(r.allTerminalMs, r.lambdaStoppedMs, Number.isNaN(r.batchProcessGoneMs) ? 0 : r.batchProcessGoneMs) <= 30_000 },
      })),
      baseline: { description: 'signed GET /dispatches/{id} round trip to the same API, and the write floor (see each row)', roundTripMs: base },
      ...(raceResult ? { races: raceResult } : {}),
    };
  } finally {
    await bc.close();
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What an earlier result file holds that a new run keeps: its rows (each with its date and
 * load) under `earlier`, so a partial run loses nothing, and its races when this run has none.
 */
function keptFromEarlier(): Record<string, unknown> {
  let earlier: unknown[] = [];
  let races: unknown;
  try {
    const previous = JSON.parse(readFileSync(new URL('./results/cancel-scale.json', import.meta.url), 'utf8')) as { scale?: unknown[]; earlier?: unknown[]; date?: string; races?: unknown };
    earlier = [...(previous.earlier ?? []), ...(previous.scale ?? []).map((r) => ({ ...(r as object), runDate: (r as { runDate?: string }).runDate ?? previous.date ?? 'an earlier run' }))];
    races = previous.races;
  } catch {
    // No earlier result.
  }
  return { earlier, ...(races ? { races } : {}) };
}

/**
 * `npm run bench`'s part (`--only cancel-scale`): whole-dispatch cancels of 1,000, 5,000 and
 * 20,000 nodes and the 10,000-node subtree cancel, against issue 13's goals (accepted in ≤ 1 s;
 * every target terminal and the running work stopped in ≤ 30 s). The races run only from the
 * command line (`--races 100`).
 */
export async function runCancelScaleBench(): Promise<BenchOutcome> {
  const keep = keptFromEarlier();
  const result: Record<string, unknown> = { ...keep, ...(await runCancelScale({ sizes: [1000, 5000, 20000, 's10000'], races: 0, seed: 13, keep })), date: new Date().toISOString() };
  const rows: SummaryRow[] = (result['scale'] as (ScaleRow & { meets: { acceptUnder1s: boolean; allStoppedUnder30s: boolean } })[]).map((r) => {
    const stopped = Math.max(r.lambdaStoppedMs, Number.isNaN(r.batchProcessGoneMs) ? 0 : r.batchProcessGoneMs);
    return {
      benchmark: '4 cancel at scale',
      metric: `${r.mode === 'whole dispatch' ? `whole dispatch, ${r.nodes} nodes` : `subtree of ${r.targets} nodes (of ${r.nodes})`}: accept / all terminal / work stopped ms`,
      value: `${fmt(r.acceptMs, 0)} / ${fmt(r.allTerminalMs, 0)} / ${fmt(stopped, 0)}`,
      baseline: `write floor ${fmt(r.writeFloorMs, 0)} ms`,
      ratio: `×${fmt(r.allTerminalMs / Math.max(1, r.writeFloorMs), 2)}`,
      goal: 'accept ≤ 1,000; terminal and stopped ≤ 30,000',
      met: r.meets.acceptUnder1s && r.meets.allStoppedUnder30s ? 'yes' : 'NO',
    };
  });
  return { name: 'cancel-scale', result, rows };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '1000,5000,20000,s10000' }, races: { type: 'string', default: '0' }, seed: { type: 'string', default: '13' }, profile: { type: 'boolean', default: false } } });
  const sizes = values.sizes.split(',').filter(Boolean).map((v) => (v.startsWith('s') ? v : Number(v)));
  const keep = keptFromEarlier();
  const result = { ...keep, ...(await runCancelScale({ sizes, races: Number(values.races), seed: Number(values.seed), keep, profile: values.profile })), date: new Date().toISOString() };
  const path = writeResult('cancel-scale', result);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  progress(`cancel-scale: wrote ${path}`);
}
