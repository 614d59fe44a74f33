/**
 * A small OpenQASM 3 state-vector simulator for local Braket quantum tasks.
 *
 * It covers the gate-model subset Braket's simulators are usually fed: `OPENQASM 3;`,
 * `include "stdgates.inc";`, qubit and bit declarations (`qubit[n] q;`, `bit[n] c;`, and the
 * OpenQASM 2 `qreg`/`creg` forms), the standard one-, two- and three-qubit gates with angle
 * expressions in `pi`, and end-of-circuit measurement (`c = measure q;`,
 * `c[i] = measure q[j];`, `measure q;`). As on Braket's simulators, a program without any
 * measurement measures every qubit, and a gate after a measurement is rejected.
 *
 * Bitstrings follow Braket: the first character is the first measured qubit.
 */
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** A program the simulator cannot run; names the line, as a compiler would. */
export class OpenQasmError extends ValenceError {
  override readonly name = 'OpenQasmError';
  constructor(
    message: string,
    /** 1-based source line of the offending statement. */
    readonly line: number,
  ) {
    super(ErrorCode.LOCAL_OPENQASM_INVALID, `line ${line}: ${message}`);
  }
}

/** Most qubits the local simulator accepts (a state vector of 2^20 amplitudes, 16 MiB). */
export const MAX_QUBITS = 20;

/** A 2×2 complex matrix: [re00, im00, re01, im01, re10, im10, re11, im11]. */
type Matrix2 = readonly [number, number, number, number, number, number, number, number];

/** One operation of a parsed circuit, on global qubit indices. */
export type CircuitOperation =
  | { readonly kind: 'unitary'; readonly gate: string; readonly target: number; readonly controls: readonly number[]; readonly matrix: Matrix2 }
  | { readonly kind: 'swap'; readonly gate: string; readonly a: number; readonly b: number; readonly controls: readonly number[] };

/** A parsed program. */
export interface Circuit {
  readonly qubitCount: number;
  readonly operations: readonly CircuitOperation[];
  /** Qubits measured, in the order first measured; every qubit when the program measures none. */
  readonly measuredQubits: readonly number[];
}

/** What one run of a circuit produced. */
export interface SimulationResult {
  readonly measuredQubits: readonly number[];
  /** One row per shot, one 0/1 entry per measured qubit. */
  readonly measurements: readonly (readonly number[])[];
  /** Observed frequency of each bitstring (exact probabilities when shots is 0). */
  readonly measurementProbabilities: Readonly<Record<string, number>>;
  /** Exact probability of each bitstring with non-negligible weight. */
  readonly exactProbabilities: Readonly<Record<string, number>>;
}

// ---- gates ----------------------------------------------------------------------------------

const S = Math.SQRT1_2;
const fixed = (m: Matrix2) => (): Matrix2 => m;
const phase = (theta: number): Matrix2 => [1, 0, 0, 0, 0, 0, Math.cos(theta), Math.sin(theta)];

interface GateSpec {
  readonly params: number;
  /** Control qubits that come first in the operand list. */
  readonly controls: number;
  /** 'swap' for (controlled) swaps, otherwise the target's 2×2 matrix. */
  readonly body: 'swap' | ((params: readonly number[]) => Matrix2);
}

const X: Matrix2 = [0, 0, 1, 0, 1, 0, 0, 0];
const Y: Matrix2 = [0, 0, 0, -1, 0, 1, 0, 0];
const Z: Matrix2 = [1, 0, 0, 0, 0, 0, -1, 0];
const H: Matrix2 = [S, 0, S, 0, S, 0, -S, 0];

function rx(t: number): Matrix2 {
  const c = Math.cos(t / 2);
  const s = Math.sin(t / 2);
  return [c, 0, 0, -s, 0, -s, c, 0];
}
function ry(t: number): Matrix2 {
  const c = Math.cos(t / 2);
  const s = Math.sin(t / 2);
  return [c, 0, -s, 0, s, 0, c, 0];
}
function rz(t: number): Matrix2 {
  const c = Math.cos(t / 2);
  const s = Math.sin(t / 2);
  return [c, -s, 0, 0, 0, 0, c, s];
}
/** OpenQASM 3's U(θ, φ, λ). */
function u3(t: number, p: number, l: number): Matrix2 {
  const c = Math.cos(t / 2);
  const s = Math.sin(t / 2);
  return [c, 0, -Math.cos(l) * s, -Math.sin(l) * s, Math.cos(p) * s, Math.sin(p) * s, Math.cos(p + l) * c, Math.sin(p + l) * c];
}

const GATES: Readonly<Record<string, GateSpec>> = (() => {
  const one = (body: (p: readonly number[]) => Matrix2, params = 0): GateSpec => ({ params, controls: 0, body });
  const table: Record<string, GateSpec> = {
    id: one(fixed([1, 0, 0, 0, 0, 0, 1, 0])),
    h: one(fixed(H)),
    x: one(fixed(X)),
    y: one(fixed(Y)),
    z: one(fixed(Z)),
    s: one(fixed([1, 0, 0, 0, 0, 0, 0, 1])),
    sdg: one(fixed([1, 0, 0, 0, 0, 0, 0, -1])),
    t: one(fixed(phase(Math.PI / 4))),
    tdg: one(fixed(phase(-Math.PI / 4))),
    v: one(fixed([0.5, 0.5, 0.5, -0.5, 0.5, -0.5, 0.5, 0.5])),
    vi: one(fixed([0.5, -0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -0.5])),
    sx: one(fixed([0.5, 0.5, 0.5, -0.5, 0.5, -0.5, 0.5, 0.5])),
    rx: one(([t]) => rx(t!), 1),
    ry: one(([t]) => ry(t!), 1),
    rz: one(([t]) => rz(t!), 1),
    phaseshift: one(([t]) => phase(t!), 1),
    p: one(([t]) => phase(t!), 1),
    U: one(([t, p, l]) => u3(t!, p!, l!), 3),
    u3: one(([t, p, l]) => u3(t!, p!, l!), 3),
    cnot: { params: 0, controls: 1, body: fixed(X) },
    cy: { params: 0, controls: 1, body: fixed(Y) },
    cz: { params: 0, controls: 1, body: fixed(Z) },
    ch: { params: 0, controls: 1, body: fixed(H) },
    cphaseshift: { params: 1, controls: 1, body: ([t]) => phase(t!) },
    swap: { params: 0, controls: 0, body: 'swap' },
    ccnot: { params: 0, controls: 2, body: fixed(X) },
    cswap: { params: 0, controls: 1, body: 'swap' },
  };
  table.i = table.id!;
  table.si = table.sdg!;
  table.ti = table.tdg!;
  table.cx = table.cnot!;
  table.ccx = table.ccnot!;
  table.toffoli = table.ccnot!;
  table.cp = table.cphaseshift!;
  return table;
})();

/** Gate names the simulator understands. */
export const SUPPORTED_GATES: readonly string[] = Object.keys(GATES).sort();

// ---- angle expressions ----------------------------------------------------------------------

const CONSTANTS: Readonly<Record<string, number>> = { pi: Math.PI, π: Math.PI, tau: 2 * Math.PI, τ: 2 * Math.PI, euler: Math.E, ℇ: Math.E };
const FUNCTIONS: Readonly<Record<string, (x: number) => number>> = {
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  arcsin: Math.asin,
  arccos: Math.acos,
  arctan: Math.atan,
  sqrt: Math.sqrt,
  exp: Math.exp,
  ln: Math.log,
};

/** Evaluates an OpenQASM angle expression (numbers, pi/tau/euler, + - * / **, parentheses). */
export function evaluateExpression(text: string, line: number): number {
  const tokens = text.match(/\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\*\*|[A-Za-z_πτℇ][A-Za-z0-9_]*|[-+*/()]|\S/gu) ?? [];
  let pos = 0;
  const fail = (message: string): never => {
    throw new OpenQasmError(`${message} in expression '${text.trim()}'`, line);
  };
  const peek = (): string | undefined => tokens[pos];
  const next = (): string | undefined => tokens[pos++];

  function primary(): number {
    const token = next();
    if (token === undefined) return fail('unexpected end');
    if (token === '(') {
      const value = sum();
      if (next() !== ')') fail("missing ')'");
      return value;
    }
    if (token === '-') return -power();
    if (token === '+') return power();
    if (/^[\d.]/.test(token)) {
      const value = Number(token);
      if (!Number.isFinite(value)) fail(`bad number '${token}'`);
      return value;
    }
    const constant = CONSTANTS[token];
    if (constant !== undefined) return constant;
    const fn = FUNCTIONS[token];
    if (fn !== undefined) {
      if (next() !== '(') fail(`'${token}' needs '('`);
      const value = sum();
      if (next() !== ')') fail("missing ')'");
      return fn(value);
    }
    return fail(`unknown identifier '${token}'`);
  }
  function power(): number {
    const base = primary();
    if (peek() === '**') {
      next();
      return base ** power();
    }
    return base;
  }
  function product(): number {
    let value = power();
    for (let op = peek(); op === '*' || op === '/'; op = peek()) {
      next();
      const rhs = power();
      value = op === '*' ? value * rhs : value / rhs;
    }
    return value;
  }
  function sum(): number {
    let value = product();
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      next();
      const rhs = product();
      value = op === '+' ? value + rhs : value - rhs;
    }
    return value;
  }

  if (tokens.length === 0) fail('empty expression');
  const value = sum();
  if (pos !== tokens.length) fail(`unexpected '${tokens[pos]}'`);
  if (!Number.isFinite(value)) fail('not a finite number');
  return value;
}

// ---- parser ---------------------------------------------------------------------------------

interface Register {
  readonly offset: number;
  readonly size: number;
  /** Declared as `qubit q;` / `bit c;` (a single element, not an array). */
  readonly scalar: boolean;
}

interface Statement {
  readonly text: string;
  readonly line: number;
}

/** Strips comments and pragmas (keeping line numbers) and splits into `;`-terminated statements. */
function statements(source: string): Statement[] {
  let text = source.replace(/\/\*[\s\S]*?\*\//g, (block) => block.replace(/[^\n]/g, ' '));
  text = text.replace(/\/\/[^\n]*/g, '');
  text = text.replace(/^[ \t]*#pragma[^\n]*/gm, '');
  const out: Statement[] = [];
  let line = 1;
  let start = 0;
  let startLine = 1;
  let seenContent = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (!seenContent && !/\s/.test(ch)) {
      seenContent = true;
      startLine = line;
    }
    if (ch === '{' || ch === '}') {
      throw new OpenQasmError('blocks ({ }) — gate definitions, loops, conditionals — are not supported', line);
    }
    if (ch === ';') {
      out.push({ text: text.slice(start, i).trim(), line: startLine });
      start = i + 1;
      seenContent = false;
    }
    if (ch === '\n') line++;
  }
  const rest = text.slice(start).trim();
  if (rest !== '') throw new OpenQasmError(`missing ';' after '${rest.split('\n')[0]}'`, startLine);
  return out;
}

/** Parses an OpenQASM 3 program into a circuit; throws {@link OpenQasmError} naming the line. */
export function parseOpenQasm(source: string): Circuit {
  const qubitRegisters = new Map<string, Register>();
  const bitRegisters = new Map<string, Register>();
  let qubitCount = 0;
  let physicalQubits = false;
  const operations: CircuitOperation[] = [];
  const measured: number[] = [];
  const measuredSet = new Set<number>();
  let index = 0;

  const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

  function declare(map: Map<string, Register>, name: string, size: number, scalar: boolean, line: number, isQubit: boolean): void {
    if (!identifier.test(name)) throw new OpenQasmError(`invalid register name '${name}'`, line);
    if (qubitRegisters.has(name) || bitRegisters.has(name)) throw new OpenQasmError(`'${name}' is already declared`, line);
    if (!Number.isInteger(size) || size < 1) throw new OpenQasmError(`invalid register size for '${name}'`, line);
    if (isQubit) {
      if (physicalQubits) throw new OpenQasmError('cannot mix physical qubits ($n) with qubit declarations', line);
      map.set(name, { offset: qubitCount, size, scalar });
      qubitCount += size;
      if (qubitCount > MAX_QUBITS) {
        throw new OpenQasmError(`${qubitCount} qubits exceed the local simulator's limit of ${MAX_QUBITS}`, line);
      }
    } else {
      let bits = 0;
      for (const r of bitRegisters.values()) bits += r.size;
      map.set(name, { offset: bits, size, scalar });
    }
  }

  function sizeOf(text: string, line: number): number {
    const size = evaluateExpression(text, line);
    if (!Number.isInteger(size)) throw new OpenQasmError(`register size must be an integer, got '${text}'`, line);
    return size;
  }

  /** Resolves a qubit operand to its global indices (a whole register gives several). */
  function qubits(operand: string, line: number): number[] {
    const text = operand.trim();
    const physical = /^\$(\d+)$/.exec(text);
    if (physical) {
      if (qubitRegisters.size > 0) throw new OpenQasmError('cannot mix physical qubits ($n) with qubit declarations', line);
      physicalQubits = true;
      const q = Number(physical[1]);
      if (q + 1 > MAX_QUBITS) throw new OpenQasmError(`qubit $${q} exceeds the local simulator's limit of ${MAX_QUBITS}`, line);
      qubitCount = Math.max(qubitCount, q + 1);
      return [q];
    }
    const indexed = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*([^\]]+?)\s*\])?$/.exec(text);
    if (!indexed) throw new OpenQasmError(`invalid qubit operand '${text}'`, line);
    const reg = qubitRegisters.get(indexed[1]!);
    if (reg === undefined) {
      if (bitRegisters.has(indexed[1]!)) throw new OpenQasmError(`'${indexed[1]}' is a bit register, not qubits`, line);
      throw new OpenQasmError(`undeclared qubit register '${indexed[1]}'`, line);
    }
    if (indexed[2] === undefined) return Array.from({ length: reg.size }, (_, i) => reg.offset + i);
    if (reg.scalar) throw new OpenQasmError(`'${indexed[1]}' is a single qubit and cannot be indexed`, line);
    const i = evaluateExpression(indexed[2], line);
    if (!Number.isInteger(i) || i < 0 || i >= reg.size) {
      throw new OpenQasmError(`index ${indexed[2]} out of range for '${indexed[1]}' (size ${reg.size})`, line);
    }
    return [reg.offset + i];
  }

  /** Width of a classical target (`c` or `c[i]`), validating it exists. */
  function bitsWidth(target: string, line: number): number {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*([^\]]+?)\s*\])?$/.exec(target.trim());
    if (!m) throw new OpenQasmError(`invalid measurement target '${target.trim()}'`, line);
    const reg = bitRegisters.get(m[1]!);
    if (reg === undefined) throw new OpenQasmError(`undeclared bit register '${m[1]}'`, line);
    if (m[2] === undefined) return reg.size;
    const i = evaluateExpression(m[2], line);
    if (!Number.isInteger(i) || i < 0 || i >= reg.size) {
      throw new OpenQasmError(`index ${m[2]} out of range for '${m[1]}' (size ${reg.size})`, line);
    }
    return 1;
  }

  function measure(operand: string, line: number, target?: string): void {
    const qs = qubits(operand, line);
    if (target !== undefined) {
      const width = bitsWidth(target, line);
      if (width !== qs.length) {
        throw new OpenQasmError(`cannot store ${qs.length} measured qubit(s) in ${width} bit(s)`, line);
      }
    }
    for (const q of qs) {
      if (!measuredSet.has(q)) {
        measuredSet.add(q);
        measured.push(q);
      }
    }
  }

  /** Splits on top-level commas (angle expressions may hold parentheses, not commas). */
  function splitArgs(text: string): string[] {
    return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }

  function gate(statement: string, line: number): void {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^]*)\))?\s*(.*)$/.exec(statement);
    if (!m) throw new OpenQasmError(`cannot parse '${statement}'`, line);
    const name = m[1]!;
    if (/@/.test(statement)) throw new OpenQasmError('gate modifiers (ctrl @, inv @, pow @) are not supported', line);
    const spec = GATES[name];
    if (spec === undefined) throw new OpenQasmError(`unknown gate or statement '${name}'`, line);
    const params = m[2] === undefined ? [] : splitArgs(m[2]).map((p) => evaluateExpression(p, line));
    if (params.length !== spec.params) {
      throw new OpenQasmError(`gate '${name}' takes ${spec.params} parameter(s), got ${params.length}`, line);
    }
    const operandTexts = splitArgs(m[3] ?? '');
    const arity = spec.body === 'swap' ? spec.controls + 2 : spec.controls + 1;
    if (operandTexts.length !== arity) {
      throw new OpenQasmError(`gate '${name}' acts on ${arity} qubit(s), got ${operandTexts.length}`, line);
    }
    const operands = operandTexts.map((o) => qubits(o, line));
    // Broadcast over whole registers, which must agree in size.
    const width = Math.max(...operands.map((o) => o.length));
    for (const o of operands) {
      if (o.length !== 1 && o.length !== width) throw new OpenQasmError(`registers of different sizes in '${name}'`, line);
    }
    for (let k = 0; k < width; k++) {
      const qs = operands.map((o) => (o.length === 1 ? o[0]! : o[k]!));
      if (new Set(qs).size !== qs.length) throw new OpenQasmError(`gate '${name}' uses a qubit twice`, line);
      for (const q of qs) {
        if (measuredSet.has(q)) {
          throw new OpenQasmError(`gate '${name}' on a qubit after it was measured (mid-circuit measurement is not supported)`, line);
        }
      }
      const controls = qs.slice(0, spec.controls);
      if (spec.body === 'swap') {
        operations.push({ kind: 'swap', gate: name, a: qs[spec.controls]!, b: qs[spec.controls + 1]!, controls });
      } else {
        operations.push({ kind: 'unitary', gate: name, target: qs[spec.controls]!, controls, matrix: spec.body(params) });
      }
    }
  }

  for (const { text, line } of statements(source)) {
    if (text === '') continue;
    const s = text.replace(/\s+/g, ' ');
    index++;
    let m: RegExpExecArray | null;
    if ((m = /^OPENQASM (\S+)$/.exec(s))) {
      if (index !== 1) throw new OpenQasmError('OPENQASM must be the first statement', line);
      if (!/^3(\.\d+)?$/.test(m[1]!)) throw new OpenQasmError(`unsupported OpenQASM version ${m[1]} (expected 3)`, line);
    } else if ((m = /^include "([^"]+)"$/.exec(s))) {
      if (m[1] !== 'stdgates.inc') throw new OpenQasmError(`cannot include '${m[1]}' (only "stdgates.inc")`, line);
    } else if ((m = /^qubit\s*\[([^\]]+)\] ?(\S+)$/.exec(s))) {
      declare(qubitRegisters, m[2]!, sizeOf(m[1]!, line), false, line, true);
    } else if ((m = /^qubit (\S+)$/.exec(s))) {
      declare(qubitRegisters, m[1]!, 1, true, line, true);
    } else if ((m = /^qreg (\w+) ?\[([^\]]+)\]$/.exec(s))) {
      declare(qubitRegisters, m[1]!, sizeOf(m[2]!, line), false, line, true);
    } else if ((m = /^bit\s*\[([^\]]+)\] ?(\S+)$/.exec(s))) {
      declare(bitRegisters, m[2]!, sizeOf(m[1]!, line), false, line, false);
    } else if ((m = /^bit (\S+)$/.exec(s))) {
      declare(bitRegisters, m[1]!, 1, true, line, false);
    } else if ((m = /^creg (\w+) ?\[([^\]]+)\]$/.exec(s))) {
      declare(bitRegisters, m[1]!, sizeOf(m[2]!, line), false, line, false);
    } else if ((m = /^(.+?) ?= ?measure (.+)$/.exec(s))) {
      measure(m[2]!, line, m[1]);
    } else if ((m = /^measure (.+?) ?-> ?(.+)$/.exec(s))) {
      measure(m[1]!, line, m[2]);
    } else if ((m = /^measure (.+)$/.exec(s))) {
      measure(m[1]!, line);
    } else if (/^barrier\b/.test(s)) {
      // A scheduling hint; nothing to simulate.
    } else if (/^(input|output|const|int|uint|float|angle|bool|gate|def|for|while|if|reset|let|box|delay|cal|defcal)\b/.test(s)) {
      throw new OpenQasmError(`'${s.split(' ')[0]}' statements are not supported by the local simulator`, line);
    } else {
      gate(s, line);
    }
  }
  if (qubitCount === 0) throw new OpenQasmError('the program declares no qubits', 1);
  const measuredQubits = measured.length > 0 ? measured : Array.from({ length: qubitCount }, (_, i) => i);
  return { qubitCount, operations, measuredQubits };
}

// ---- simulation -----------------------------------------------------------------------------

/** Runs the circuit on |0…0⟩ and returns the probability of every basis state (qubit k ↔ bit k). */
export function stateProbabilities(circuit: Circuit): Float64Array {
  const size = 2 ** circuit.qubitCount;
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  re[0] = 1;
  for (const op of circuit.operations) {
    let controlMask = 0;
    for (const c of op.controls) controlMask |= 1 << c;
    if (op.kind === 'unitary') {
      const bit = 1 << op.target;
      const [ar, ai, br, bi, cr, ci, dr, di] = op.matrix;
      for (let i = 0; i < size; i++) {
        if ((i & bit) !== 0 || (i & controlMask) !== controlMask) continue;
        const j = i | bit;
        const xr = re[i]!;
        const xi = im[i]!;
        const yr = re[j]!;
        const yi = im[j]!;
        re[i] = ar * xr - ai * xi + br * yr - bi * yi;
        im[i] = ar * xi + ai * xr + br * yi + bi * yr;
        re[j] = cr * xr - ci * xi + dr * yr - di * yi;
        im[j] = cr * xi + ci * xr + dr * yi + di * yr;
      }
    } else {
      const bitA = 1 << op.a;
      const bitB = 1 << op.b;
      for (let i = 0; i < size; i++) {
        if ((i & bitA) === 0 || (i & bitB) !== 0 || (i & controlMask) !== controlMask) continue;
        const j = i ^ bitA ^ bitB;
        const tr = re[i]!;
        const ti = im[i]!;
        re[i] = re[j]!;
        im[i] = im[j]!;
        re[j] = tr;
        im[j] = ti;
      }
    }
  }
  const probabilities = new Float64Array(size);
  for (let i = 0; i < size; i++) probabilities[i] = re[i]! * re[i]! + im[i]! * im[i]!;
  return probabilities;
}

/** Options of {@link runOpenQasm}. */
export interface RunOptions {
  /** Number of samples; 0 gives exact probabilities only. */
  readonly shots: number;
  /** Uniform [0, 1) source, injectable for reproducible runs. @default Math.random */
  readonly random?: () => number;
}

function bitstring(key: number, width: number): string {
  let s = '';
  for (let k = 0; k < width; k++) s += (key >> k) & 1 ? '1' : '0';
  return s;
}

/** Parses, simulates and samples an OpenQASM 3 program. */
export function runOpenQasm(source: string, options: RunOptions): SimulationResult {
  const circuit = parseOpenQasm(source);
  return simulateCircuit(circuit, options);
}

/** Simulates and samples a parsed circuit. */
export function simulateCircuit(circuit: Circuit, options: RunOptions): SimulationResult {
  const random = options.random ?? Math.random;
  const probabilities = stateProbabilities(circuit);
  const width = circuit.measuredQubits.length;
  // Marginal over the measured qubits; key bit k ↔ k-th measured qubit.
  const marginal = new Map<number, number>();
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i]!;
    if (p < 1e-15) continue;
    let key = 0;
    circuit.measuredQubits.forEach((q, k) => {
      if ((i >> q) & 1) key |= 1 << k;
    });
    marginal.set(key, (marginal.get(key) ?? 0) + p);
  }
  const keys = [...marginal.keys()].sort((a, b) => a - b);
  const exactProbabilities: Record<string, number> = {};
  for (const key of keys) {
    const p = marginal.get(key)!;
    if (p > 1e-12) exactProbabilities[bitstring(key, width)] = p;
  }

  const cumulative: number[] = [];
  let total = 0;
  for (const key of keys) {
    total += marginal.get(key)!;
    cumulative.push(total);
  }
  const measurements: number[][] = [];
  const counts = new Map<string, number>();
  for (let shot = 0; shot < options.shots; shot++) {
    const r = random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    const key = keys[lo]!;
    const row = Array.from({ length: width }, (_, k) => (key >> k) & 1);
    measurements.push(row);
    const s = row.join('');
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const measurementProbabilities: Record<string, number> =
    options.shots > 0
      ? Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => [s, n / options.shots]))
      : exactProbabilities;
  return { measuredQubits: [...circuit.measuredQubits], measurements, measurementProbabilities, exactProbabilities };
}
