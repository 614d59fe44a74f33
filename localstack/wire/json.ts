/**
 * The JSON side of AWS's wire protocols (awsJson1.0/1.1, restJson1), one copy for every
 * service of the local cloud: reading a JSON object body, answering with JSON, reading typed
 * fields, and opaque pagination tokens.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { drain, readBody } from './body.ts';
import { AwsServiceError, ErrorProtocol, newRequestId, sendAwsError, sendFailure } from './errors.ts';
import type { AwsErrorShape } from './errors.ts';

/** How a service words a malformed body; the AWS code differs per service. */
export type BadRequest = (message: string) => Error;

/**
 * Reads the whole request body (at most `limit` bytes) and parses it as a JSON object; an
 * empty body is `{}`. A malformed body is refused with `bad(message)`.
 */
export async function readJsonObject(req: IncomingMessage, bad: BadRequest, limit?: number): Promise<Record<string, unknown>> {
  const text = (await readBody(req, limit)).toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** Reads the body as a JSON object; a malformed one is a 400 with AWS code `badRequestCode`. */
export function readJsonBody(req: IncomingMessage, badRequestCode: string): Promise<Record<string, unknown>> {
  return readJsonObject(req, (message) => new AwsServiceError(badRequestCode, 400, message));
}

/** Ends a response with a body and headers (content length set here). */
export function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { ...headers, 'Content-Length': String(bytes.length) });
  res.end(bytes);
}

/** Answers with a JSON body and a request id. */
export function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  send(res, status, JSON.stringify(body ?? {}), { 'content-type': contentType, 'x-amzn-requestid': newRequestId() });
}

/** Reads an optional string field; a present non-string is a wire error. */
export function optString(body: Record<string, unknown>, key: string, code: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new AwsServiceError(code, 400, `${key} must be a string`);
  return value;
}

/** Reads a required non-empty string field. */
export function reqString(body: Record<string, unknown>, key: string, code: string): string {
  const value = optString(body, key, code);
  if (value === undefined || value === '') throw new AwsServiceError(code, 400, `${key} is required`);
  return value;
}

/** Reads an optional string-to-string map. */
export function optStringMap(body: Record<string, unknown>, key: string, code: string): Record<string, string> | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new AwsServiceError(code, 400, `${key} must be a map`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new AwsServiceError(code, 400, `${key}.${k} must be a string`);
    out[k] = v;
  }
  return out;
}

/** Opaque pagination token over an offset. */
export function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

/**
 * Decodes a token made by {@link encodeToken} (no token is offset 0); a bad token is refused
 * with `bad()`, a 400 with AWS code `code` unless given.
 */
export function decodeToken(token: string | undefined, code: string, bad: () => Error = () => new AwsServiceError(code, 400, 'invalid nextToken')): number {
  if (token === undefined || token === '') return 0;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown };
    if (typeof parsed.offset === 'number' && Number.isInteger(parsed.offset) && parsed.offset >= 0) return parsed.offset;
  } catch {
    // fall through
  }
  throw bad();
}

/** What {@link serveJsonOperation} needs to serve one request of a JSON-protocol service. */
export interface JsonOperation {
  /** The operation the request names, or undefined when it names none (answered 404). */
  readonly operation: string | undefined;
  /** How the 404 describes the request, e.g. `POST /v1/nope`. */
  readonly described: string;
  /** Counting and fault injection of the service. */
  readonly hooks: { count(operation: string): void; fault(operation: string): Promise<AwsErrorShape | undefined> };
  /** AWS code of a malformed body (`ClientException`, `ValidationException`). */
  readonly badRequestCode: string;
  /** AWS code of an unexpected failure (`ServerException`, `InternalServiceException`). */
  readonly internalCode: string;
  /** HTTP status of a success. @default 200 */
  readonly successStatus?: number;
  /** Runs the operation on the parsed body; throws {@link AwsServiceError} to refuse. */
  run(body: Record<string, unknown>): unknown;
}

/**
 * Serves one request of a REST-JSON service (Batch, Braket): 404 for no operation, counting,
 * fault injection, body parsing, the answer, and every failure in AWS's error shape.
 */
export async function serveJsonOperation(req: IncomingMessage, res: ServerResponse, op: JsonOperation): Promise<void> {
  try {
    if (op.operation === undefined) {
      drain(req);
      sendAwsError(res, ErrorProtocol.Json, { status: 404, code: 'UnknownOperationException', message: `no operation at ${op.described}` });
      return;
    }
    const fault = await op.hooks.fault(op.operation);
    op.hooks.count(op.operation);
    if (fault !== undefined) {
      drain(req);
      sendAwsError(res, ErrorProtocol.Json, fault);
      return;
    }
    const body = await readJsonBody(req, op.badRequestCode);
    sendJson(res, op.successStatus ?? 200, op.run(body));
  } catch (e) {
    sendFailure(res, e, op.internalCode);
  }
}
