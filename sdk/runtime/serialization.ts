/**
 * The one serialization format of valence: payloads, results and errors crossing S3, worker
 * threads, processes and Lambda.
 *
 * It is devalue's JSON-based format, which keeps Date, Map, Set, BigInt, RegExp, typed arrays,
 * undefined, NaN, -0 and repeated references, and whose `parse` only rebuilds data: it never
 * runs code from a payload (no eval, no constructors looked up by name). Errors travel as data
 * — name, message, code, cause chain and stack — and come back as plain `Error` objects with
 * those fields, so `isCancellation` and `ErrorEquals`-style matching work on names.
 */
import * as devalue from 'devalue';
import { ErrorCode, ValenceError, type ValenceErrorOptions } from '../errors.ts';

/** An error as it crosses a boundary. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
  readonly cause?: SerializedError | undefined;
  /** Set when the cause was not an Error (a thrown string, say). */
  readonly value?: string;
}

/** Thrown when a value cannot be serialized; `path` names the offending part. */
export class SerializationError extends ValenceError {
  override readonly name: string = 'SerializationError';
  declare readonly code: typeof ErrorCode.SERIALIZATION_FAILED;
  constructor(
    message: string,
    /** Where in the value the offending part is (devalue's path, such as `.a[2]`). */
    readonly path: string,
    options: ValenceErrorOptions = {},
  ) {
    super(ErrorCode.SERIALIZATION_FAILED, message, options);
  }
}

const MAX_CAUSE_DEPTH = 8;

/** Turns anything thrown into {@link SerializedError}; never throws. */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (error instanceof Error || isErrorLike(error)) {
    const e = error as Error & { code?: unknown; cause?: unknown };
    const code = typeof e.code === 'string' ? e.code : undefined;
    const cause =
      e.cause !== undefined && depth < MAX_CAUSE_DEPTH ? serializeError(e.cause, depth + 1) : undefined;
    return {
      name: typeof e.name === 'string' ? e.name : 'Error',
      message: typeof e.message === 'string' ? e.message : String(e.message),
      ...(code ? { code } : {}),
      ...(typeof e.stack === 'string' ? { stack: e.stack } : {}),
      ...(cause ? { cause } : {}),
    };
  }
  let text: string;
  try {
    // JSON.stringify gives undefined (not a string) for undefined and functions.
    text = typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
  } catch {
    text = String(error);
  }
  return { name: 'NonErrorThrown', message: text, value: text };
}

/** Rebuilds an `Error` carrying the serialized fields; never constructs user classes. */
export function deserializeError(data: SerializedError): Error & { code?: string } {
  const cause = data.cause ? deserializeError(data.cause) : undefined;
  const error = new Error(data.message, cause ? { cause } : undefined) as Error & { code?: string };
  Object.defineProperty(error, 'name', { value: data.name, enumerable: false, writable: true, configurable: true });
  if (data.code) error.code = data.code;
  if (data.stack) error.stack = data.stack;
  return error;
}

function isErrorLike(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string' &&
    typeof (value as { name?: unknown }).name === 'string' &&
    Object.getPrototypeOf(value) !== Object.prototype
  );
}

const reducers = {
  Error: (value: unknown) => (value instanceof Error ? serializeError(value) : undefined),
};
const revivers = {
  Error: (value: SerializedError) => deserializeError(value),
};

/**
 * Serializes a value to a string.
 * @throws SerializationError naming the path of a function, symbol or class instance.
 */
export function serialize(value: unknown): string {
  try {
    return devalue.stringify(value, reducers);
  } catch (error) {
    const path = (error as { path?: string }).path ?? '';
    const message = (error as Error).message ?? String(error);
    throw new SerializationError(`${message}${path ? ` (at value${path})` : ''}`, path, { cause: error });
  }
}

/** Parses a string made by {@link serialize}. Rebuilds data only; runs no code. */
export function deserialize<T = unknown>(text: string): T {
  return devalue.parse(text, revivers) as T;
}
