/**
 * Where the local cloud's time goes (issue 18): profiles no-op benchmarks on the embedded local
 * cloud on every thread of the process, and aggregates the profiles by self time per cost
 * category, thread role, package or module, and function.
 *
 * ```sh
 * node --import tsx bench/profile.ts                       # fanout-1000 and chain-200, profiled
 * node --import tsx bench/profile.ts --graphs fanout,chain,dag --no-profile   # counts and CPU only
 * node --import tsx bench/profile.ts --analyse bench/results/profiles          # re-analyse files
 * node --cpu-prof --cpu-prof-dir=/tmp/p --import tsx bench/profile.ts --no-profile  # main thread only, whole process
 * ```
 *
 * Each graph runs once after the warm-up that bench/orchestration.ts does (3 × 16 parallel
 * no-ops), with the profiler started just before `dispatch()` and stopped once the execution
 * ended. Writes `bench/results/profile.json` (and the `.cpuprofile` files under
 * `bench/results/profiles/`, not committed), and prints the tables as Markdown.
 *
 * Sampling costs time: wall times of a profiled run are not the benchmark's; the process CPU
 * (`process.cpuUsage()`, all threads) is recorded profiled and is the figure to compare with the
 * issue's "≈ 26 ms of CPU per node".
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CounterSnapshot } from '../localstack/index.ts';
import type { Lattice } from '../sdk/model/index.ts';
import { startAllThreadsProfile, type ProfileFiles } from './cpu-profile.ts';
import { DAG_NODES, NOOP_DAG_SEEDS, randomDag, type BenchDag } from './dag.ts';
import { CHAIN_LENGTH, FAN_WIDTH } from './fixtures/workflows.ts';
import { machine, progress, round, startBenchCloud, writeResult, RESULTS_DIR } from './lib.ts';
import { chainDag, fanDag, latticeNamed, runLocal } from './orchestration.ts';
import { analyseProfiles, costTable, profilesIn, type ProfileAnalysis } from './profile-analyse.ts';

const PROFILES_DIR = `${RESULTS_DIR}profiles/`;

const GRAPHS: Record<string, { label: string; lattice: string; dag: () => BenchDag }> = {
  fanout: { label: `fanout-${FAN_WIDTH}`, lattice: 'benchFan', dag: () => fanDag },
  chain: { label: `chain-${CHAIN_LENGTH}`, lattice: 'benchChain', dag: () => chainDag },
  dag: { label: `random-dag-${DAG_NODES}-seed${NOOP_DAG_SEEDS[0]}`, lattice: `benchDag${NOOP_DAG_SEEDS[0]}`, dag: () => randomDag(NOOP_DAG_SEEDS[0]!, DAG_NODES) },
};

/** What one profiled graph run reports. */
interface GraphProfile {
  readonly graph: string;
  readonly nodes: number;
  readonly status: string;
  readonly wallMs: number;
  readonly dispatchCallMs: number;
  /** `process.cpuUsage()` over the run, user + system, every thread. */
  readonly processCpuMs: number;
  readonly processCpuMsPerNode: number;
  /** The main thread's share of it (server side: router, dynalite, s3rver, Step Functions; and the client). */
  readonly mainThreadCpuMs: number;
  /**
   * CPU ms of each other OS thread that used any, busiest first (Node 20 does not name threads:
   * worker JS threads, V8's platform threads — GC, compiler — and libuv's pool look alike).
   */
  readonly otherThreadsCpuMs: number[];
  readonly loadAverageBefore: number[];
  readonly loadAverageAfter: number[];
  readonly profiled: boolean;
  readonly profiles?: Omit<ProfileFiles, 'threads'> & { readonly threads: number };
  readonly calls: { readonly dispatchSide: CounterSnapshot; readonly executionSide: CounterSnapshot };
  readonly stateTransitions: number;
  readonly analysis?: ProfileAnalysis;
}

const load = (): number[] => loadavg().map((l) => round(l, 2));

/** CPU ms of every OS thread of this process (Linux), by thread id. */
function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(tid, (Number(fields[11]) + Number(fields[12])) * 10);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  } catch {
    // Not Linux.
  }
  return out;
}

/** CPU ms of the main thread alone (Linux: /proc/self/task/{pid}/stat utime + stime), or NaN. */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5), counted from after the command name: utime, stime in clock ticks (100 Hz).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

function printAnalysis(g: GraphProfile): void {
  const a = g.analysis;
  if (!a) return;
  const out: string[] = [];
  out.push(`\n### ${g.graph}: ${g.nodes} nodes, ${g.status}, wall ${round(g.wallMs, 0)} ms profiled, process CPU ${round(g.processCpuMs, 0)} ms (${g.processCpuMsPerNode} ms/node; main thread ${g.mainThreadCpuMs} ms; other threads ${g.otherThreadsCpuMs.slice(0, 12).join(', ')}${g.otherThreadsCpuMs.length > 12 ? ', …' : ''}), sampled CPU ${a.cpuMs} ms over ${a.files} threads; load ${g.loadAverageBefore.join(' ')} → ${g.loadAverageAfter.join(' ')}\n`);
  const scale = Number.isFinite(g.processCpuMs) ? g.processCpuMs / Math.max(1, a.cpuMs) : 1;
  out.push(costTable('category', a.byCategory, g.nodes, scale));
  out.push('');
  out.push(costTable('thread role', a.byThreadRole.map((r) => ({ ...r, name: `${r.name} (${r.threads} threads)` })), g.nodes, scale));
  for (const role of a.byThreadRole) {
    out.push('');
    out.push(costTable(`${role.name}: category`, role.categories.slice(0, 10), g.nodes, scale));
  }
  out.push('');
  out.push(costTable('package / module (top 25)', a.byModule, g.nodes, scale));
  out.push('');
  out.push(costTable('function (top 25)', a.byFunction, g.nodes, scale));
  out.push('');
  out.push(costTable('JSON / devalue, by caller', a.jsonByCaller, g.nodes, scale));
  for (const row of a.byCategory.slice(0, 8)) {
    out.push('');
    out.push(costTable(`${row.name}: top functions`, a.functionsByCategory[row.name] ?? [], g.nodes, scale));
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function record(graphs: string[], profile: boolean, intervalUs: number): Promise<void> {
  const host = machine();
  progress(`profile: load before ${load().join(' ')}; starting the local cloud`);
  const bc = await startBenchCloud();
  const results: GraphProfile[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const id = (await bc.client.dispatch(latticeNamed('benchWarm') as Lattice<[], unknown>)()).id;
      await bc.cloud.services.stepfunctions.waitForExecution(bc.executionArn('benchWarm', id));
    }
    if (profile) rmSync(PROFILES_DIR, { recursive: true, force: true });
    for (const key of graphs) {
      const spec = GRAPHS[key];
      if (!spec) throw new Error(`unknown graph "${key}" (known: ${Object.keys(GRAPHS).join(', ')})`);
      const dag = spec.dag();
      const loadBefore = load();
      progress(`profile: ${spec.label}${profile ? ' (profiling every thread)' : ''}, load ${loadBefore.join(' ')}`);
      const profiler = profile ? await startAllThreadsProfile({ intervalUs }) : undefined;
      const cpu0 = process.cpuUsage();
      const main0 = mainThreadCpuMs();
      const tasks0 = threadCpuMs();
      const run = await runLocal(bc, latticeNamed(spec.lattice), dag);
      const cpu = process.cpuUsage(cpu0);
      const mainMs = mainThreadCpuMs() - main0;
      const tasks1 = threadCpuMs();
      const others = [...tasks1].filter(([tid]) => tid !== String(process.pid)).map(([tid, ms]) => ms - (tasks0.get(tid) ?? 0)).filter((ms) => ms > 0).sort((a, b) => b - a);
      const files = profiler ? await profiler.stop(PROFILES_DIR, spec.label) : undefined;
      const processCpuMs = (cpu.user + cpu.system) / 1000;
      const entry: GraphProfile = {
        graph: spec.label,
        nodes: dag.parents.length,
        status: run.status,
        wallMs: round(run.totalMs, 0),
        dispatchCallMs: round(run.dispatchMs, 0),
        processCpuMs: round(processCpuMs, 0),
        processCpuMsPerNode: round(processCpuMs / dag.parents.length, 2),
        mainThreadCpuMs: round(mainMs, 0),
        otherThreadsCpuMs: others,
        loadAverageBefore: loadBefore,
        loadAverageAfter: load(),
        profiled: profile,
        ...(files ? { profiles: { dir: files.dir, threads: files.threads.length, exitedBeforeStop: files.exitedBeforeStop } } : {}),
        calls: { dispatchSide: run.dispatchCalls, executionSide: run.executionCalls },
        stateTransitions: run.stateTransitions,
        ...(files ? { analysis: analyseProfiles(profilesIn(PROFILES_DIR, spec.label)) } : {}),
      };
      results.push(entry);
      progress(`profile: ${spec.label} ${run.status} in ${entry.wallMs} ms, process CPU ${entry.processCpuMs} ms (${entry.processCpuMsPerNode}/node)`);
      printAnalysis(entry);
    }
  } finally {
    await bc.close();
  }
  writeResult(profile ? 'profile' : 'profile-unprofiled', {
    benchmark: 'profile',
    command: `node --import tsx bench/profile.ts --graphs ${graphs.join(',')}${profile ? '' : ' --no-profile'}`,
    date: new Date().toISOString(),
    machine: host,
    samplingIntervalUs: intervalUs,
    note: 'process CPU is every thread of the one local-cloud process (main: server, dynalite, s3rver, Step Functions, client; workers: Lambda sandboxes and their electron threads); profiled wall times include the sampling overhead',
    graphs: results,
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      graphs: { type: 'string', default: 'fanout,chain' },
      'no-profile': { type: 'boolean', default: false },
      interval: { type: 'string', default: '1000' },
      analyse: { type: 'string' },
      label: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.analyse) {
    const analysis = analyseProfiles(profilesIn(values.analyse, values.label));
    if (values.json) process.stdout.write(`${JSON.stringify(analysis, null, 2)}\n`);
    else printAnalysis({ graph: values.label ?? values.analyse, nodes: 1, status: '-', wallMs: NaN, dispatchCallMs: NaN, processCpuMs: NaN, processCpuMsPerNode: NaN, mainThreadCpuMs: NaN, otherThreadsCpuMs: [], loadAverageBefore: [], loadAverageAfter: [], profiled: true, calls: { dispatchSide: {}, executionSide: {} }, stateTransitions: NaN, analysis });
    return;
  }
  await record(values.graphs.split(','), !values['no-profile'], Number(values.interval));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

