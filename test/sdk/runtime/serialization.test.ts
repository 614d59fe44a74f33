// The one serialization format, checked field by field: what an error keeps when it crosses
// a boundary, what a thrown non-error becomes, and which values serialize() refuses, naming
// where. (Written to kill the mutants that survived `npm run mutation` on this file.)
import { describe, expect, it } from 'vitest';
import { SerializationError, deserialize, deserializeError, serialize, serializeError } from '../../../sdk/runtime/serialization.ts';
import { ErrorCode } from '../../../sdk/errors.ts';

describe('serializeError', () => {
  it('keeps name, message, a string code, the stack and the cause chain', () => {
    const root = Object.assign(new TypeError('root cause'), { code: 'E_ROOT' });
    const error = Object.assign(new RangeError('outer', { cause: root }), { code: 'E_OUTER' });
    const data = serializeError(error);
    expect(data).toEqual({
      name: 'RangeError',
      message: 'outer',
      code: 'E_OUTER',
      stack: error.stack,
      cause: { name: 'TypeError', message: 'root cause', code: 'E_ROOT', stack: root.stack },
    });
  });

  it('leaves out a code that is not a string, and an absent stack or cause', () => {
    const error = Object.assign(new Error('numeric code'), { code: 42 });
    delete (error as { stack?: string }).stack;
    const data = serializeError(error);
    expect(data).toEqual({ name: 'Error', message: 'numeric code' });
    expect(Object.keys(data)).toEqual(['name', 'message']);
  });

  it('stops the cause chain after 8 levels', () => {
    let error: Error = new Error('level 0');
    for (let i = 1; i <= 12; i++) error = new Error(`level ${i}`, { cause: error });
    let depth = 0;
    for (let e = serializeError(error).cause; e; e = e.cause) depth++;
    expect(depth).toBe(8);
  });

  it('turns a thrown string into NonErrorThrown with the text as message and value', () => {
    expect(serializeError('plain text')).toEqual({ name: 'NonErrorThrown', message: 'plain text', value: 'plain text' });
  });

  it('turns a thrown plain object into its JSON, even one with name and message', () => {
    expect(serializeError({ name: 'X', message: 'y' })).toEqual({ name: 'NonErrorThrown', message: '{"name":"X","message":"y"}', value: '{"name":"X","message":"y"}' });
    expect(serializeError(7)).toEqual({ name: 'NonErrorThrown', message: '7', value: '7' });
  });

  it('falls back to String() for a value JSON cannot encode', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(serializeError(cyclic)).toEqual({ name: 'NonErrorThrown', message: '[object Object]', value: '[object Object]' });
    expect(serializeError(10n).message).toBe('10');
  });

  it('treats an error-like instance of a class (not an Error) as an error', () => {
    class Failure {
      readonly name = 'Failure';
      readonly message = 'from a class';
      readonly code = 'E_CLASS';
    }
    expect(serializeError(new Failure())).toEqual({ name: 'Failure', message: 'from a class', code: 'E_CLASS' });
  });

  it('never calls a function error-like, even one with a message; a thrown undefined still has a message', () => {
    const fn = Object.assign(function thrower() {}, { message: 'a function' });
    expect(serializeError(fn)).toMatchObject({ name: 'NonErrorThrown' });
    expect(typeof serializeError(fn).message).toBe('string');
    expect(serializeError(undefined)).toEqual({ name: 'NonErrorThrown', message: 'undefined', value: 'undefined' });
  });

  it('needs both a string name and a string message to call an instance error-like', () => {
    class NoName {
      readonly message = 'only a message';
    }
    class NoMessage {
      readonly name = 'OnlyName';
    }
    expect(serializeError(new NoName()).name).toBe('NonErrorThrown');
    expect(serializeError(new NoMessage()).name).toBe('NonErrorThrown');
    expect(serializeError(null)).toEqual({ name: 'NonErrorThrown', message: 'null', value: 'null' });
  });

  it('names an Error whose name is not a string "Error", and stringifies a non-string message', () => {
    const error = new Error('x');
    Object.defineProperty(error, 'name', { value: 5 });
    Object.defineProperty(error, 'message', { value: 12 });
    expect(serializeError(error)).toMatchObject({ name: 'Error', message: '12' });
  });
});

describe('deserializeError', () => {
  it('rebuilds a plain Error with the name (not enumerable), code, stack and cause', () => {
    const error = deserializeError({ name: 'RangeError', message: 'outer', code: 'E1', stack: 'stack text', cause: { name: 'TypeError', message: 'inner' } });
    expect(error).toBeInstanceOf(Error);
    expect(Object.getPrototypeOf(error)).toBe(Error.prototype);
    expect(error.name).toBe('RangeError');
    expect(Object.keys(error)).not.toContain('name');
    expect(error.message).toBe('outer');
    expect(error.code).toBe('E1');
    expect(error.stack).toBe('stack text');
    const cause = error.cause as Error;
    expect(cause.name).toBe('TypeError');
    expect(cause.message).toBe('inner');
    expect(cause.cause).toBeUndefined();
  });

  it('sets no code and no cause when there are none, and keeps its own stack when none came', () => {
    const error = deserializeError({ name: 'Error', message: 'm' });
    expect('code' in error).toBe(false);
    expect('cause' in error).toBe(false);
    expect(error.stack).toMatch(/^Error: m/);
    // The name stays an ordinary property: writable and configurable.
    error.name = 'Renamed';
    expect(error.name).toBe('Renamed');
    Object.defineProperty(error, 'name', { value: 'Redefined' });
    expect(error.name).toBe('Redefined');
    delete (error as { name?: string }).name;
    expect(error.name).toBe('Error');
  });
});

describe('serialize / deserialize', () => {
  it('round-trips the values devalue keeps, and errors inside values as Errors', () => {
    const value = { when: new Date(0), map: new Map([[1, 'a']]), set: new Set([2]), big: 3n, none: undefined, nan: Number.NaN, error: new RangeError('inside') };
    const back = deserialize<typeof value>(serialize(value));
    expect(back.when).toEqual(new Date(0));
    expect(back.map).toEqual(new Map([[1, 'a']]));
    expect(back.set).toEqual(new Set([2]));
    expect(back.big).toBe(3n);
    expect('none' in back && back.none === undefined).toBe(true);
    expect(back.nan).toBeNaN();
    expect(back.error).toBeInstanceOf(Error);
    expect(back.error).toMatchObject({ name: 'RangeError', message: 'inside' });
  });

  it('refuses a function, naming the path, with the devalue error as cause', () => {
    let thrown: unknown;
    try {
      serialize({ outer: { fn: () => 1 } });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(SerializationError);
    const error = thrown as SerializationError;
    expect(error.name).toBe('SerializationError');
    expect(error.code).toBe(ErrorCode.SERIALIZATION_FAILED);
    expect(error.path).toBe('.outer.fn');
    expect(error.message).toMatch(/ \(at value\.outer\.fn\)$/);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('refuses a top-level function with an empty path and no "(at value)" suffix', () => {
    let thrown: SerializationError | undefined;
    try {
      serialize(() => 1);
    } catch (error) {
      thrown = error as SerializationError;
    }
    expect(thrown?.path).toBe('');
    expect(thrown?.message).not.toMatch(/at value/);
  });
});
