// The local workflows again, in TypeScript: what `valence local --workflows` loads through tsx.
// An ES module (.mts): the app's package.json, as `cdk init` writes it, has no "type": "module".
import { electron, lattice } from 'valence';

const square = electron(function square(x: number): number {
  return x * x;
});
const add = electron(function add(a: number, b: number): number {
  return a + b;
});

export const sumOfSquares = lattice({ name: 'sum-of-squares' }, (x: number, y: number) => add(square(x), square(y)));
export const tsOnly = lattice({ name: 'ts-only' }, (x: number) => square(x));
