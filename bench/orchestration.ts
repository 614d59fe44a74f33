/**
 * Benchmarks 1–3 on one local cloud: orchestration overhead of no-op graphs (chain, fan-out /
 * fan-in, random DAGs) against plain in-process async calls and against the compiled
 * definitions on the bare interpreter; schedule exactness of sleeping random DAGs against
 * their critical path and a level-by-level schedule; AWS calls and dollars per no-op node.
 */
import { diffCounters, type CounterSnapshot } from '../localstack/index.ts';
import { compileLattice } from '../sdk/compiler/index.ts';
import { defaultLatticeRegistry, type Lattice } from '../sdk/model/index.ts';
import { criticalPathMs, levelScheduleMs, maxWidth, randomDag, DAG_NODES, NOOP_DAG_SEEDS, SLEEP_DAG_SEEDS, SLEEP_RANGE, type BenchDag } from './dag.ts';
import { CHAIN_LENGTH, FAN_WIDTH } from './fixtures/workflows.ts';
import { runOnInterpreter } from './interpreter.ts';

/** The step handler's concurrency on the bench cloud: reserved when the variable is set, else unreserved (the account's 1,000, grown a few sandboxes at a time). */
const STEP_CONCURRENCY: number | 'unreserved (1,000)' = process.env.VALENCE_LOCAL_STEP_CONCURRENCY ? Number(process.env.VALENCE_LOCAL_STEP_CONCURRENCY) : 'unreserved (1,000)';
import { ISSUE18, ISSUE18_GOALS, PRICES, STEP_HANDLER, describe, fmt, progress, round, startBenchCloud, type BenchCloud, type BenchOutcome, type SummaryRow } from './lib.ts';

/** How many of the 50 seeded DAGs each part runs (scaled down to fit the time budget). */
export const SCALE = { noopDags: 5, sleepDags: 5, inProcessRepeats: 20, interpreterRepeats: 3 } as const;

const STEP_ARN = 'arn:aws:lambda:us-east-1:000000000000:function:valence-step';
/** Assumed billed duration of one no-op step-handler invocation on AWS (not measurable here). */
const ASSUMED_INVOCATION_MS = 100;

/** One run of a lattice on the local cloud, with its counters and per-node start delays. */
export interface LocalRun {
  readonly dispatchId: string;
  readonly status: string;
  /** dispatch() call: graph, args and node items written, execution started. */
  readonly dispatchMs: number;
  /** From the dispatch() call until the execution ended. */
  readonly totalMs: number;
  /** First node start to last node end (node items' startedAt / endedAt). */
  readonly nodeSpanMs: number;
  readonly stateTransitions: number;
  readonly historyEvents: number;
  readonly dispatchCalls: CounterSnapshot;
  readonly executionCalls: CounterSnapshot;
  /** Per node: its start minus its last parent's end (ms); roots: minus the first node's start. */
  readonly startDelaysMs: number[];
  /** The same for nodes with parents only: issue 18's "start delay after the last parent ends". */
  readonly afterParentDelaysMs: number[];
}

function get(s: CounterSnapshot, service: string, ops: readonly string[]): number {
  return ops.reduce((sum, op) => sum + (s[service]?.[op] ?? 0), 0);
}
const DDB_WRITES = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem'] as const;
const DDB_READS = ['GetItem', 'BatchGetItem', 'Query', 'Scan'] as const;
const S3_PUTS = ['PutObject', 'CopyObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'ListObjectsV2', 'ListObjects'] as const;
const S3_GETS = ['GetObject', 'HeadObject'] as const;

function merge(a: CounterSnapshot, b: CounterSnapshot): CounterSnapshot {
  const out: CounterSnapshot = structuredClone(a);
  for (const [service, ops] of Object.entries(b)) for (const [op, n] of Object.entries(ops)) (out[service] ??= {})[op] = (out[service]?.[op] ?? 0) + n;
  return out;
}

/** Dispatches `lattice` on the bench cloud, waits for its execution, and measures it against `dag`. */
export async function runLocal(bc: BenchCloud, lattice: Lattice, dag: BenchDag): Promise<LocalRun> {
  const before = bc.cloud.counters();
  const p0 = performance.now();
  const dispatchId = (await bc.client.dispatch(lattice as Lattice<[], unknown>)()).id;
  const dispatchMs = performance.now() - p0;
  const afterDispatch = bc.cloud.counters();
  const stats = await bc.cloud.services.stepfunctions.waitForExecution(bc.executionArn(lattice.name, dispatchId));
  const totalMs = performance.now() - p0;
  const afterRun = bc.cloud.counters();
  const result = await bc.client.getResult(dispatchId);
  const start = new Map<number, number>();
  const end = new Map<number, number>();
  for (const n of result.nodes) {
    if (n.startedAt) start.set(Number(n.id), Date.parse(n.startedAt));
    if (n.endedAt) end.set(Number(n.id), Date.parse(n.endedAt));
  }
  const first = Math.min(...start.values());
  const startDelaysMs = dag.parents.map((ps, i) => (start.get(i) ?? Number.NaN) - (ps.length ? Math.max(...ps.map((p) => end.get(p) ?? Number.NaN)) : first));
  return {
    dispatchId,
    status: result.status,
    dispatchMs,
    totalMs,
    nodeSpanMs: Math.max(...end.values()) - first,
    stateTransitions: stats?.stateTransitions ?? Number.NaN,
    historyEvents: stats?.historyEvents ?? Number.NaN,
    dispatchCalls: diffCounters(before, afterDispatch),
    executionCalls: diffCounters(afterDispatch, afterRun),
    startDelaysMs,
    afterParentDelaysMs: startDelaysMs.filter((_, i) => (dag.parents[i]?.length ?? 0) > 0),
  };
}

/** The same graph as plain async calls: each node awaits its parents, then does nothing. */
async function runInProcess(dag: BenchDag, work: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const outputs: Promise<unknown>[] = [];
  for (let i = 0; i < dag.parents.length; i++) outputs.push(Promise.all((dag.parents[i] ?? []).map((p) => outputs[p] ?? Promise.resolve())).then(() => work(i)));
  await Promise.all(outputs);
  return performance.now() - t0;
}

const median = (xs: number[]): number => describe(xs).p50;

async function baselines(lattice: Lattice, dag: BenchDag): Promise<{ inProcessMs: number; interpreterMs: number; awaitStates: number }> {
  const inProcess: number[] = [];
  for (let r = 0; r < SCALE.inProcessRepeats; r++) inProcess.push(await runInProcess(dag, () => Promise.resolve(0)));
  const { definition } = compileLattice(lattice, { stepHandlerArn: STEP_ARN });
  const interp: number[] = [];
  let awaitStates = 0;
  for (let r = 0; r < SCALE.interpreterRepeats; r++) {
    const run = await runOnInterpreter(definition, dag.parents);
    if (run.runs !== dag.parents.length) throw new Error(`interpreter ran ${run.runs} of ${dag.parents.length} nodes of ${lattice.name}`);
    awaitStates = run.awaits;
    interp.push(run.ms);
  }
  return { inProcessMs: median(inProcess), interpreterMs: median(interp), awaitStates };
}

/** The chain and fan-out graphs as DAGs, for baselines. */
export const chainDag: BenchDag = { parents: Array.from({ length: CHAIN_LENGTH }, (_, i) => (i === 0 ? [] : [i - 1])), durationsMs: Array(CHAIN_LENGTH).fill(0) };
export const fanDag: BenchDag = {
  parents: [...Array.from({ length: FAN_WIDTH }, () => []), Array.from({ length: FAN_WIDTH }, (_, i) => i)],
  durationsMs: Array(FAN_WIDTH + 1).fill(0),
};

/** A bench fixture lattice by name (registered by bench/fixtures/workflows.ts). */
export function latticeNamed(name: string): Lattice {
  const found = defaultLatticeRegistry.get(name);
  if (!found) throw new Error(`bench fixture lattice ${name} is not registered`);
  return found;
}

interface OverheadEntry {
  graph: string;
  nodes: number;
  runs: LocalRun[];
  inProcessMs: number;
  interpreterMs: number;
  awaitStates: number;
}

function callsPerNode(entries: OverheadEntry[]) {
  let nodes = 0;
  let transitions = 0;
  let history = 0;
  let dispatchSide: CounterSnapshot = {};
  let executionSide: CounterSnapshot = {};
  for (const e of entries) {
    for (const r of e.runs) {
      nodes += e.nodes;
      transitions += r.stateTransitions;
      history += r.historyEvents;
      dispatchSide = merge(dispatchSide, r.dispatchCalls);
      executionSide = merge(executionSide, r.executionCalls);
    }
  }
  const all = merge(dispatchSide, executionSide);
  const per = (n: number) => round(n / nodes, 3);
  const perNode = {
    lambdaInvocations: per(get(all, 'lambda', ['Invoke'])),
    stateTransitions: per(transitions),
    historyEvents: per(history),
    dynamoDbWrites: per(get(all, 'dynamodb', DDB_WRITES)),
    dynamoDbReads: per(get(all, 'dynamodb', DDB_READS)),
    s3Puts: per(get(all, 's3', S3_PUTS)),
    s3Gets: per(get(all, 's3', S3_GETS)),
    s3Requests: per(get(all, 's3', [...S3_PUTS, ...S3_GETS])),
    stepFunctionsApiCalls: per(get(all, 'states', Object.keys(all['states'] ?? {}))),
  };
  const per1000 = (x: number) => x * 1000;
  const lambdaGbSeconds = (ASSUMED_INVOCATION_MS / 1000) * (STEP_HANDLER.memoryMb / 1024);
  const cost = {
    stepFunctions: per1000(perNode.stateTransitions) * PRICES.stepFunctionsStandardPerStateTransition,
    lambdaRequests: per1000(perNode.lambdaInvocations) * PRICES.lambdaPerRequest,
    lambdaCompute: per1000(perNode.lambdaInvocations) * lambdaGbSeconds * PRICES.lambdaPerGbSecondArm,
    dynamoDbWrites: per1000(perNode.dynamoDbWrites) * PRICES.dynamoDbPerWriteRequestUnit,
    dynamoDbReads: per1000(perNode.dynamoDbReads) * PRICES.dynamoDbPerReadRequestUnit,
    s3: per1000(perNode.s3Puts) * PRICES.s3PerPut + per1000(perNode.s3Gets) * PRICES.s3PerGet,
  };
  const total = Object.values(cost).reduce((a, b) => a + b, 0);
  return {
    nodesCounted: nodes,
    graphs: entries.map((e) => `${e.graph} (${e.nodes} nodes × ${e.runs.length} run${e.runs.length === 1 ? '' : 's'})`),
    perNode,
    perNodeByOperation: {
      note: 'all requests (client dispatch + execution) divided by nodes; dispatch side = the dispatch() call (graph, args, node items, StartExecution)',
      dispatchSide: Object.fromEntries(Object.entries(dispatchSide).map(([s, ops]) => [s, Object.fromEntries(Object.entries(ops).map(([op, n]) => [op, per(n)]))])),
      executionSide: Object.fromEntries(Object.entries(executionSide).map(([s, ops]) => [s, Object.fromEntries(Object.entries(ops).map(([op, n]) => [op, per(n)]))])),
    },
    goals: {
      lambdaInvocationsAtMost1: { value: perNode.lambdaInvocations, met: perNode.lambdaInvocations <= 1 },
      dynamoDbWritesAtMost3: { value: perNode.dynamoDbWrites, met: perNode.dynamoDbWrites <= 3 },
      s3RequestsAtMost2: { value: perNode.s3Requests, met: perNode.s3Requests <= 2 },
    },
    costPer1000NodesUsd: { ...Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, round(v, 5)])), total: round(total, 5) },
    pricing: {
      prices: PRICES,
      assumptions: [
        `Lambda compute: ${ASSUMED_INVOCATION_MS} ms billed per invocation at ${STEP_HANDLER.memoryMb} MB ${STEP_HANDLER.architecture} (the infra default); local durations say nothing about AWS's`,
        'DynamoDB: 1 request unit per request (items under 1 KB written / 4 KB read); BatchGetItem is priced per request, which undercounts: AWS bills each item it reads',
        'S3: ListObjects priced as a PUT-class request, HeadObject as a GET',
        'the sweeper (every 30 s) and the getResult calls after each run are not counted; the sweeper may add a few Query calls inside a run',
      ],
    },
  };
}

/** Runs benchmarks 1–3 on one local cloud. */
export async function runOrchestration(): Promise<BenchOutcome[]> {
  progress('orchestration: starting the local cloud');
  const t0 = performance.now();
  const bc = await startBenchCloud();
  const startMs = performance.now() - t0;
  try {
    progress('orchestration: warming the step-handler workers (3 × 16 parallel no-ops)');
    const warmMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const w0 = performance.now();
      const id = (await bc.client.dispatch(latticeNamed('benchWarm') as Lattice<[], unknown>)()).id;
      await bc.cloud.services.stepfunctions.waitForExecution(bc.executionArn('benchWarm', id));
      warmMs.push(round(performance.now() - w0, 0));
    }

    const entries: OverheadEntry[] = [];
    const measure = async (graph: string, latticeName: string, dag: BenchDag): Promise<void> => {
      const lattice = latticeNamed(latticeName);
      progress(`orchestration: ${graph} (${dag.parents.length} nodes) on the local cloud`);
      const run = await runLocal(bc, lattice, dag);
      if (run.status !== 'COMPLETED') throw new Error(`${latticeName} ended ${run.status}`);
      const base = await baselines(lattice, dag);
      const existing = entries.find((e) => e.graph === graph);
      if (existing) {
        existing.runs.push(run);
        existing.inProcessMs = round(existing.inProcessMs + base.inProcessMs, 3);
        existing.interpreterMs = round(existing.interpreterMs + base.interpreterMs, 3);
        existing.awaitStates += base.awaitStates;
      } else entries.push({ graph, nodes: dag.parents.length, runs: [run], ...base });
    };
    await measure(`chain-${CHAIN_LENGTH}`, 'benchChain', chainDag);
    await measure(`fanout-${FAN_WIDTH}`, 'benchFan', fanDag);
    const noopSeeds = NOOP_DAG_SEEDS.slice(0, SCALE.noopDags);
    for (const seed of noopSeeds) await measure(`random-dag-${DAG_NODES}`, `benchDag${seed}`, randomDag(seed, DAG_NODES));

    const overhead = entries.map((e) => {
      const localMs = e.runs.reduce((a, r) => a + r.totalMs, 0);
      const nodes = e.nodes * e.runs.length;
      return {
        graph: e.graph,
        nodes: e.nodes,
        runs: e.runs.length,
        localCloudMs: round(localMs / e.runs.length, 1),
        localCloudDispatchCallMs: round(e.runs.reduce((a, r) => a + r.dispatchMs, 0) / e.runs.length, 1),
        inProcessMs: round(e.inProcessMs / e.runs.length, 3),
        interpreterMs: round(e.interpreterMs / e.runs.length, 1),
        awaitStatesPerRun: e.awaitStates / e.runs.length,
        perNodeOverheadMs: round((localMs - e.inProcessMs) / nodes, 2),
        interpreterPerNodeMs: round(e.interpreterMs / nodes, 3),
        ratioVsInProcess: round(localMs / Math.max(e.inProcessMs, 0.001), 0),
        ratioVsInterpreter: round(localMs / Math.max(e.interpreterMs, 0.001), 1),
        stateTransitionsPerRun: e.runs.reduce((a, r) => a + r.stateTransitions, 0) / e.runs.length,
        startDelayMs: describe(e.runs.flatMap((r) => r.startDelaysMs)),
        afterParentDelayMs: describe(e.runs.flatMap((r) => r.afterParentDelaysMs)),
      };
    });

    // Benchmark 2: schedule exactness.
    const sleepSeeds = SLEEP_DAG_SEEDS.slice(0, SCALE.sleepDags);
    const exact = [];
    for (const seed of sleepSeeds) {
      const dag = randomDag(seed, DAG_NODES, SLEEP_RANGE);
      progress(`exactness: sleeping DAG seed ${seed}`);
      const run = await runLocal(bc, latticeNamed(`benchSleep${seed}`), dag);
      if (run.status !== 'COMPLETED') throw new Error(`benchSleep${seed} ended ${run.status}`);
      const cp = criticalPathMs(dag);
      const level = levelScheduleMs(dag);
      exact.push({
        seed,
        nodes: DAG_NODES,
        maxLevelWidth: maxWidth(dag),
        criticalPathMs: cp,
        levelScheduleMs: level,
        makespanMs: round(run.nodeSpanMs, 0),
        endToEndMs: round(run.totalMs, 0),
        makespanOverCriticalPath: round(run.nodeSpanMs / cp, 3),
        endToEndOverCriticalPath: round(run.totalMs / cp, 3),
        levelScheduleOverCriticalPath: round(level / cp, 3),
        startDelayMs: describe(run.startDelaysMs),
        afterParentDelayMs: describe(run.afterParentDelaysMs),
        afterParentDelaysMs: run.afterParentDelaysMs.map((d) => round(d, 1)),
      });
    }
    const meanOf = (xs: number[]) => round(xs.reduce((a, b) => a + b, 0) / xs.length, 3);
    const exactness = {
      benchmark: 'schedule-exactness',
      scaling: `${SCALE.sleepDags} of the issue's 50 random DAGs (seeds ${sleepSeeds[0]}…${sleepSeeds.at(-1)}), ${DAG_NODES} nodes each, sleeps ${SLEEP_RANGE.minMs}–${SLEEP_RANGE.maxMs} ms; one run each`,
      definitions: {
        makespan: 'first node start to last node end, from the node items (startedAt/endedAt)',
        endToEnd: 'from the dispatch() call until the execution ended',
        levelSchedule: 'computed: each level starts when the previous level ended (sum of the longest sleep per level), with unlimited workers and zero overhead — the best a level-by-level scheduler can do',
        startDelay: "a node's start minus its last parent's end",
      },
      stepHandlerConcurrency: STEP_CONCURRENCY,
      goal: 'makespan / critical path ≤ 1.05',
      mean: {
        makespanOverCriticalPath: meanOf(exact.map((e) => e.makespanOverCriticalPath)),
        endToEndOverCriticalPath: meanOf(exact.map((e) => e.endToEndOverCriticalPath)),
        levelScheduleOverCriticalPath: meanOf(exact.map((e) => e.levelScheduleOverCriticalPath)),
      },
      dags: exact,
    };

    const family = (prefix: string) => entries.filter((e) => e.graph.startsWith(prefix));
    const randomCalls = callsPerNode(family('random-dag'));
    const calls = {
      benchmark: 'aws-calls',
      ...callsPerNode(entries),
      byGraph: {
        note: "issue 18's goals are per no-op node of the random DAGs; the top-level figures (and the issue's 'now' column) are over every graph",
        chain: callsPerNode(family('chain')),
        fanout: callsPerNode(family('fanout')),
        randomDags: randomCalls,
      },
    };
    const overheadResult = {
      benchmark: 'orchestration-overhead',
      scaling: `chain ${CHAIN_LENGTH} and fan-out ${FAN_WIDTH} as in the issue (fan-out 1,000 compiles: ≈580 KB); random DAGs: ${SCALE.noopDags} of the issue's 50 (seeds ${noopSeeds[0]}…${noopSeeds.at(-1)}), one local-cloud run each after a warm-up; in-process baseline: median of ${SCALE.inProcessRepeats} runs; interpreter baseline: median of ${SCALE.interpreterRepeats}`,
      localCloud: { startAndDeployMs: round(startMs, 0), warmUpRunsMs: warmMs, stepHandlerConcurrency: STEP_CONCURRENCY },
      definitions: {
        localCloudMs: 'dispatch() call until the execution ended (warm step-handler workers)',
        inProcessMs: 'the same DAG as plain async calls (each node awaits its parents, then returns 0) — the physical floor',
        interpreterMs: 'the compiled definition on aws-local-stepfunctions with no-op handlers (await tasks released when their parents ran) — the interpreter’s own cost',
        perNodeOverheadMs: '(localCloudMs − inProcessMs) / nodes',
        startDelay: "a node's start minus its last parent's end (roots: minus the first node's start)",
      },
      graphs: overhead,
      runs: entries.map((e) => ({ graph: e.graph, dispatchIds: e.runs.map((r) => r.dispatchId) })),
    };

    const rows: SummaryRow[] = [];
    for (const o of overhead) {
      rows.push({
        benchmark: '1 overhead',
        metric: `${o.graph}${o.runs > 1 ? ` ×${o.runs}` : ''}: wall ms (per-node overhead)`,
        value: `${fmt(o.localCloudMs, 0)} (${fmt(o.perNodeOverheadMs, 1)}/node)`,
        baseline: `in-process ${fmt(o.inProcessMs, 2)}; interpreter ${fmt(o.interpreterMs, 0)}`,
        ratio: `×${fmt(o.ratioVsInProcess, 0)} / ×${fmt(o.ratioVsInterpreter, 1)}`,
        goal: '-',
        met: '-',
      });
    }
    rows.push({
      benchmark: '2 exactness',
      metric: `makespan ÷ critical path (${SCALE.sleepDags} DAGs, mean)`,
      value: fmt(exactness.mean.makespanOverCriticalPath, 3),
      baseline: `level-by-level ${fmt(exactness.mean.levelScheduleOverCriticalPath, 3)}`,
      ratio: `×${fmt(exactness.mean.makespanOverCriticalPath / exactness.mean.levelScheduleOverCriticalPath, 2)}`,
      goal: '≤ 1.05',
      met: exactness.mean.makespanOverCriticalPath <= 1.05 ? 'yes' : 'NO',
    });
    const pn: Record<string, number> = calls.perNode;
    const goals: Record<string, { met: boolean }> = calls.goals;
    const cost = calls.costPer1000NodesUsd;
    rows.push(
      { benchmark: '3 AWS calls', metric: 'Lambda invocations / node', value: fmt(pn['lambdaInvocations'] ?? NaN, 2), baseline: '-', ratio: '-', goal: '≤ 1', met: goals['lambdaInvocationsAtMost1']?.met ? 'yes' : 'NO' },
      { benchmark: '3 AWS calls', metric: 'DynamoDB writes / node (reads)', value: `${fmt(pn['dynamoDbWrites'] ?? NaN, 2)} (${fmt(pn['dynamoDbReads'] ?? NaN, 2)})`, baseline: '-', ratio: '-', goal: '≤ 3 writes', met: goals['dynamoDbWritesAtMost3']?.met ? 'yes' : 'NO' },
      { benchmark: '3 AWS calls', metric: 'S3 requests / node', value: fmt(pn['s3Requests'] ?? NaN, 2), baseline: '-', ratio: '-', goal: '≤ 2', met: goals['s3RequestsAtMost2']?.met ? 'yes' : 'NO' },
      { benchmark: '3 AWS calls', metric: 'state transitions / node', value: fmt(pn['stateTransitions'] ?? NaN, 2), baseline: '-', ratio: '-', goal: '-', met: '-' },
      { benchmark: '3 AWS calls', metric: 'USD per 1,000 no-op nodes', value: `$${fmt(cost.total, 4)}`, baseline: '-', ratio: '-', goal: '-', met: '-' },
    );
    const G = ISSUE18_GOALS;
    const chain = overhead.find((o) => o.graph.startsWith('chain'));
    const fan = overhead.find((o) => o.graph.startsWith('fanout'));
    const noopDelays = entries.filter((e) => e.graph.startsWith('random-dag')).flatMap((e) => e.runs.flatMap((r) => r.afterParentDelaysMs));
    const sleepDelay = describe(exact.flatMap((e) => e.afterParentDelaysMs));
    const noopDelay = describe(noopDelays);
    const rp: Record<string, number> = randomCalls.perNode;
    const randomUsd = randomCalls.costPer1000NodesUsd.total;
    const yesNo = (ok: boolean): string => (ok ? 'yes' : 'NO');
    const issueRows: SummaryRow[] = [
      {
        benchmark: ISSUE18,
        metric: `chain-${CHAIN_LENGTH}, per-node overhead ms`,
        value: fmt(chain?.perNodeOverheadMs ?? NaN, 1),
        baseline: `wall ${fmt(chain?.localCloudMs ?? NaN, 0)} ms`,
        ratio: '-',
        goal: `≤ ${G.chainPerNodeOverheadMs}`,
        met: yesNo((chain?.perNodeOverheadMs ?? Infinity) <= G.chainPerNodeOverheadMs),
      },
      {
        benchmark: ISSUE18,
        metric: `fan-out ${fmt(FAN_WIDTH, 0)} no-op nodes, wall ms`,
        value: fmt(fan?.localCloudMs ?? NaN, 0),
        baseline: `dispatch call ${fmt(fan?.localCloudDispatchCallMs ?? NaN, 0)} ms`,
        ratio: '-',
        goal: `≤ ${fmt(G.fanoutWallMs, 0)}`,
        met: yesNo((fan?.localCloudMs ?? Infinity) <= G.fanoutWallMs),
      },
      {
        benchmark: ISSUE18,
        metric: 'start delay after the last parent ends, random DAGs, p50 / p95 ms',
        value: `${fmt(sleepDelay.p50, 0)} / ${fmt(sleepDelay.p95, 0)}`,
        baseline: `sleeping DAGs (n=${sleepDelay.n}); no-op DAGs ${fmt(noopDelay.p50, 0)} / ${fmt(noopDelay.p95, 0)}`,
        ratio: '-',
        goal: `≤ ${G.startDelayP50Ms} / ${G.startDelayP95Ms}`,
        met: yesNo(sleepDelay.p50 <= G.startDelayP50Ms && sleepDelay.p95 <= G.startDelayP95Ms),
      },
      {
        benchmark: ISSUE18,
        metric: 'makespan ÷ critical path, random DAGs',
        value: fmt(exactness.mean.makespanOverCriticalPath, 3),
        baseline: `level-by-level ${fmt(exactness.mean.levelScheduleOverCriticalPath, 3)}`,
        ratio: '-',
        goal: `≤ ${G.makespanOverCriticalPath}`,
        met: yesNo(exactness.mean.makespanOverCriticalPath <= G.makespanOverCriticalPath),
      },
      {
        benchmark: ISSUE18,
        metric: 'Lambda invocations / DynamoDB writes / S3 requests per no-op node (random DAGs)',
        value: `${fmt(rp['lambdaInvocations'] ?? NaN, 2)} / ${fmt(rp['dynamoDbWrites'] ?? NaN, 2)} / ${fmt(rp['s3Requests'] ?? NaN, 2)}`,
        baseline: `all graphs ${fmt(pn['lambdaInvocations'] ?? NaN, 2)} / ${fmt(pn['dynamoDbWrites'] ?? NaN, 2)} / ${fmt(pn['s3Requests'] ?? NaN, 2)}`,
        ratio: '-',
        goal: `≤ ${G.lambdaInvocationsPerNode} / ≤ ${G.dynamoDbWritesPerNode} / ≤ ${G.s3RequestsPerNode}`,
        met: yesNo((rp['lambdaInvocations'] ?? Infinity) <= G.lambdaInvocationsPerNode && (rp['dynamoDbWrites'] ?? Infinity) <= G.dynamoDbWritesPerNode && (rp['s3Requests'] ?? Infinity) <= G.s3RequestsPerNode),
      },
      {
        benchmark: ISSUE18,
        metric: "USD per 1,000 no-op nodes on AWS (bench's price model, random DAGs)",
        value: `$${fmt(randomUsd, 4)}`,
        baseline: `all graphs $${fmt(cost.total, 4)}`,
        ratio: '-',
        goal: `≤ $${G.usdPer1000Nodes}`,
        met: yesNo(randomUsd <= G.usdPer1000Nodes),
      },
    ];
    const issue18 = {
      benchmark: 'issue-18',
      goals: G,
      chainPerNodeOverheadMs: chain?.perNodeOverheadMs ?? null,
      fanoutWallMs: fan?.localCloudMs ?? null,
      fanoutDispatchCallMs: fan?.localCloudDispatchCallMs ?? null,
      startDelayAfterLastParentMs: { sleepingRandomDags: sleepDelay, noopRandomDags: noopDelay, note: 'nodes with parents only: start minus the last parent end, from the node items' },
      makespanOverCriticalPath: exactness.mean.makespanOverCriticalPath,
      perNoopNodeRandomDags: { lambdaInvocations: rp['lambdaInvocations'], dynamoDbWrites: rp['dynamoDbWrites'], s3Requests: rp['s3Requests'], usdPer1000Nodes: randomUsd },
      perNoopNodeAllGraphs: { lambdaInvocations: pn['lambdaInvocations'], dynamoDbWrites: pn['dynamoDbWrites'], s3Requests: pn['s3Requests'], usdPer1000Nodes: cost.total },
    };
    return [
      { name: 'issue-18-orchestration', result: issue18, rows: issueRows },
      { name: 'orchestration-overhead', result: overheadResult, rows: rows.filter((r) => r.benchmark.startsWith('1')) },
      { name: 'schedule-exactness', result: exactness, rows: rows.filter((r) => r.benchmark.startsWith('2')) },
      { name: 'aws-calls', result: calls, rows: rows.filter((r) => r.benchmark.startsWith('3')) },
    ];
  } finally {
    await bc.close();
  }
}
