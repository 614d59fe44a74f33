/**
 * The AWS JSON 1.0 wire protocol as Step Functions speaks it.
 *
 * Requests are `POST /` with `X-Amz-Target: AWSStepFunctions.<Operation>` and a JSON body;
 * answers are JSON with timestamps as epoch seconds. Errors carry the same `__type` values the
 * real service sends (`com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist`), which the AWS
 * SDK v3 strips to the exception name (`err.name === 'ExecutionDoesNotExist'`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AwsServiceError, ErrorProtocol, sendAwsError } from '../wire/errors.ts';
import type { AwsErrorShape } from '../wire/errors.ts';
import { decodeToken, encodeToken, readJsonObject, sendJson } from '../wire/json.ts';

/** Namespace prefix of every Step Functions error code on the wire. */
const ERROR_NAMESPACE = 'com.amazonaws.swf.service.v2.model';

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';

/** Largest request body accepted (a definition is ≤ 1 MB, an input ≤ 256 KiB). */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Error codes the local Step Functions answers with, as the SDK names them. */
export const StatesErrorCode = {
  ExecutionAlreadyExists: 'ExecutionAlreadyExists',
  ExecutionDoesNotExist: 'ExecutionDoesNotExist',
  InvalidArn: 'InvalidArn',
  InvalidDefinition: 'InvalidDefinition',
  InvalidExecutionInput: 'InvalidExecutionInput',
  InvalidName: 'InvalidName',
  InvalidOutput: 'InvalidOutput',
  InvalidToken: 'InvalidToken',
  StateMachineAlreadyExists: 'StateMachineAlreadyExists',
  StateMachineDoesNotExist: 'StateMachineDoesNotExist',
  StateMachineTypeNotSupported: 'StateMachineTypeNotSupported',
  TaskDoesNotExist: 'TaskDoesNotExist',
  TaskTimedOut: 'TaskTimedOut',
  ValidationException: 'ValidationException',
  UnknownOperationException: 'UnknownOperationException',
  SerializationException: 'SerializationException',
  InternalFailure: 'InternalFailure',
} as const;
/** One of {@link StatesErrorCode}. */
export type StatesErrorCode = (typeof StatesErrorCode)[keyof typeof StatesErrorCode];

/**
 * An error the API answers with instead of a result (an {@link AwsServiceError} with the
 * Step Functions code first and 400 by default, as Step Functions answers every client error).
 */
export class StatesServiceError extends AwsServiceError {
  override readonly name: string = 'StatesServiceError';
  constructor(code: string, message: string, status = 400) {
    super(code, status, message);
  }
}

/** Reads and parses a JSON request body; an empty body is `{}`. */
export function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return readJsonObject(req, (message) => new StatesServiceError(StatesErrorCode.SerializationException, message), MAX_BODY_BYTES);
}

/** The operation named by `X-Amz-Target`, or undefined when the header is not Step Functions'. */
export function operationOf(req: IncomingMessage): string | undefined {
  const target = req.headers['x-amz-target'];
  const value = Array.isArray(target) ? target[0] : target;
  if (!value) return undefined;
  const dot = value.indexOf('.');
  if (dot < 0 || value.slice(0, dot) !== 'AWSStepFunctions') return undefined;
  return value.slice(dot + 1);
}

/** Sends a successful JSON 1.0 answer. */
export function sendResult(res: ServerResponse, body: unknown): void {
  sendJson(res, 200, body, JSON_CONTENT_TYPE);
}

/** Sends an error in the shape Step Functions uses (`__type` with its namespace, `message`). */
export function sendError(res: ServerResponse, error: AwsErrorShape): void {
  sendAwsError(res, ErrorProtocol.Json, error, { contentType: JSON_CONTENT_TYPE, typeNamespace: ERROR_NAMESPACE });
}

/** A Date as the JSON protocol sends timestamps: epoch seconds, fractional. */
export function epochSeconds(ms: number): number {
  return ms / 1000;
}

/** Reads a required string parameter or answers with a validation error. */
export function requireString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '') {
    throw new StatesServiceError(
      StatesErrorCode.ValidationException,
      `1 validation error detected: Value null at '${key}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return value;
}

/** Reads an optional string parameter. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw new StatesServiceError(StatesErrorCode.ValidationException, `'${key}' must be a string`);
  }
  return value;
}

/** Reads an optional integer parameter within bounds. */
export function optionalInteger(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new StatesServiceError(
      StatesErrorCode.ValidationException,
      `1 validation error detected: Value '${JSON.stringify(value)}' at '${key}' failed to satisfy constraint: Member must have value between ${min} and ${max}`,
    );
  }
  return value;
}

/**
 * Names of state machines and executions: 1–80 characters, none of the characters AWS refuses
 * (whitespace, brackets, wildcards, `"#%\^|~\`$&,;:/` and control characters).
 */
export function isValidResourceName(name: string): boolean {
  if (name.length < 1 || name.length > 80) return false;
  return !/[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/u.test(name);
}

/** Opaque pagination token over an offset (the one token format of the local cloud). */
export const encodePageToken = encodeToken;

/** Decodes {@link encodePageToken}; a bad token is the error AWS answers with. */
export function decodePageToken(token: string | undefined): number {
  return decodeToken(token, StatesErrorCode.InvalidToken, () => new StatesServiceError(StatesErrorCode.InvalidToken, "Invalid Token: 'Invalid pagination token'"));
}
