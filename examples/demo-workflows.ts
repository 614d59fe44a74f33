/**
 * The lattices `npm run demo` deploys: a small research pipeline that touches every kind of
 * node valence runs — inline on Lambda, a job on AWS Batch, a quantum task on Amazon Braket —
 * and a sublattice whose own nodes run on all three.
 *
 * ```
 * loadSamples (Lambda) ─┬─► featurize (Batch) ──────────┬─► summarize (Lambda)
 *                       └─► experiments (sublattice) ───┤
 * bellPair (Braket) ────────────────────────────────────┘
 *
 * experiments(samples):
 *   simulate (Lambda, ~60 s) ─┐
 *   anneal   (Batch,  ~60 s) ─┼──► combine (Lambda)
 *   sampleGhz (Braket)       ─┘
 * ```
 *
 * The two long electrons do their work in small steps and check their `AbortSignal` between
 * steps, which is what lets a cancel stop them promptly and cleanly. Dispatched on its own,
 * the pipeline completes in a little over a minute; the demo cancels `experiments` part-way.
 */
import { BatchExecutor, BraketExecutor, electron, lattice, sublattice, taskContext } from '../sdk/index.ts';

/** The queue the stack deploys (the local cloud's deploy names it `<stack>-queue`). */
const batch = new BatchExecutor({ jobQueue: 'valence-queue', vcpus: 1, memoryMiB: 1024 });
const braket = new BraketExecutor({ deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1', shots: 200 });

/** How long the two long electrons work when nobody cancels them. */
export const LONG_STEP_SECONDS = 60;

/** One measurement: x and a noisy y = 2x + 1. */
export interface Sample {
  readonly x: number;
  readonly y: number;
}

/** Least-squares sufficient statistics. */
export interface Features {
  readonly n: number;
  readonly sx: number;
  readonly sy: number;
  readonly sxx: number;
  readonly sxy: number;
}

/** What one experiment produced. */
export interface Finding {
  readonly method: string;
  readonly slope: number;
  readonly intercept: number;
  readonly steps: number;
}

function signalOrNever(): AbortSignal | undefined {
  try {
    return taskContext().signal;
  } catch {
    return undefined; // called directly, outside the runtime
  }
}

/** Sleeps `ms`, or rejects as soon as `signal` aborts: the cooperative way to stop. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function statistics(samples: readonly Sample[]): Features {
  return samples.reduce((acc, { x, y }) => ({ n: acc.n + 1, sx: acc.sx + x, sy: acc.sy + y, sxx: acc.sxx + x * x, sxy: acc.sxy + x * y }), {
    n: 0,
    sx: 0,
    sy: 0,
    sxx: 0,
    sxy: 0,
  });
}

/** Gradient descent on the squared error in small steps; checks the signal between steps. */
async function fitSlowly(method: string, samples: readonly Sample[], seconds: number): Promise<Finding> {
  const signal = signalOrNever();
  const { n, sx, sy, sxx, sxy } = statistics(samples);
  let slope = 0;
  let intercept = 0;
  const steps = seconds * 10;
  for (let step = 0; step < steps; step++) {
    for (let epoch = 0; epoch < 50; epoch++) {
      slope -= (0.5 * 2 * (slope * sxx + intercept * sx - sxy)) / n;
      intercept -= (0.5 * 2 * (slope * sx + n * intercept - sy)) / n;
    }
    await pause(100, signal);
  }
  return { method, slope, intercept, steps };
}

/** Deterministic samples of y = 2x + 1 with small noise. */
export const loadSamples = electron(function loadSamples(count: number): Sample[] {
  let state = 42;
  return Array.from({ length: count }, (_, index) => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    const x = index / count;
    return { x, y: 2 * x + 1 + (state / 2 ** 32 - 0.5) * 0.05 };
  });
});

/** The sufficient statistics, computed as a Batch job. */
export const featurize = electron({ executor: batch, timeoutSeconds: 900 }, function featurize(samples: Sample[]): Features {
  return statistics(samples);
});

/** A Bell pair on Braket: the counts should be about half 00 and half 11. */
export const bellPair = electron({ executor: braket, timeoutSeconds: 600 }, function bellPair(): string {
  return 'OPENQASM 3;\nqubit[2] q;\nbit[2] c;\nh q[0];\ncnot q[0], q[1];\nc = measure q;';
});

/** A long fit on Lambda that stops when its signal aborts. */
export const simulate = electron({ timeoutSeconds: 300, graceSeconds: 2 }, function simulate(samples: Sample[]): Promise<Finding> {
  return fitSlowly('simulate', samples, LONG_STEP_SECONDS);
});

/** A long fit on Batch; `TerminateJob`'s SIGTERM aborts its signal. */
export const anneal = electron({ executor: batch, timeoutSeconds: 900, graceSeconds: 2 }, function anneal(samples: Sample[]): Promise<Finding> {
  return fitSlowly('anneal', samples, LONG_STEP_SECONDS);
});

/** A three-qubit GHZ state on Braket. */
export const sampleGhz = electron({ executor: braket, timeoutSeconds: 600 }, function sampleGhz(): string {
  return 'OPENQASM 3;\nqubit[3] q;\nbit[3] c;\nh q[0];\ncnot q[0], q[1];\ncnot q[1], q[2];\nc = measure q;';
});

/** Joins the three experiments. */
export const combine = electron(function combine(simulated: Finding, annealed: Finding, ghz: Record<string, number>): { best: Finding; ghzStates: string[] } {
  const best = Math.abs(simulated.slope - 2) <= Math.abs(annealed.slope - 2) ? simulated : annealed;
  return { best, ghzStates: Object.keys(ghz).sort() };
});

/** The experiments, as a sublattice: its graph is built at run time from the samples. */
export const experiments = lattice({ name: 'demo-experiments', description: 'three experiments on Lambda, Batch and Braket' }, (samples: Sample[]) =>
  combine(simulate(samples), anneal(samples), sampleGhz()),
);

/** The final summary. */
export const summarize = electron(function summarize(features: Features, bell: Record<string, number>, study: { best: Finding }): string {
  return `fit y = ${study.best.slope.toFixed(2)}x + ${study.best.intercept.toFixed(2)} on ${features.n} samples; Bell counts ${JSON.stringify(bell)}`;
});

/** The demo pipeline: `demo-pipeline(samples)`. */
export const demoPipeline = lattice(
  { name: 'demo-pipeline', description: 'Lambda, Batch and Braket nodes and a sublattice' },
  (samples: number) => {
    const data = loadSamples(samples);
    const features = featurize(data);
    const bell = bellPair();
    const study = sublattice(experiments)(data);
    return summarize(features, bell, study);
  },
);
