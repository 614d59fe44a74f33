import { describe, expect, it } from 'vitest';
import {
  OpenQasmError,
  evaluateExpression,
  parseOpenQasm,
  runOpenQasm,
} from '../../../localstack/braket/simulator.ts';

/** A small deterministic PRNG (mulberry32) so sampled counts are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function exact(source: string): Record<string, number> {
  return runOpenQasm(source, { shots: 0 }).exactProbabilities;
}

function expectProbabilities(actual: Record<string, number>, expected: Record<string, number>): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [k, p] of Object.entries(expected)) expect(actual[k]).toBeCloseTo(p, 10);
}

describe('OpenQASM 3 simulator', () => {
  it('prepares a GHZ state: only 000 and 111, half each', () => {
    const probabilities = exact(`OPENQASM 3;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
cnot q[0], q[1];
cx q[1], q[2];
c = measure q;`);
    expectProbabilities(probabilities, { '000': 0.5, '111': 0.5 });
  });

  it('flips one qubit with X; the first character of a bitstring is qubit 0', () => {
    expectProbabilities(exact('OPENQASM 3;\nqubit[2] q;\nx q[0];'), { '10': 1 });
    expectProbabilities(exact('OPENQASM 3;\nqubit[2] q;\nx q[1];'), { '01': 1 });
  });

  it('gives rotation probabilities of cos² and sin² of half the angle', () => {
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nrx(pi/2) q;'), { '0': 0.5, '1': 0.5 });
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nry(pi/3) q;'), { '0': 0.75, '1': 0.25 });
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nry(2*pi/3) q;'), { '0': 0.25, '1': 0.75 });
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nrx(pi) q;'), { '1': 1 });
    // rz only changes phase: it is invisible to a Z measurement on its own...
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nh q;\nrz(0.7) q;'), { '0': 0.5, '1': 0.5 });
    // ...but between two H gates it interferes: P(1) = sin²(θ/2).
    const p = exact('OPENQASM 3;\nqubit q;\nh q;\nrz(pi/3) q;\nh q;');
    expect(p['1']).toBeCloseTo(0.25, 10);
  });

  it('applies phase gates so that H S S H = X and H T T T T H = X', () => {
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nh q;\ns q;\ns q;\nh q;'), { '1': 1 });
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nh q;\nt q;\nt q;\nt q;\nt q;\nh q;'), { '1': 1 });
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nh q;\ns q;\nsdg q;\nh q;'), { '0': 1 });
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\nh q;\nz q;\nh q;'), { '1': 1 });
    expectProbabilities(exact('OPENQASM 3;\nqubit q;\ny q;'), { '1': 1 });
  });

  it('runs swap, cz and ccnot', () => {
    expectProbabilities(exact('OPENQASM 3;\nqubit[2] q;\nx q[0];\nswap q[0], q[1];'), { '01': 1 });
    expectProbabilities(exact('OPENQASM 3;\nqubit[2] q;\nh q;\ncz q[0], q[1];\nh q[1];'), { '00': 0.5, '11': 0.5 });
    expectProbabilities(exact('OPENQASM 3;\nqubit[3] q;\nx q[0];\nx q[1];\nccnot q[0], q[1], q[2];'), { '111': 1 });
    expectProbabilities(exact('OPENQASM 3;\nqubit[3] q;\nx q[0];\nccnot q[0], q[1], q[2];'), { '100': 1 });
  });

  it('measures only the named qubits, in the order measured', () => {
    const result = runOpenQasm(
      'OPENQASM 3;\nqubit[3] q;\nbit[2] c;\nx q[2];\nc[0] = measure q[2];\nc[1] = measure q[0];',
      { shots: 5 },
    );
    expect(result.measuredQubits).toEqual([2, 0]);
    expect(result.measurements).toEqual(Array(5).fill([1, 0]));
    expect(result.measurementProbabilities).toEqual({ '10': 1 });
  });

  it('samples shots in proportion to the probabilities', () => {
    const result = runOpenQasm('OPENQASM 3;\nqubit[2] q;\nh q[0];\ncnot q[0], q[1];\nmeasure q;', {
      shots: 2000,
      random: seeded(7),
    });
    const counts = new Map<string, number>();
    for (const row of result.measurements) counts.set(row.join(''), (counts.get(row.join('')) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(['00', '11']);
    expect(counts.get('00')!).toBeGreaterThan(900);
    expect(counts.get('11')!).toBeGreaterThan(900);
    expect(result.measurementProbabilities['00']! + result.measurementProbabilities['11']!).toBeCloseTo(1, 12);
  });

  it('accepts comments, pragmas, broadcast gates and the OpenQASM 2 register forms', () => {
    const circuit = parseOpenQasm(`OPENQASM 3.0;
// a comment
/* a block
   comment */
#pragma braket result probability
qreg q[2];
creg c[2];
h q;
barrier q;
measure q -> c;`);
    expect(circuit.qubitCount).toBe(2);
    expect(circuit.operations.map((o) => o.gate)).toEqual(['h', 'h']);
    expect(circuit.measuredQubits).toEqual([0, 1]);
  });

  it('evaluates angle expressions without eval', () => {
    expect(evaluateExpression('pi/2', 1)).toBeCloseTo(Math.PI / 2, 15);
    expect(evaluateExpression('-3*pi/4 + 0.5e-1', 1)).toBeCloseTo((-3 * Math.PI) / 4 + 0.05, 15);
    expect(evaluateExpression('2**3 - (1 + 1)', 1)).toBe(6);
    expect(evaluateExpression('cos(π)', 1)).toBeCloseTo(-1, 15);
    expect(() => evaluateExpression('process.exit(1)', 4)).toThrow(/line 4: unknown identifier 'process'/);
  });

  it('names the line of every program error', () => {
    const cases: [string, RegExp][] = [
      ['OPENQASM 3;\nqubit[2] q;\nfoo q[0];', /^line 3: unknown gate or statement 'foo'/],
      ['OPENQASM 3;\nqubit[2] q;\n\nh r[0];', /^line 4: undeclared qubit register 'r'/],
      ['OPENQASM 3;\nqubit[2] q;\nh q[2];', /^line 3: index 2 out of range for 'q'/],
      ['OPENQASM 3;\nqubit[2] q;\nh q[0]', /^line 3: missing ';'/],
      ['OPENQASM 3;\nqubit[2] q;\nmeasure q[0];\nh q[0];', /^line 4: .*after it was measured/],
      ['OPENQASM 3;\nqubit[2] q;\nrx q[0];', /^line 3: gate 'rx' takes 1 parameter/],
      ['OPENQASM 3;\nqubit[2] q;\ncnot q[0];', /^line 3: gate 'cnot' acts on 2 qubit/],
      ['OPENQASM 3;\nqubit[2] q;\nbit[1] c;\nc = measure q;', /^line 4: cannot store 2 measured qubit\(s\) in 1 bit/],
      ['OPENQASM 2.0;\nqreg q[1];', /^line 1: unsupported OpenQASM version 2.0/],
      ['OPENQASM 3;\nqubit[2] q;\nfor int i in [0:1] { h q[i]; }', /^line 3: blocks/],
      ['OPENQASM 3;\nqubit[21] q;', /^line 2: 21 qubits exceed/],
      ['OPENQASM 3;\nbit[2] c;', /^line 1: the program declares no qubits/],
    ];
    for (const [source, message] of cases) {
      let error: unknown;
      try {
        parseOpenQasm(source);
      } catch (e) {
        error = e;
      }
      expect(error, source).toBeInstanceOf(OpenQasmError);
      expect((error as OpenQasmError).message, source).toMatch(message);
      expect((error as OpenQasmError).code).toBe('LOCAL_OPENQASM_INVALID');
    }
  });
});
