/**
 * EventBridge event patterns: which events a rule matches.
 *
 * Supported as on AWS: nested objects; arrays of exact values (strings, numbers, booleans,
 * null), any of which may match; an event field that is an array matches when any element
 * does; the content filters `prefix`, `suffix`, `anything-but` (value, list or `{prefix}`),
 * `numeric`, `exists`, `equals-ignore-case`, `wildcard`; and `$or`.
 * Not supported: `cidr`, and `prefix`/`suffix` with `equals-ignore-case` inside them.
 */
import { AwsServiceError } from '../wire/errors.ts';

/** A pattern EventBridge would reject, with AWS's reason text. */
export class InvalidEventPatternError extends AwsServiceError {
  override readonly name = 'InvalidEventPatternError';
  constructor(reason: string) {
    super('InvalidEventPatternException', 400, `Event pattern is not valid. Reason: ${reason}`);
  }
}

/** A parsed, validated event pattern. */
export type EventPattern = { readonly [field: string]: unknown };

const FILTERS = new Set(['prefix', 'suffix', 'anything-but', 'numeric', 'exists', 'equals-ignore-case', 'wildcard']);
const NUMERIC_OPS = new Set(['<', '<=', '=', '>', '>=']);

/** Parses (from JSON text) and validates a pattern; throws {@link InvalidEventPatternError}. */
export function parsePattern(pattern: string | object): EventPattern {
  let parsed: unknown = pattern;
  if (typeof pattern === 'string') {
    try {
      parsed = JSON.parse(pattern);
    } catch (error) {
      throw new InvalidEventPatternError(`Filter is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (!isObject(parsed)) throw new InvalidEventPatternError('Filter is not an object');
  validateObject(parsed, '');
  return parsed;
}

function validateObject(pattern: Record<string, unknown>, at: string): void {
  for (const [key, value] of Object.entries(pattern)) {
    const where = at ? `${at}.${key}` : key;
    if (key === '$or') {
      if (!Array.isArray(value) || value.length < 2 || !value.every(isObject)) {
        throw new InvalidEventPatternError(`"$or" at ${where || 'top level'} must be an array of at least two objects`);
      }
      for (const branch of value) validateObject(branch, at);
    } else if (Array.isArray(value)) {
      if (value.length === 0) throw new InvalidEventPatternError(`Empty arrays are not allowed (at ${where})`);
      for (const matcher of value) validateMatcher(matcher, where);
    } else if (isObject(value)) {
      validateObject(value, where);
    } else {
      throw new InvalidEventPatternError(`Match value must be String, number, true, false, or null (at ${where}: expected an array or an object)`);
    }
  }
}

function validateMatcher(matcher: unknown, where: string): void {
  if (matcher === null || ['string', 'number', 'boolean'].includes(typeof matcher)) return;
  if (!isObject(matcher)) throw new InvalidEventPatternError(`Unrecognized match type at ${where}`);
  const keys = Object.keys(matcher);
  const [op] = keys;
  if (keys.length !== 1 || op === undefined || !FILTERS.has(op)) {
    throw new InvalidEventPatternError(`Unrecognized match type ${keys.join(',') || '{}'} at ${where}`);
  }
  const arg = matcher[op];
  switch (op) {
    case 'prefix':
    case 'suffix':
    case 'equals-ignore-case':
    case 'wildcard':
      if (typeof arg !== 'string') throw new InvalidEventPatternError(`${op} match pattern must be a string at ${where}`);
      return;
    case 'exists':
      if (typeof arg !== 'boolean') throw new InvalidEventPatternError(`exists match pattern must be either true or false at ${where}`);
      return;
    case 'anything-but':
      if (isObject(arg)) {
        if (typeof arg['prefix'] !== 'string' && typeof arg['suffix'] !== 'string') {
          throw new InvalidEventPatternError(`anything-but object must hold a prefix or a suffix at ${where}`);
        }
      } else if (Array.isArray(arg)) {
        if (!arg.every((v) => typeof v === 'string' || typeof v === 'number')) {
          throw new InvalidEventPatternError(`Inside anything-but list, only strings and numbers are allowed at ${where}`);
        }
      } else if (typeof arg !== 'string' && typeof arg !== 'number') {
        throw new InvalidEventPatternError(`anything-but must be a value, a list or an object at ${where}`);
      }
      return;
    case 'numeric': {
      if (!Array.isArray(arg) || arg.length === 0 || arg.length % 2 !== 0 || arg.length > 4) {
        throw new InvalidEventPatternError(`numeric must be a list of operator/value pairs at ${where}`);
      }
      for (let i = 0; i < arg.length; i += 2) {
        if (!NUMERIC_OPS.has(String(arg[i])) || typeof arg[i + 1] !== 'number') {
          throw new InvalidEventPatternError(`Unrecognized numeric range operator or value at ${where}`);
        }
      }
      return;
    }
  }
}

/** True when `event` (an EventBridge envelope) matches `pattern`. */
export function matchesPattern(pattern: EventPattern, event: unknown): boolean {
  return matchObject(pattern, event);
}

function matchObject(pattern: { readonly [field: string]: unknown }, value: unknown): boolean {
  const record = isObject(value) ? value : undefined;
  for (const [key, expected] of Object.entries(pattern)) {
    if (key === '$or') {
      if (!(expected as EventPattern[]).some((branch) => matchObject(branch, value))) return false;
      continue;
    }
    const present = record !== undefined && Object.hasOwn(record, key);
    const actual = present ? record[key] : undefined;
    if (Array.isArray(expected)) {
      if (!matchLeaf(expected, present, actual)) return false;
    } else if (isObject(expected)) {
      // A nested pattern needs a nested object, except that it may ask only for absent fields.
      if (!matchObject(expected, present ? actual : undefined)) return false;
    }
  }
  return true;
}

function matchLeaf(matchers: readonly unknown[], present: boolean, actual: unknown): boolean {
  if (!present) return matchers.some((m) => isObject(m) && m['exists'] === false);
  const values = Array.isArray(actual) ? actual : [actual];
  return matchers.some((matcher) => values.some((value) => matchOne(matcher, value)));
}

function matchOne(matcher: unknown, value: unknown): boolean {
  if (!isObject(matcher)) return matcher === value;
  const [op, arg] = Object.entries(matcher)[0] as [string, unknown];
  switch (op) {
    case 'exists':
      return arg === true;
    case 'prefix':
      return typeof value === 'string' && value.startsWith(arg as string);
    case 'suffix':
      return typeof value === 'string' && value.endsWith(arg as string);
    case 'equals-ignore-case':
      return typeof value === 'string' && value.toLowerCase() === (arg as string).toLowerCase();
    case 'wildcard':
      return typeof value === 'string' && wildcardRegExp(arg as string).test(value);
    case 'numeric':
      return typeof value === 'number' && numericMatches(arg as unknown[], value);
    case 'anything-but':
      if (isObject(arg)) {
        if (typeof value !== 'string') return false;
        if (typeof arg['prefix'] === 'string') return !value.startsWith(arg['prefix']);
        return !value.endsWith(arg['suffix'] as string);
      }
      if (value === null || typeof value === 'object') return false;
      return Array.isArray(arg) ? !arg.includes(value) : arg !== value;
    default:
      return false;
  }
}

function numericMatches(conditions: readonly unknown[], value: number): boolean {
  for (let i = 0; i < conditions.length; i += 2) {
    const bound = conditions[i + 1] as number;
    switch (conditions[i]) {
      case '<':
        if (!(value < bound)) return false;
        break;
      case '<=':
        if (!(value <= bound)) return false;
        break;
      case '=':
        if (value !== bound) return false;
        break;
      case '>':
        if (!(value > bound)) return false;
        break;
      case '>=':
        if (!(value >= bound)) return false;
        break;
    }
  }
  return true;
}

function wildcardRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`, 's');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
