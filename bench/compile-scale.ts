/**
 * Benchmark 6: graph build and compile time and peak memory for 1,000, 10,000 and 100,000-node
 * lattices (a chain and a fan-out/fan-in), each in its own process (bench/compile-child.ts) so
 * that peak RSS belongs to one graph. The compiler refuses definitions over 1 MB (about 1,900
 * chain nodes); those samples report the build time, the time to the refusal and the error.
 * Splitting large lattices (issue 8, "lattices past the limits") is not implemented.
 * Baseline: building the graph alone (the model's cost) beside compiling it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fmt, progress, round, type BenchOutcome, type SummaryRow } from './lib.ts';

export const SIZES = [1_000, 10_000, 100_000] as const;
export const SHAPES = ['chain', 'fan'] as const;
/** Per-sample wall-clock cap; compile time grows faster than linearly, so 100,000 nodes hit it. */
export const CAP_MS = 60_000;

const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface Sample {
  shape: string;
  nodes: number;
  buildMs?: number;
  compileMs?: number;
  outcome: 'compiled' | 'refused' | 'capped' | 'crashed';
  stats?: Record<string, number>;
  error?: { name: string; code?: string; message: string };
  peakRssMb?: number;
  rssAfterBuildMb?: number;
  note?: string;
}

function peakOf(pid: number | undefined): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function sample(shape: string, nodes: number): Promise<Sample> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--max-old-space-size=8192', 'bench/compile-child.ts', shape, String(nodes)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peak: number | undefined;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const started = performance.now();
    // Sample the child's peak RSS while it runs (it is gone once it exits).
    const watch = setInterval(() => (peak = peakOf(child.pid) ?? peak), 200);
    const cap = setTimeout(() => {
      peak = peakOf(child.pid) ?? peak;
      child.kill('SIGKILL');
    }, CAP_MS);
    child.once('exit', (code, signal) => {
      clearInterval(watch);
      clearTimeout(cap);
      const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const built = lines.find((l) => l['phase'] === 'built');
      const done = lines.find((l) => l['phase'] === 'done');
      if (done) {
        const { phase: _p, rssBeforeMb: _r, ...rest } = done;
        resolve({ ...(rest as unknown as Sample), buildMs: round(Number(done['buildMs']), 1), compileMs: round(Number(done['compileMs']), 1), peakRssMb: round(Number(done['peakRssMb']), 1) });
        return;
      }
      const base = { shape, nodes, ...(built ? { buildMs: round(Number(built['buildMs']), 1), rssAfterBuildMb: round(Number(built['rssAfterBuildMb']), 1) } : {}), ...(peak ? { peakRssMb: round(peak, 1) } : {}) };
      if (signal === 'SIGKILL') {
        resolve({ ...base, outcome: 'capped', note: `compile did not finish within the ${CAP_MS / 1000} s cap (killed after ${round((performance.now() - started) / 1000, 1)} s wall, build included); neither a definition nor the refusal was reached` });
      } else {
        resolve({ ...base, outcome: 'crashed', note: `exit ${code}: ${stderr.slice(-500)}` });
      }
    });
  });
}

/** Runs benchmark 6. */
export async function runCompileScale(): Promise<BenchOutcome> {
  const samples: Sample[] = [];
  for (const nodes of SIZES) {
    for (const shape of SHAPES) {
      progress(`compile: ${shape} of ${nodes} nodes`);
      samples.push(await sample(shape, nodes));
    }
  }
  const result = {
    benchmark: 'compile-scale',
    scaling: `sizes as in the issue; each sample capped at ${CAP_MS / 1000} s wall time`,
    split: 'Lattices past one state machine’s limits (or over 1,500 nodes) compile to the split form: partitions of 1,000 nodes run as child executions of a Distributed Map (sdk/compiler/README.md).',
    definitions: {
      buildMs: 'lattice.template(): the lattice body run with placeholders into a transport graph (the baseline)',
      compileMs: 'compileLattice(graph) until it returned a definition (split into partitions past the limits) or threw',
      peakRssMb: "the child process's peak resident set (VmHWM), Node + tsx included (≈ 75 MB at rest)",
    },
    samples,
  };
  const rows: SummaryRow[] = samples.map((s) => ({
    benchmark: '6 compile',
    metric: `${s.shape} ${fmt(s.nodes, 0)}: build / compile ms, peak MB`,
    value: `${fmt(s.buildMs ?? NaN, 0)} / ${s.outcome === 'capped' ? `> ${CAP_MS / 1000} s` : fmt(s.compileMs ?? NaN, 0)}, ${fmt(s.peakRssMb ?? NaN, 0)} MB`,
    baseline: `build ${fmt(s.buildMs ?? NaN, 0)} ms`,
    ratio: s.compileMs !== undefined && s.buildMs ? `×${fmt(s.compileMs / s.buildMs, 0)}` : '-',
    goal: 'definition ≤ 1 MB, ≤ 25,000 events',
    met: s.outcome === 'compiled' ? 'yes' : s.outcome === 'refused' ? 'NO (refused)' : s.outcome === 'capped' ? 'NO (not finished)' : 'NO (crashed)',
  }));
  return { name: 'compile-scale', result, rows };
}
