/**
 * One compile-scale sample, run in its own process so that peak memory (maxRSS) belongs to
 * this graph alone: builds a chain or a fan-out/fan-in of `n` no-op electrons, compiles it,
 * and prints one JSON line. Usage: `node --import tsx bench/compile-child.ts chain 10000`.
 */
import { readFileSync } from 'node:fs';
import { compileLattice } from '../sdk/compiler/index.ts';
import { LatticeRegistry, electron, lattice } from '../sdk/model/index.ts';

const [shape = 'chain', size = '1000'] = process.argv.slice(2);
const n = Number(size);
const registry = new LatticeRegistry();
const noop = electron(function noop(_i: number, ..._after: unknown[]) {
  return 0;
});
const body =
  shape === 'chain'
    ? () => {
        let last: unknown = noop(0);
        for (let i = 1; i < n; i++) last = noop(i, last);
        return last;
      }
    : () => noop(-1, ...Array.from({ length: n - 1 }, (_, i) => noop(i)));
const subject = lattice({ name: `${shape}${n}`, registry }, body);

function peakRssKb(): number {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? Number.NaN);
  } catch {
    return process.resourceUsage().maxRSS;
  }
}

const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const graph = subject.template();
const buildMs = performance.now() - t0;
const rssAfterBuild = process.memoryUsage().rss;
// A first line right away: the parent keeps it if compile runs past its time cap.
console.log(JSON.stringify({ phase: 'built', shape, nodes: n, buildMs, rssAfterBuildMb: rssAfterBuild / 2 ** 20 }));
const t1 = performance.now();
let compiled: { definitionBytes: number; stateCount: number; estimatedHistoryEvents: number; partitions?: unknown } | undefined;
let error: { name: string; code?: string; message: string } | undefined;
try {
  // The compiler takes the built graph itself, so the build is not counted twice.
  compiled = compileLattice(graph as never, { stepHandlerArn: 'arn:aws:lambda:us-east-1:000000000000:function:valence-step' }).stats;
} catch (e) {
  const err = e as Error & { code?: string };
  error = { name: err.name, ...(err.code ? { code: err.code } : {}), message: err.message };
}
const compileMs = performance.now() - t1;
console.log(
  JSON.stringify({
    phase: 'done',
    shape,
    nodes: n,
    buildMs,
    compileMs,
    outcome: compiled ? 'compiled' : 'refused',
    ...(compiled ? { stats: compiled } : { error }),
    rssBeforeMb: rssBefore / 2 ** 20,
    rssAfterBuildMb: rssAfterBuild / 2 ** 20,
    // VmHWM: this process image's peak resident set, build and compile included. (maxRSS is
    // not used: on Linux it keeps the forking parent's size across exec.)
    peakRssMb: peakRssKb() / 1024,
  }),
);
