// A user's workflows module, written as a user writes it: TypeScript, importing `valence` by
// name. `cdk synth` turns each exported lattice into a state machine.
import { BatchExecutor, electron, lattice } from 'valence';

const square = electron(function square(x: number): number {
  return x * x;
});
const add = electron(function add(a: number, b: number): number {
  return a + b;
});
const render = electron({ executor: new BatchExecutor({ jobQueue: 'render-queue', vcpus: 1, memoryMiB: 2048 }) }, function render(total: number): string {
  return `total=${total}`;
});

/** x² + y², on Lambda. */
export const sumOfSquares = lattice({ name: 'sum-of-squares' }, (x: number, y: number) => add(square(x), square(y)));

/** The same, then a Batch job renders it (so the job image is staged). */
export const report = lattice({ name: 'report' }, (x: number, y: number) => render(add(square(x), square(y))));
