// The workflows the consumer runs on the local cloud under plain `node` (no TypeScript loader).
import { appendFileSync } from 'node:fs';
import { electron, lattice } from 'valence';

const square = electron(function square(x) {
  return x * x;
});
const add = electron(function add(a, b) {
  return a + b;
});
// Appends a line every 50 ms and ignores its signal: only valence stopping the worker ends it.
const beat = electron({ graceSeconds: 1 }, function beat(file) {
  return new Promise(() => {
    setInterval(() => appendFileSync(file, `${Date.now()}\n`), 50);
  });
});

/** x² + y²: a fixed graph, so it has a state machine of its own. */
export const sumOfSquares = lattice({ name: 'sum-of-squares' }, (x, y) => add(square(x), square(y)));
export const heartbeat = lattice({ name: 'heartbeat' }, (file) => beat(file));
