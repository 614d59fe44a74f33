/**
 * Where a split lattice's CPU goes on the local cloud (issue 18): the layered fixture of
 * `bench/fixtures/large.ts`, dispatched once with a CPU profile of every thread (as
 * `bench/profile.ts` does for the nested graphs), then analysed the same way. Round six found
 * the 20,000-node wall unchanged after the split form's calls per node halved, with the process
 * at ~190 % of 2 cores: this says what the CPU does instead.
 *
 * ```sh
 * VALENCE_BENCH_LARGE_LAYERS=2 node --import tsx bench/split-profile.ts   # 2,000 nodes, 2 partitions
 * ```
 *
 * Prints the process CPU per node and the top categories and functions (Markdown tables).
 * Profiles go to `bench/results/profiles/` (git-ignored).
 */
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startAllThreadsProfile } from './cpu-profile.ts';
import { LAYERS, WIDTH, large } from './fixtures/large.ts';
import { RESULTS_DIR, progress, round, startBenchCloud } from './lib.ts';
import { analyseProfiles, costTable, profilesIn } from './profile-analyse.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/large.ts', import.meta.url));
const PROFILES_DIR = `${RESULTS_DIR}profiles/`;
const LABEL = `split-${LAYERS * WIDTH}`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const bench = await startBenchCloud({ workflows: FIXTURE });
  try {
    rmSync(PROFILES_DIR, { recursive: true, force: true });
    const loadBefore = loadavg().map((l) => round(l, 2));
    const profiler = await startAllThreadsProfile({});
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { id } = await bench.client.dispatch(large)();
    const result = await bench.client.getResult(id, { wait: true, timeoutMs: 1_800_000 });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await profiler.stop(PROFILES_DIR, LABEL);
    const nodes = LAYERS * WIDTH;
    const processCpuMs = (cpu.user + cpu.system) / 1000;
    const analysis = analyseProfiles(profilesIn(PROFILES_DIR, LABEL));
    const scale = processCpuMs / Math.max(1, analysis.cpuMs);
    progress(`${LABEL}: ${result.status} in ${round(wallMs, 0)} ms (profiled), process CPU ${round(processCpuMs / nodes, 2)} ms/node, load ${loadBefore.join(' ')} → ${loadavg().map((l) => round(l, 2)).join(' ')}`);
    process.stdout.write(`${costTable('category', analysis.byCategory, nodes, scale)}\n\n`);
    process.stdout.write(`${costTable('thread role', analysis.byThreadRole.map((r) => ({ ...r, name: `${r.name} (${r.threads} threads)` })), nodes, scale)}\n\n`);
    process.stdout.write(`${costTable('function (top 25)', analysis.byFunction, nodes, scale)}\n`);
  } finally {
    await bench.close();
  }
}
