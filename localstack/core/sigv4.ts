/**
 * AWS Signature Version 4 on the server side: reading the credential scope (to route a request
 * to the service it was signed for) and recomputing the signature (to refuse requests that
 * AWS_IAM authorization would refuse).
 *
 * The recomputation uses the same `@smithy/signature-v4` signer the AWS SDK signs with, fed
 * with exactly the headers the client listed as signed, so client and server build the same
 * canonical request by construction instead of by two hand-written copies of the algorithm.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createHash, type Hash, type Hmac } from 'node:crypto';
import type { CredentialStore } from './service.ts';

// The signer and its helpers cost a noticeable share of the local cloud's start-up to load:
// load them on the first verification.
let signerModules:
  | Promise<{
      SignatureV4: typeof import('@smithy/signature-v4').SignatureV4;
      HttpRequest: typeof import('@smithy/protocol-http').HttpRequest;
    }>
  | undefined;
function loadSigner() {
  signerModules ??= Promise.all([import('@smithy/signature-v4'), import('@smithy/protocol-http')]).then(([signature, protocol]) => ({
    SignatureV4: signature.SignatureV4,
    HttpRequest: protocol.HttpRequest,
  }));
  return signerModules;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytesOf(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/**
 * SHA-256 and HMAC-SHA256 for the signer, on Node's native crypto: the same digests as the
 * SDK's JavaScript `@aws-crypto/sha256-js`, at a fraction of the main thread's CPU. Every
 * request to the local cloud is verified, so this runs a handful of times per request.
 */
class NativeSha256 {
  readonly #secret: Buffer | undefined;
  #hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : bytesOf(secret);
    this.#hash = this.#fresh();
  }

  update(data: SourceData): void {
    this.#hash.update(bytesOf(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }

  reset(): void {
    this.#hash = this.#fresh();
  }

  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
}

type Signer = InstanceType<Awaited<ReturnType<typeof loadSigner>>['SignatureV4']>;

/**
 * Signers by credentials and scope. A `SignatureV4` caches the signing key it derives (four
 * HMACs) per day, region and service, but only within the instance: one signer per key pair
 * and scope lets every request after the first reuse it, as the SDK's clients do.
 */
const signers = new Map<string, Signer>();
const MAX_SIGNERS = 64;

async function signerFor(accessKeyId: string, secretAccessKey: string, sessionToken: string | undefined, region: string, service: string): Promise<Signer> {
  const key = [accessKeyId, secretAccessKey, sessionToken ?? '', region, service].join('\u0000');
  const cached = signers.get(key);
  if (cached) return cached;
  const { SignatureV4 } = await loadSigner();
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
    region,
    service,
    sha256: NativeSha256,
    // S3 signs the path as sent; every other service signs it encoded once more.
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
  signers.set(key, signer);
  if (signers.size > MAX_SIGNERS) signers.delete(signers.keys().next().value!);
  return signer;
}

/** What the credential scope of a signed request says: who signed, when, where, for what. */
export interface CredentialScope {
  readonly accessKeyId: string;
  /** The scope's date, `YYYYMMDD`. */
  readonly date: string;
  readonly region: string;
  /** SigV4 signing name, e.g. `dynamodb`, `s3`, `states`, `execute-api`. */
  readonly service: string;
}

/** The parts of an HTTP request that signature handling reads. */
export interface SignedRequestHead {
  readonly headers: IncomingHttpHeaders;
  /** Path and query as received, e.g. `/bucket/key?X-Amz-Credential=...`. */
  readonly url?: string | undefined;
}

const HEADER_CREDENTIAL = /Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/;

/**
 * Reads the credential scope from an `Authorization: AWS4-HMAC-SHA256 Credential=...` header
 * or from the `X-Amz-Credential` parameter of a presigned URL; undefined for unsigned requests
 * (and for the legacy SigV2, which carries no scope).
 */
export function parseCredentialScope(req: SignedRequestHead): CredentialScope | undefined {
  const authorization = headerValue(req.headers, 'authorization');
  if (authorization) {
    const match = HEADER_CREDENTIAL.exec(authorization);
    if (!match) return undefined;
    const [, accessKeyId, date, region, service] = match;
    return accessKeyId && date && region && service ? { accessKeyId, date, region, service } : undefined;
  }
  const query = parseQuery(splitUrl(req.url).query);
  const credential = first(query['X-Amz-Credential']);
  if (!credential) return undefined;
  const [accessKeyId, date, region, service, terminator] = credential.split('/');
  if (!accessKeyId || !date || !region || !service || terminator !== 'aws4_request') return undefined;
  return { accessKeyId, date, region, service };
}

/** Why a signature was refused; API Gateway and the other services map these to their codes. */
export const SignatureFailure = {
  /** No SigV4 signature at all (API Gateway: `MissingAuthenticationTokenException`). */
  Missing: 'Missing',
  /** The header or query is not a well-formed SigV4 signature. */
  Malformed: 'Malformed',
  /** The access key id is not known to the credential store. */
  UnknownAccessKey: 'UnknownAccessKey',
  /** The recomputed signature differs (wrong secret, or the request was altered). */
  Mismatch: 'Mismatch',
  /** `x-amz-content-sha256` does not match the body. */
  PayloadHashMismatch: 'PayloadHashMismatch',
  /** Signed more than 15 minutes from now, or a presigned URL past its expiry. */
  Expired: 'Expired',
  /** Scoped to another region or another service than the one the request goes to. */
  ScopeMismatch: 'ScopeMismatch',
  /** An `x-amz-security-token` the cloud did not issue for this access key (or none where one is due). */
  InvalidToken: 'InvalidToken',
} as const;
/** One of {@link SignatureFailure}. */
export type SignatureFailure = (typeof SignatureFailure)[keyof typeof SignatureFailure];

/** The outcome of {@link verifySignature}. */
export type SignatureVerdict =
  | { readonly ok: true; readonly accessKeyId: string; readonly scope: CredentialScope }
  | { readonly ok: false; readonly reason: string; readonly code: SignatureFailure };

/** A request as received, with its whole body, for {@link verifySignature}. */
export interface VerifiableRequest {
  readonly method: string;
  /** Path and query exactly as received (still percent-encoded). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * What the receiving service requires of a signature, as AWS does: its own region and signing
 * name in the scope, and how it reads the payload.
 */
export interface SignatureExpectation {
  readonly region: string;
  /** The signing name of the service the request goes to (`dynamodb`, `execute-api`, …). */
  readonly service: string;
  /**
   * `buffered`: `body` is the whole payload, and a declared `x-amz-content-sha256` must be its
   * hash (every service but S3 refuses `UNSIGNED-PAYLOAD`). `streamed` (S3 uploads): `body` is
   * empty, the declared hash is signed as given, and the caller verifies a hex hash while the
   * payload streams ({@link payloadHashOf}).
   */
  readonly payload: 'buffered' | 'streamed';
}

/** How far a signing time may be from the server's clock, as AWS allows. */
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/**
 * Recomputes the SigV4 signature of a request with the secret the credential store holds for
 * its access key, and says whether it matches. Header-signed and presigned (query) requests
 * are both accepted; the region and service are taken from the request's own scope.
 */
export async function verifySignature(input: VerifiableRequest, credentials: CredentialStore, expect?: SignatureExpectation): Promise<SignatureVerdict> {
  const fail = (code: SignatureFailure, reason: string): SignatureVerdict => ({ ok: false, code, reason });
  const { path, query: rawQuery } = splitUrl(input.url);
  const query = parseQuery(rawQuery);
  const authorization = headerValue(input.headers, 'authorization');
  const presigned = !authorization && first(query['X-Amz-Algorithm']) !== undefined;
  if (!authorization && !presigned) return fail(SignatureFailure.Missing, 'Missing Authentication Token');

  const scope = parseCredentialScope({ headers: input.headers, url: input.url });
  if (!scope) return fail(SignatureFailure.Malformed, 'Authorization is not a well-formed AWS4-HMAC-SHA256 signature');
  if (expect && scope.region !== expect.region) {
    return fail(SignatureFailure.ScopeMismatch, `Credential should be scoped to a valid region: '${scope.region}' is not '${expect.region}'`);
  }
  if (expect && scope.service !== expect.service) {
    return fail(SignatureFailure.ScopeMismatch, `Credential should be scoped to correct service: '${expect.service}', not '${scope.service}'`);
  }

  let signedHeaderNames: string[];
  let providedSignature: string;
  let amzDate: string | undefined;
  let expiresSeconds: number | undefined;
  if (authorization) {
    if (!authorization.startsWith('AWS4-HMAC-SHA256 ')) {
      return fail(SignatureFailure.Malformed, 'Only AWS4-HMAC-SHA256 signatures are accepted');
    }
    const signed = /SignedHeaders=([^,\s]+)/.exec(authorization)?.[1];
    const signature = /Signature=([0-9a-f]{64})/.exec(authorization)?.[1];
    if (!signed || !signature) return fail(SignatureFailure.Malformed, 'Authorization lacks SignedHeaders or Signature');
    signedHeaderNames = signed.split(';');
    providedSignature = signature;
    amzDate = headerValue(input.headers, 'x-amz-date');
  } else {
    const signed = first(query['X-Amz-SignedHeaders']);
    const signature = first(query['X-Amz-Signature']);
    amzDate = first(query['X-Amz-Date']);
    const expires = Number(first(query['X-Amz-Expires']) ?? NaN);
    if (first(query['X-Amz-Algorithm']) !== 'AWS4-HMAC-SHA256' || !signed || !signature || !Number.isInteger(expires)) {
      return fail(SignatureFailure.Malformed, 'Presigned URL lacks X-Amz-SignedHeaders, X-Amz-Signature or X-Amz-Expires');
    }
    signedHeaderNames = signed.split(';');
    providedSignature = signature;
    expiresSeconds = expires;
  }
  if (!signedHeaderNames.includes('host')) return fail(SignatureFailure.Malformed, "SignedHeaders must include 'host'");

  const signingDate = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!signingDate) return fail(SignatureFailure.Malformed, 'Missing or malformed X-Amz-Date');
  if (amzDate?.slice(0, 8) !== scope.date) {
    return fail(SignatureFailure.Malformed, 'The credential scope date does not match X-Amz-Date');
  }
  const now = Date.now();
  if (expiresSeconds !== undefined) {
    if (now > signingDate.getTime() + expiresSeconds * 1000) return fail(SignatureFailure.Expired, 'Request has expired');
  } else if (Math.abs(now - signingDate.getTime()) > MAX_CLOCK_SKEW_MS) {
    return fail(SignatureFailure.Expired, 'Signature expired: the signing time is more than 15 minutes from now');
  }

  const secretAccessKey = credentials.secretFor(scope.accessKeyId);
  if (secretAccessKey === undefined) {
    return fail(SignatureFailure.UnknownAccessKey, 'The security token included in the request is invalid');
  }

  const sessionToken = authorization ? headerValue(input.headers, 'x-amz-security-token') : first(query['X-Amz-Security-Token']);
  const issuedToken = credentials.sessionTokenFor?.(scope.accessKeyId);
  if (sessionToken !== issuedToken) {
    return fail(SignatureFailure.InvalidToken, 'The security token included in the request is invalid');
  }

  // Only the headers the client signed take part, so proxies adding headers do not matter.
  const headers: Record<string, string> = {};
  for (const name of signedHeaderNames) {
    const value = headerValue(input.headers, name);
    if (value === undefined) return fail(SignatureFailure.Mismatch, `Signed header '${name}' is missing`);
    headers[name] = value;
  }
  const isS3 = scope.service === 's3';
  const declaredHash = headerValue(input.headers, 'x-amz-content-sha256');
  const streamed = expect?.payload === 'streamed';
  if (authorization && isS3 && expect && declaredHash === undefined) {
    return fail(SignatureFailure.Malformed, 'Missing required header for this request: x-amz-content-sha256');
  }
  if (declaredHash !== undefined && !streamed) {
    // S3 alone lets a client leave the payload unsigned (UNSIGNED-PAYLOAD, STREAMING-…);
    // every other service hashes the body, so any other declared value must be that hash.
    const hex = /^[0-9a-f]{64}$/.test(declaredHash);
    if ((hex || !isS3) && payloadHashOf(input.body) !== declaredHash) {
      return fail(SignatureFailure.PayloadHashMismatch, 'The provided x-amz-content-sha256 header does not match what was computed');
    }
  }
  const { HttpRequest } = await loadSigner();
  const signer = await signerFor(scope.accessKeyId, secretAccessKey, sessionToken, scope.region, scope.service);
  const hostHeader = headers.host ?? '';
  const request = new HttpRequest({
    method: input.method.toUpperCase(),
    protocol: 'http:',
    hostname: hostHeader.replace(/:\d+$/, ''),
    path,
    query: {},
    headers,
    body: input.body,
  });
  const signableHeaders = new Set(signedHeaderNames);
  let recomputed: string | undefined;
  if (authorization) {
    request.query = query;
    const signedRequest = await signer.sign(request, { signingDate, signableHeaders });
    recomputed = /Signature=([0-9a-f]{64})/.exec(String(signedRequest.headers.authorization))?.[1];
  } else {
    const { 'X-Amz-Signature': _signature, 'X-Amz-Algorithm': _a, 'X-Amz-Credential': _c, 'X-Amz-Date': _d, 'X-Amz-Expires': _e, 'X-Amz-SignedHeaders': _s, 'X-Amz-Security-Token': _t, ...rest } = query;
    request.query = rest;
    // A presigned URL carries no payload hash; S3 signs UNSIGNED-PAYLOAD, others the empty body.
    const unhoistable = new Set(signedHeaderNames);
    if (isS3) {
      request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      unhoistable.add('x-amz-content-sha256');
    }
    const presignedRequest = await signer.presign(request, {
      signingDate,
      ...(expiresSeconds === undefined ? {} : { expiresIn: expiresSeconds }),
      signableHeaders,
      unsignableHeaders: new Set(['x-amz-content-sha256']),
      unhoistableHeaders: unhoistable,
    });
    recomputed = first(presignedRequest.query?.['X-Amz-Signature'] ?? undefined);
  }
  if (!recomputed || !equalHex(recomputed, providedSignature)) {
    return fail(
      SignatureFailure.Mismatch,
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  }
  return { ok: true, accessKeyId: scope.accessKeyId, scope };
}

/** The SigV4 payload hash of a body: lowercase hex SHA-256. */
export function payloadHashOf(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Splits `path?query` without decoding either part. */
export function splitUrl(url: string | undefined): { path: string; query: string } {
  const target = url ?? '/';
  const at = target.indexOf('?');
  return at < 0 ? { path: target || '/', query: '' } : { path: target.slice(0, at) || '/', query: target.slice(at + 1) };
}

/**
 * Decodes a query string the way SigV4 reads it: `+` is a literal plus (AWS clients encode
 * spaces as `%20`), repeated keys become arrays.
 */
export function parseQuery(raw: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  if (!raw) return query;
  for (const part of raw.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = safeDecode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : safeDecode(part.slice(eq + 1));
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else query[key] = [existing, value];
  }
  return query;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : String(value);
}

function parseAmzDate(text: string): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

function equalHex(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
