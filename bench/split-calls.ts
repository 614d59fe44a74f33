/**
 * AWS calls per node of a split lattice on the local cloud (issue 18): the layered fixture of
 * `bench/fixtures/large.ts`, dispatched once and waited for, with the cloud's own request
 * counters divided by the node count. A quick companion to `bench/large-lattice.ts` at a size
 * that runs in about half a minute:
 *
 * ```sh
 * VALENCE_BENCH_LARGE_LAYERS=3 node --import tsx bench/split-calls.ts   # 3,000 nodes, 3 partitions
 * ```
 *
 * Prints JSON: status, wall ms, ms per node, and calls per node by service and operation.
 */
import { fileURLToPath } from 'node:url';
import { diffCounters } from '../localstack/index.ts';
import { LAYERS, WIDTH, large } from './fixtures/large.ts';
import { startBenchCloud } from './lib.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/large.ts', import.meta.url));

/** Runs the lattice once and reports its calls per node. */
export async function splitCalls(): Promise<{ status: string; ms: number; msPerNode: number; perNode: Record<string, number> }> {
  const bench = await startBenchCloud({ workflows: FIXTURE });
  try {
    const before = bench.cloud.counters();
    const t0 = performance.now();
    const { id } = await bench.client.dispatch(large)();
    const result = await bench.client.getResult(id, { wait: true, timeoutMs: 1_800_000 });
    const ms = performance.now() - t0;
    const nodes = LAYERS * WIDTH;
    const perNode: Record<string, number> = {};
    for (const [service, ops] of Object.entries(diffCounters(before, bench.cloud.counters()))) {
      for (const [op, count] of Object.entries(ops)) if (count > 0) perNode[`${service}.${op}`] = Math.round((count / nodes) * 1000) / 1000;
    }
    return { status: result.status, ms: Math.round(ms), msPerNode: Math.round((ms / nodes) * 100) / 100, perNode };
  } finally {
    await bench.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(JSON.stringify(await splitCalls(), null, 1));
}
