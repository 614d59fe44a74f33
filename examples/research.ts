/**
 * A research-style pipeline: generate a dataset, featurize its shards in parallel (a fan-out
 * as wide as an argument), join the features, sweep hyperparameters in a sublattice, train the final model on AWS
 * Batch, prepare a Bell-state circuit for Amazon Braket, and write a report.
 *
 * Every electron is a real function that computes something small, so the pipeline runs the
 * same on the embedded local cloud as on AWS.
 */
import { BatchExecutor, BraketExecutor, electron, lattice, sublattice, taskContext } from '../sdk/index.ts';
import type { MeasurementCounts } from '../sdk/index.ts';

/** Learning rates the sweep tries. */
export const LEARNING_RATES = [0.01, 0.05, 0.1] as const;

const batch = new BatchExecutor({ jobQueue: 'valence-default', vcpus: 1, memoryMiB: 2048 });
const braket = new BraketExecutor({ deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1', shots: 100 });

/** A sample of the line y = 3x + 1 with deterministic noise. */
export interface Sample {
  readonly x: number;
  readonly y: number;
}

/** Deterministic samples of y = 3x + 1 plus small noise (a linear congruential generator, seeded). */
export const generateDataset = electron(function generateDataset(size: number, seed: number): Sample[] {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  return Array.from({ length: size }, (_, index) => {
    const x = index / size;
    return { x, y: 3 * x + 1 + (next() - 0.5) * 0.1 };
  });
});

/** Shard `index` of `count`: every count-th sample. */
export const shard = electron(function shard(samples: Sample[], index: number, count: number): Sample[] {
  return samples.filter((_, position) => position % count === index);
});

/** Sufficient statistics for least squares on one shard. */
export interface Features {
  readonly n: number;
  readonly sx: number;
  readonly sy: number;
  readonly sxx: number;
  readonly sxy: number;
}

/** Least-squares sufficient statistics of one shard. */
export const featurize = electron(function featurize(samples: Sample[]): Features {
  return samples.reduce(
    (acc, { x, y }) => ({ n: acc.n + 1, sx: acc.sx + x, sy: acc.sy + y, sxx: acc.sxx + x * x, sxy: acc.sxy + x * y }),
    { n: 0, sx: 0, sy: 0, sxx: 0, sxy: 0 },
  );
});

/** The join: sums the shards' statistics. */
export const combineFeatures = electron(function combineFeatures(parts: Features[]): Features {
  return parts.reduce((acc, part) => ({
    n: acc.n + part.n,
    sx: acc.sx + part.sx,
    sy: acc.sy + part.sy,
    sxx: acc.sxx + part.sxx,
    sxy: acc.sxy + part.sxy,
  }));
});

/**
 * Featurize `shards` shards and join them. The body uses `shards` as a value (the fan-out's
 * width), so this lattice is argument-shaped: its graph is built from the real arguments each
 * time it runs (here as a sublattice, from the dataset and the width the pipeline passes in).
 */
export const features = lattice({ name: 'research-features', description: 'featurize the shards, then join' }, (samples: Sample[], shards: number) =>
  combineFeatures(Array.from({ length: shards }, (_, index) => featurize(shard(samples, index, shards)))),
);

/** A fitted line. */
export interface Model {
  readonly slope: number;
  readonly intercept: number;
  readonly learningRate: number;
  readonly loss: number;
}

function meanSquaredError(features: Features, slope: number, intercept: number): number {
  // Σ(y - (a x + b))² expanded over the sufficient statistics; Σy² is constant in (a, b), so it is left out.
  const { n, sx, sy, sxx, sxy } = features;
  return (slope * slope * sxx + 2 * slope * intercept * sx + n * intercept * intercept - 2 * slope * sxy - 2 * intercept * sy) / n;
}

/** Gradient descent on the squared error, from the statistics alone. Honors cancellation between epochs. */
function descend(features: Features, learningRate: number, epochs: number, signal?: AbortSignal): Model {
  let slope = 0;
  let intercept = 0;
  const { n, sx, sy, sxx, sxy } = features;
  for (let epoch = 0; epoch < epochs; epoch++) {
    signal?.throwIfAborted();
    const gradSlope = (2 * (slope * sxx + intercept * sx - sxy)) / n;
    const gradIntercept = (2 * (slope * sx + n * intercept - sy)) / n;
    slope -= learningRate * gradSlope;
    intercept -= learningRate * gradIntercept;
  }
  return { slope, intercept, learningRate, loss: meanSquaredError(features, slope, intercept) };
}

function currentSignal(): AbortSignal | undefined {
  try {
    return taskContext().signal;
  } catch {
    return undefined; // called directly (a unit test), not by the runtime
  }
}

/** A short training run for the sweep (inline on Lambda). */
export const trialFit = electron({ timeoutSeconds: 60 }, function trialFit(features: Features, learningRate: number): Model {
  return descend(features, learningRate, 200, currentSignal());
});

/** The trial with the lowest loss. */
export const pickBest = electron(function pickBest(models: Model[]): Model {
  return models.reduce((best, model) => (model.loss < best.loss ? model : best));
});

/** Hyperparameter sweep: one trial per learning rate (fan-out), then a join. Runs as a sublattice. */
export const sweep = lattice({ name: 'research-sweep', description: 'learning-rate sweep' }, (features: Features) =>
  pickBest(LEARNING_RATES.map((rate) => trialFit(features, rate))),
);

/** The final, long training run: on AWS Batch. */
export const trainFinal = electron(
  { executor: batch, timeoutSeconds: 3600, retries: 1 },
  function trainFinal(features: Features, best: Model): Model {
    return descend(features, best.learningRate, 5000, currentSignal());
  },
);

/**
 * A Bell-pair circuit in OpenQASM 3. On Braket the electron returns the program and the node's
 * output is the quantum task's measurement counts (ideally only `00` and `11`).
 */
export const bellCircuit = electron({ executor: braket, timeoutSeconds: 600 }, function bellCircuit(): string {
  return ['OPENQASM 3;', 'qubit[2] q;', 'bit[2] c;', 'h q[0];', 'cnot q[0], q[1];', 'c = measure q;'].join('\n');
});

/** The final report. */
export const report = electron(function report(model: Model, counts: MeasurementCounts, samples: number): string {
  const shots = Object.values(counts).reduce((sum, count) => sum + count, 0);
  const correlated = (counts['00'] ?? 0) + (counts['11'] ?? 0);
  const fraction = shots === 0 ? 0 : correlated / shots;
  return `fit y = ${model.slope.toFixed(2)}x + ${model.intercept.toFixed(2)} on ${samples} samples (lr ${model.learningRate}); Bell pair correlated in ${(fraction * 100).toFixed(0)}% of ${shots} shots`;
});

/**
 * The research pipeline: `research(size, seed, shards)`. It passes `shards` on without using
 * its value, so it stays static (one compiled state machine); the fan-out it sets the width of
 * is built at run time inside the `research-features` sublattice.
 */
export const research = lattice(
  { name: 'research', description: 'fan-out featurization as wide as an argument, a sweep sublattice, Batch training and a Braket circuit' },
  (size: number, seed: number, shards: number) => {
    const samples = generateDataset(size, seed);
    const combined = sublattice(features)(samples, shards);
    const best = sublattice(sweep)(combined);
    const model = trainFinal(combined, best);
    const counts = bellCircuit();
    return { model, report: report(model, counts, size) };
  },
);
