/**
 * Small pieces of the AWS REST-JSON wire format shared by the Batch and Braket services:
 * reading a JSON body and answering with a JSON body or an error that the AWS SDK v3 maps to
 * the right exception class (it reads the `x-amzn-ErrorType` header first).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An error answered on the wire: HTTP status plus the AWS error code that names its class. */
export class WireError extends Error {
  override readonly name: string = 'WireError';
  constructor(
    /** AWS error code, e.g. `ClientException`, `ConflictException`. */
    readonly code: string,
    /** HTTP status. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Largest request body accepted; a bigger one is answered with 413. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Reads the whole request body and parses it as JSON; an empty body is `{}`. */
export async function readJsonBody(req: IncomingMessage, badRequestCode: string): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new WireError(badRequestCode, 413, 'request body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new WireError(badRequestCode, 400, 'request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new WireError(badRequestCode, 400, 'request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** Answers with a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': crypto.randomUUID(),
  });
  res.end(text);
}

/** Answers with an AWS error: `x-amzn-ErrorType` header plus `{ message }` body. */
export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify({ __type: code, message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-errortype': code,
    'x-amzn-requestid': crypto.randomUUID(),
  });
  res.end(text);
}

/** Reads an optional string field; a present non-string is a wire error. */
export function optString(body: Record<string, unknown>, key: string, code: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new WireError(code, 400, `${key} must be a string`);
  return value;
}

/** Reads a required non-empty string field. */
export function reqString(body: Record<string, unknown>, key: string, code: string): string {
  const value = optString(body, key, code);
  if (value === undefined || value === '') throw new WireError(code, 400, `${key} is required`);
  return value;
}

/** Reads an optional string-to-string map. */
export function optStringMap(
  body: Record<string, unknown>,
  key: string,
  code: string,
): Record<string, string> | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new WireError(code, 400, `${key} must be a map`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new WireError(code, 400, `${key}.${k} must be a string`);
    out[k] = v;
  }
  return out;
}

/** Opaque pagination token over an offset. */
export function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url');
}

/** Decodes a token made by {@link encodeToken}; a bad token is a wire error. */
export function decodeToken(token: string | undefined, code: string): number {
  if (token === undefined || token === '') return 0;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown };
    if (typeof parsed.offset === 'number' && Number.isInteger(parsed.offset) && parsed.offset >= 0) {
      return parsed.offset;
    }
  } catch {
    // fall through
  }
  throw new WireError(code, 400, 'invalid nextToken');
}
