// A user's workflows module, written as a user writes it: TypeScript, importing `valence` by
// name. `cdk synth` turns each exported lattice into a state machine.
import { BatchExecutor, electron, lattice } from 'valence';

const square = electron(function square(x: number): number {
  return x * x;
});
const sum = electron(function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
});
const render = electron({ executor: new BatchExecutor({ jobQueue: 'render-queue', vcpus: 1, memoryMiB: 2048 }) }, function render(total: number): string {
  return `total=${total}`;
});

/** Σ x² over `xs`, on Lambda. */
export const sumOfSquares = lattice({ name: 'sum-of-squares' }, (xs: number[]) => sum(xs.map((x) => square(x))));

/** The same, then a Batch job renders it (so the job image is staged). */
export const report = lattice({ name: 'report' }, (xs: number[]) => render(sum(xs.map((x) => square(x)))));
