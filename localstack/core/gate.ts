/**
 * What every request must pass before a service sees it, as AWS requires and a machine-local
 * server needs besides: the right `Host` (no DNS rebinding), no browser shape (no `Origin`, no
 * form or text content type on a JSON protocol), a body within the service's cap (refused
 * before it is read, before auth), and a valid SigV4 signature scoped to this region and this
 * service, with the payload hash verified where AWS verifies it.
 *
 * A web page can make a browser send simple requests (text/plain POSTs, form posts) to
 * 127.0.0.1 from any origin without a CORS preflight; each check below closes one way in.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { AwsErrorShape } from '../wire/errors.ts';
import { ErrorProtocol } from '../wire/errors.ts';
import type { CredentialStore } from './service.ts';
import { SignatureFailure, payloadHashOf, verifySignature } from './sigv4.ts';
import type { SignatureVerdict } from './sigv4.ts';
import { createHash } from 'node:crypto';

const MiB = 1024 * 1024;

/**
 * Largest request body per service (signing name), refused with 413 before it is read. Where
 * AWS states a limit it is used (API Gateway 10 MB, Lambda Invoke 6 MB, DynamoDB's 16 MB batch
 * writes, EventBridge's 256 KB PutEvents with room for the envelope); S3 uploads stream to
 * disk and are capped at S3's 5 GB single PUT.
 */
export const BODY_LIMITS: Readonly<Record<string, number>> = {
  'execute-api': 10 * MiB,
  dynamodb: 16 * MiB,
  lambda: 6 * MiB,
  states: 4 * MiB,
  events: 1 * MiB,
  batch: 1 * MiB,
  braket: 4 * MiB,
  cloudformation: 1 * MiB,
  s3: 5 * 1024 * MiB,
} as const;

/** The cap of a service not listed in {@link BODY_LIMITS}. */
export const DEFAULT_BODY_LIMIT = 1 * MiB;

/** The wire format each service's errors come in. */
export function protocolOfService(service: string | undefined): ErrorProtocol {
  if (service === 's3' || service === undefined) return ErrorProtocol.RestXml;
  if (service === 'cloudformation') return ErrorProtocol.Query;
  return ErrorProtocol.Json;
}

/** Services whose wire protocol is JSON: a body of another type there is not from an AWS client. */
const JSON_PROTOCOL_SERVICES = new Set(['dynamodb', 'states', 'events', 'lambda', 'batch', 'braket']);

/** Content types AWS clients send on JSON protocols (Lambda Invoke payloads are opaque bytes). */
const AWS_JSON_CONTENT_TYPES = new Set(['application/x-amz-json-1.0', 'application/x-amz-json-1.1', 'application/json', 'application/octet-stream', 'binary/octet-stream']);

/**
 * The `Host` values the cloud answers: the address and port it listens on, and on loopback
 * the other loopback spellings (`localhost`, `127.0.0.1`, `[::1]`) and `<bucket>.localhost`
 * (virtual-hosted S3; `*.localhost` always resolves to loopback). Any other name is a DNS
 * rebinding attempt or a misdirected request.
 */
export function hostMatcher(host: string, port: number): (value: string | undefined) => boolean {
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.') || host === '0.0.0.0' || host === '::';
  const names = new Set<string>(loopback ? ['127.0.0.1', 'localhost', '[::1]', host.includes(':') ? `[${host}]` : host] : [host.includes(':') ? `[${host}]` : host]);
  return (value) => {
    if (value === undefined) return false;
    const match = /^(.*):(\d+)$/.exec(value.toLowerCase());
    if (!match || Number(match[2]) !== port) return false;
    const name = match[1] ?? '';
    return names.has(name) || (loopback && /^[a-z0-9][a-z0-9.-]*\.localhost$/.test(name));
  };
}

/** A refusal of the gate: the AWS error to answer with, in the service's wire format. */
export interface Refusal extends AwsErrorShape {
  readonly protocol: ErrorProtocol;
}

/** Refuses a request that looks like a browser's: an `Origin`, a preflight, or a form/text body on a JSON protocol. */
export function browserShaped(req: IncomingMessage, service: string | undefined): string | undefined {
  if (req.headers.origin !== undefined) return 'requests from web pages (with an Origin header) are refused';
  if (req.method === 'OPTIONS') return 'CORS preflight requests are refused';
  if (service !== undefined && JSON_PROTOCOL_SERVICES.has(service)) {
    const contentType = req.headers['content-type'];
    if (contentType !== undefined) {
      const media = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
      if (!AWS_JSON_CONTENT_TYPES.has(media)) return `content type '${media}' is not one an AWS client sends to ${service}`;
    }
  }
  return undefined;
}

/** The declared body length, when it exceeds `limit`. */
export function declaredTooLarge(req: IncomingMessage, limit: number): boolean {
  const declared = Number(req.headers['content-length'] ?? NaN);
  return Number.isFinite(declared) && declared > limit;
}

/** The 413 each protocol answers an oversized body with. */
export function tooLarge(service: string | undefined, limit: number): Refusal {
  const protocol = protocolOfService(service);
  const code = protocol === ErrorProtocol.RestXml ? 'EntityTooLarge' : protocol === ErrorProtocol.Query ? 'RequestEntityTooLarge' : 'RequestEntityTooLargeException';
  return { protocol, status: 413, code, message: `Request must be smaller than ${limit} bytes for the ${service ?? 'requested'} service` };
}

/** The 403 AWS answers a refused signature with, in the service's codes and wire format. */
export function signatureRefusal(service: string | undefined, verdict: Extract<SignatureVerdict, { ok: false }>): Refusal {
  const protocol = protocolOfService(service);
  const message = verdict.reason;
  const status = 403;
  if (protocol === ErrorProtocol.RestXml) {
    const code = {
      [SignatureFailure.Missing]: 'AccessDenied',
      [SignatureFailure.Malformed]: 'AuthorizationHeaderMalformed',
      [SignatureFailure.UnknownAccessKey]: 'InvalidAccessKeyId',
      [SignatureFailure.Mismatch]: 'SignatureDoesNotMatch',
      [SignatureFailure.PayloadHashMismatch]: 'XAmzContentSHA256Mismatch',
      [SignatureFailure.Expired]: 'AccessDenied',
      [SignatureFailure.ScopeMismatch]: 'SignatureDoesNotMatch',
      [SignatureFailure.InvalidToken]: 'InvalidToken',
    }[verdict.code];
    return { protocol, status, code, message };
  }
  if (protocol === ErrorProtocol.Query) {
    const code = {
      [SignatureFailure.Missing]: 'MissingAuthenticationToken',
      [SignatureFailure.Malformed]: 'IncompleteSignature',
      [SignatureFailure.UnknownAccessKey]: 'InvalidClientTokenId',
      [SignatureFailure.Mismatch]: 'SignatureDoesNotMatch',
      [SignatureFailure.PayloadHashMismatch]: 'SignatureDoesNotMatch',
      [SignatureFailure.Expired]: 'SignatureDoesNotMatch',
      [SignatureFailure.ScopeMismatch]: 'SignatureDoesNotMatch',
      [SignatureFailure.InvalidToken]: 'InvalidClientTokenId',
    }[verdict.code];
    return { protocol, status, code, message };
  }
  const code = {
    [SignatureFailure.Missing]: 'MissingAuthenticationTokenException',
    [SignatureFailure.Malformed]: 'IncompleteSignatureException',
    [SignatureFailure.UnknownAccessKey]: 'UnrecognizedClientException',
    [SignatureFailure.Mismatch]: 'InvalidSignatureException',
    [SignatureFailure.PayloadHashMismatch]: 'InvalidSignatureException',
    [SignatureFailure.Expired]: 'InvalidSignatureException',
    [SignatureFailure.ScopeMismatch]: 'InvalidSignatureException',
    [SignatureFailure.InvalidToken]: 'UnrecognizedClientException',
  }[verdict.code];
  return { protocol, status, code, message };
}

/** Verifies a request's signature for `service` in `region` (see {@link verifySignature}). */
export function verifyFor(req: IncomingMessage, body: Buffer | undefined, service: string, region: string, credentials: CredentialStore): Promise<SignatureVerdict> {
  return verifySignature(
    { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: body ?? Buffer.alloc(0) },
    credentials,
    { region, service, payload: body === undefined ? 'streamed' : 'buffered' },
  );
}

/**
 * A pass-through that hashes a streamed payload and, at its end, fails the stream (so the
 * upload is not completed) when the hash is not the declared `x-amz-content-sha256`; also
 * fails it once more than `limit` bytes went through.
 */
export function verifyingStream(declaredHash: string | undefined, limit: number, onFailure: (refusal: 'hash' | 'size') => void): Transform {
  const hex = declaredHash !== undefined && /^[0-9a-f]{64}$/.test(declaredHash) ? declaredHash : undefined;
  const hash = hex ? createHash('sha256') : undefined;
  let size = 0;
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      size += chunk.length;
      if (size > limit) {
        onFailure('size');
        callback(new Error('payload too large'));
        return;
      }
      hash?.update(chunk);
      // Hold the last chunk back: the consumer sees the end only once the hash matched.
      const previous = held;
      held = chunk;
      callback(null, previous);
    },
    flush(callback: TransformCallback) {
      if (hash && hash.digest('hex') !== hex) {
        onFailure('hash');
        callback(new Error('x-amz-content-sha256 mismatch'));
        return;
      }
      callback(null, held);
    },
  });
}

/** Compares a presented admin token with the cloud's, in constant time. */
export function tokenMatches(presented: string | string[] | undefined, token: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export { payloadHashOf };
