/**
 * CloudFormation's intrinsic functions, evaluated the way CloudFormation evaluates them at
 * deploy time: `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split`,
 * `Fn::If` and the condition functions, `Fn::FindInMap`, `Fn::Base64`, `Fn::GetAZs`,
 * `Fn::Length`, `Fn::ToJsonString`, and `AWS::NoValue`.
 *
 * Written here rather than taken from npm: the one resolver there (`cfn-resolver-lib`) has had
 * no release since 2024, ships no types, and needs the very tables this module is given
 * (physical ids, attributes) as static input, while the local deploy learns some of them only
 * as it creates resources (an API's id). Evaluating the functions over a lookup is small.
 *
 * @module
 */
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** What an intrinsic refers to: resources, parameters, pseudo parameters, conditions, mappings. */
export interface IntrinsicScope {
  /** `Ref` of a logical id or a (pseudo) parameter. */
  ref(name: string): unknown;
  /** `Fn::GetAtt` of a resource attribute. */
  getAtt(logicalId: string, attribute: string): unknown;
  /** A named condition's value. */
  condition(name: string): boolean;
  /** `Fn::FindInMap`. */
  findInMap(map: string, topKey: string, secondKey: string): unknown;
  /** The region, for `Fn::GetAZs`. */
  readonly region: string;
}

/** A template value that cannot be evaluated (an unknown function, a bad argument). */
export class IntrinsicError extends ValenceError {
  override readonly name = 'IntrinsicError';
  constructor(message: string) {
    super(ErrorCode.LOCAL_CLOUD_INVALID_CONFIG, message);
  }
}

/** Marks a value `AWS::NoValue` removed; dropped from objects and arrays. */
const NO_VALUE: unique symbol = Symbol('AWS::NoValue');

/** Evaluates every intrinsic in `value`; properties that resolve to `AWS::NoValue` are dropped. */
export function resolveIntrinsics(value: unknown, scope: IntrinsicScope): unknown {
  const resolved = evaluate(value, scope, '');
  return resolved === NO_VALUE ? undefined : resolved;
}

/** Evaluates a condition expression (`Fn::Equals`, `Fn::And`, …, `Condition`). */
export function evaluateCondition(expression: unknown, scope: IntrinsicScope): boolean {
  const value = evaluate(expression, scope, 'Conditions');
  if (typeof value !== 'boolean') throw new IntrinsicError(`a condition must evaluate to true or false, got ${JSON.stringify(value)}`);
  return value;
}

function evaluate(value: unknown, scope: IntrinsicScope, path: string): unknown {
  if (Array.isArray(value)) return value.map((item, i) => evaluate(item, scope, `${path}[${i}]`)).filter((item) => item !== NO_VALUE);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [key, argument] = entries[0]!;
    if (key === 'Ref' || key.startsWith('Fn::') || key === 'Condition') {
      const fn = FUNCTIONS[key];
      // `Condition` is also an ordinary property name (a resource's, a statement's); only a bare string is the function.
      if (key === 'Condition' && typeof argument !== 'string') return { Condition: evaluate(argument, scope, `${path}.Condition`) };
      if (!fn) throw new IntrinsicError(`${path || 'template'}: the local cloud does not evaluate ${key}`);
      return fn(argument, scope, `${path}.${key}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries) {
    const resolved = evaluate(item, scope, path ? `${path}.${key}` : key);
    if (resolved !== NO_VALUE) out[key] = resolved;
  }
  return out;
}

type IntrinsicFunction = (argument: unknown, scope: IntrinsicScope, path: string) => unknown;

const text = (value: unknown, path: string): string => {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new IntrinsicError(`${path}: expected a string, got ${JSON.stringify(value)}`);
};
const list = (value: unknown, path: string): unknown[] => {
  if (!Array.isArray(value)) throw new IntrinsicError(`${path}: expected a list, got ${JSON.stringify(value)}`);
  return value;
};

const FUNCTIONS: Readonly<Record<string, IntrinsicFunction>> = {
  Ref: (argument, scope, path) => {
    const name = text(argument, path);
    return name === 'AWS::NoValue' ? NO_VALUE : scope.ref(name);
  },
  'Fn::GetAtt': (argument, scope, path) => {
    const parts = typeof argument === 'string' ? splitOnce(argument) : list(argument, path).map((p) => text(evaluate(p, scope, path), path));
    if (parts.length !== 2) throw new IntrinsicError(`${path}: expected [logicalId, attribute]`);
    return scope.getAtt(parts[0], parts[1]!);
  },
  'Fn::Join': (argument, scope, path) => {
    const [separator, items] = list(argument, path);
    return list(evaluate(items, scope, path), path)
      .map((item) => text(item, path))
      .join(text(separator, path));
  },
  'Fn::Sub': (argument, scope, path) => {
    const [template, variables] = typeof argument === 'string' ? [argument, {}] : list(argument, path);
    const vars = (evaluate(variables ?? {}, scope, path) ?? {}) as Record<string, unknown>;
    return text(template, path).replace(/\$\{(!?)([^}]+)\}/g, (_match, literal: string, name: string) => {
      if (literal) return `\${${name}}`;
      const key = name.trim();
      if (key in vars) return text(vars[key], path);
      const [logicalId, attribute] = splitOnce(key);
      return text(attribute === undefined ? scope.ref(logicalId) : scope.getAtt(logicalId, attribute), path);
    });
  },
  'Fn::Select': (argument, scope, path) => {
    const [index, items] = list(argument, path);
    const at = Number(evaluate(index, scope, path));
    const values = list(evaluate(items, scope, path), path);
    if (!Number.isInteger(at) || at < 0 || at >= values.length) throw new IntrinsicError(`${path}: index ${String(at)} is outside the list of ${values.length}`);
    return values[at];
  },
  'Fn::Split': (argument, scope, path) => {
    const [separator, source] = list(argument, path);
    return text(evaluate(source, scope, path), path).split(text(separator, path));
  },
  'Fn::If': (argument, scope, path) => {
    const [name, whenTrue, whenFalse] = list(argument, path);
    return scope.condition(text(name, path)) ? evaluate(whenTrue, scope, path) : evaluate(whenFalse, scope, path);
  },
  'Fn::Equals': (argument, scope, path) => {
    const [a, b] = list(argument, path).map((item) => evaluate(item, scope, path));
    return JSON.stringify(a) === JSON.stringify(b);
  },
  'Fn::And': (argument, scope, path) => list(argument, path).every((item) => evaluate(item, scope, path) === true),
  'Fn::Or': (argument, scope, path) => list(argument, path).some((item) => evaluate(item, scope, path) === true),
  'Fn::Not': (argument, scope, path) => evaluate(list(argument, path)[0], scope, path) !== true,
  Condition: (argument, scope, path) => scope.condition(text(argument, path)),
  'Fn::FindInMap': (argument, scope, path) => {
    const [map, top, second] = list(argument, path).map((item) => text(evaluate(item, scope, path), path));
    return scope.findInMap(map!, top!, second!);
  },
  'Fn::Base64': (argument, scope, path) => Buffer.from(text(evaluate(argument, scope, path), path), 'utf8').toString('base64'),
  'Fn::GetAZs': (_argument, scope) => ['a', 'b', 'c'].map((zone) => `${scope.region}${zone}`),
  'Fn::Length': (argument, scope, path) => list(evaluate(argument, scope, path), path).length,
  'Fn::ToJsonString': (argument, scope, path) => JSON.stringify(evaluate(argument, scope, path)),
};

function splitOnce(name: string): [string, string?] {
  const dot = name.indexOf('.');
  return dot < 0 ? [name] : [name.slice(0, dot), name.slice(dot + 1)];
}
