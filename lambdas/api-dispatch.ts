/**
 * The API's dispatch routes, served by the API handler (lambdas/cancel.ts) beside cancel and
 * status: `POST /dispatches` starts a run of a deployed lattice, `POST /uploads` hands out a
 * presigned S3 `PUT` for arguments too large to send inline, and `GET /dispatches/{id}` can
 * carry the result. The caller needs `execute-api:Invoke` on these methods and nothing else:
 * no table write, no state machine, no bucket (issue 14: a caller that may write the table
 * can forge a node item and a job handle).
 *
 * The graph is built here, by the deployed workflows module, from the decoded arguments;
 * arguments are decoded with valence's serialization (devalue: data only, no code runs).
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { API, UPLOAD_PREFIX } from '../sdk/contract.ts';
import { ErrorCode, ValenceError, ValidationError } from '../sdk/errors.ts';
import { defaultLatticeRegistry, type Lattice } from '../sdk/model/lattice.ts';
import type { RuntimeContext } from '../sdk/runtime/context.ts';
import { describeDispatch } from '../sdk/runtime/describe.ts';
import { payloadKeys } from '../sdk/runtime/payloads.ts';
import { deserialize } from '../sdk/runtime/serialization.ts';
import { ensureExecutionStarted, launchDispatch, NotDeployedError, prepareDispatch, StaleDeployError, type PreparedDispatch } from '../sdk/runtime/start-dispatch.ts';
import { WorkflowLookupError } from '../sdk/runtime/workflows.ts';

/** A proxy answer, as the API handler returns it. */
export interface RouteAnswer {
  readonly statusCode: number;
  readonly body: unknown;
}

/** A dispatch or upload request the endpoint refuses; answered with `status` and the stable `code`. */
export class DispatchRouteError extends ValenceError {
  override readonly name = 'DispatchRouteError';
  constructor(
    /** The HTTP status to answer with. */
    readonly status: 400 | 404 | 409 | 413,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

const LATTICE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const GRAPH_HASH = /^[0-9a-f]{16,128}$/;
const UPLOAD_ID = /^[0-9a-f-]{36}$/;

function refuse(message: string, status: 400 | 413 = 400): DispatchRouteError {
  return new DispatchRouteError(status, ErrorCode.DISPATCH_REFUSED, message);
}

/** The body as a JSON object, refused (413) before it is decoded or parsed when it is larger than `limit`. */
function jsonObject(body: string | null | undefined, isBase64Encoded: boolean | undefined, limit: number, shape: string): Record<string, unknown> {
  const raw = body ?? '';
  const bytes = isBase64Encoded ? Math.floor((raw.length * 3) / 4) : Buffer.byteLength(raw, 'utf8');
  if (bytes > limit) throw refuse(`The request body is ${bytes} bytes; it may be at most ${limit} bytes (send larger arguments through ${API.uploadPath})`, 413);
  const text = isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text === '' ? 'null' : text);
  } catch {
    throw refuse('The request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw refuse(`The request body must be a JSON object ${shape}`);
  return parsed as Record<string, unknown>;
}

function onlyFields(record: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(record).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw refuse(`Unknown field(s) in the request body: ${unknown.join(', ')}; expected ${allowed.join(', ')}`);
}

/** What a dispatch request asks for, checked. */
interface DispatchRequest {
  readonly lattice: string;
  readonly args?: string;
  readonly argsUpload?: string;
  readonly graphHash?: string;
  readonly clientToken?: string;
}

function parseDispatchRequest(body: string | null | undefined, isBase64Encoded: boolean | undefined): DispatchRequest {
  const record = jsonObject(body, isBase64Encoded, API.maxDispatchBodyBytes, '{ lattice, args | argsUpload, graphHash?, clientToken? }');
  onlyFields(record, ['lattice', 'args', 'argsUpload', 'graphHash', 'clientToken']);
  const { lattice, args, argsUpload, graphHash, clientToken } = record;
  if (typeof lattice !== 'string' || !LATTICE_NAME.test(lattice)) throw refuse(`"lattice" must be a lattice name (1-80 of A-Z a-z 0-9 _ -), got ${JSON.stringify(lattice)}`);
  if ((args === undefined) === (argsUpload === undefined)) throw refuse('Give exactly one of "args" (the serialized arguments) and "argsUpload" (the id POST /uploads returned)');
  if (args !== undefined && typeof args !== 'string') throw refuse('"args" must be a string: the arguments in valence\'s serialization format');
  if (typeof args === 'string' && Buffer.byteLength(args, 'utf8') > API.maxInlineArgsBytes) {
    throw refuse(`"args" is ${Buffer.byteLength(args, 'utf8')} bytes; inline arguments may be at most ${API.maxInlineArgsBytes} bytes (upload larger ones through ${API.uploadPath})`, 413);
  }
  if (argsUpload !== undefined && (typeof argsUpload !== 'string' || !UPLOAD_ID.test(argsUpload))) throw refuse(`"argsUpload" must be an upload id from ${API.uploadPath}, got ${JSON.stringify(argsUpload)}`);
  if (graphHash !== undefined && (typeof graphHash !== 'string' || !GRAPH_HASH.test(graphHash))) throw refuse(`"graphHash" must be a lowercase hex graph hash, got ${JSON.stringify(graphHash)}`);
  if (clientToken !== undefined && (typeof clientToken !== 'string' || !UPLOAD_ID.test(clientToken))) throw refuse(`"clientToken" must be a UUID the caller chose for this dispatch, got ${JSON.stringify(clientToken)}`);
  return {
    ...(typeof clientToken === 'string' ? { clientToken } : {}),
    lattice,
    ...(typeof args === 'string' ? { args } : {}),
    ...(typeof argsUpload === 'string' ? { argsUpload } : {}),
    ...(typeof graphHash === 'string' ? { graphHash } : {}),
  };
}

/** The deployed lattice named `name`, or a 404 naming it. */
async function deployedLattice(ctx: RuntimeContext, name: string, loadWorkflows: () => Promise<void>): Promise<Lattice<unknown[], unknown>> {
  await loadWorkflows();
  const lattice = defaultLatticeRegistry.get(name);
  if (lattice) return lattice as Lattice<unknown[], unknown>;
  throw new DispatchRouteError(
    404,
    ErrorCode.NOT_DEPLOYED,
    `Lattice "${name}" is not deployed in stack "${ctx.config.stackName}": its workflows module defines no lattice of that name. Deploy the module that defines it: npx cdk deploy -c workflows=<module.ts>, or start the local cloud with --workflows <module.ts>`,
  );
}

/** The uploaded arguments' text, refused when missing or larger than the limit (checked before the body is read). */
async function readUpload(ctx: RuntimeContext, uploadId: string): Promise<string> {
  const key = `${UPLOAD_PREFIX}${uploadId}`;
  const bucket = ctx.config.bucket;
  try {
    const head = await ctx.aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: ctx.signal });
    if ((head.ContentLength ?? 0) > API.maxUploadBytes) throw refuse(`The upload ${uploadId} is ${head.ContentLength} bytes; arguments may be at most ${API.maxUploadBytes} bytes`, 413);
    const object = await ctx.aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: ctx.signal });
    return (await object.Body?.transformToString('utf8')) ?? '';
  } catch (error) {
    const name = (error as { name?: string }).name;
    // Without s3:ListBucket (the handler has none) S3 answers a missing object's HEAD with 403.
    if (name === 'NotFound' || name === 'NoSuchKey' || name === 'Forbidden' || name === 'AccessDenied') {
      throw refuse(`No upload ${uploadId}: PUT the arguments to the URL ${API.uploadPath} returned (it is valid ${API.uploadUrlSeconds} s) before dispatching`);
    }
    throw error;
  }
}

/** Decodes serialized arguments: an array, one value per parameter. */
function decodeArguments(text: string, lattice: Lattice<unknown[], unknown>): unknown[] {
  let args: unknown;
  try {
    args = deserialize(text);
  } catch (error) {
    // devalue's parse errors and valence's SerializationError alike: the text is the caller's.
    throw refuse(`The arguments of lattice "${lattice.name}" cannot be decoded: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!Array.isArray(args)) throw refuse(`The arguments of lattice "${lattice.name}" must serialize an array (one value per parameter)`);
  return args;
}

/**
 * `POST /dispatches`: checks the request, decodes the arguments (inline, or the upload they
 * were put to), and starts the dispatch with the deployed lattice. 201 `{ dispatchId, lattice }`.
 * Nothing is written before every check passed; an upload is deleted once its dispatch stored
 * its own copy of the arguments.
 */
export async function dispatchRoute(
  ctx: RuntimeContext,
  event: { readonly body?: string | null; readonly isBase64Encoded?: boolean },
  loadWorkflows: () => Promise<void>,
): Promise<RouteAnswer> {
  const request = parseDispatchRequest(event.body, event.isBase64Encoded);
  const lattice = await deployedLattice(ctx, request.lattice, loadWorkflows);
  // A retry of a request that already created its dispatch (its upload may be deleted by now).
  const earlier = request.clientToken ? await ctx.store.dispatchOfToken(request.clientToken, ctx.signal) : undefined;
  if (earlier !== undefined) return replay(ctx, earlier, lattice.name);
  const serializedArgs = request.args ?? (await readUpload(ctx, request.argsUpload!));
  const args = decodeArguments(serializedArgs, lattice);
  let prepared: PreparedDispatch;
  try {
    prepared = await prepareDispatch(ctx, lattice, { args, serializedArgs, ...(request.graphHash ? { callerGraphHash: request.graphHash } : {}) });
  } catch (error) {
    if (error instanceof ValidationError) throw new DispatchRouteError(400, error.code, error.message);
    if (error instanceof NotDeployedError || error instanceof WorkflowLookupError) throw new DispatchRouteError(404, ErrorCode.NOT_DEPLOYED, error.message);
    if (error instanceof StaleDeployError) throw new DispatchRouteError(409, ErrorCode.STALE_DEPLOY, error.message);
    throw error;
  }
  // Every check passed: only now is anything written. With a client token, the first request
  // claims it; a concurrent retry of the same request answers with that request's dispatch.
  const fresh = randomUUID();
  const dispatchId = request.clientToken ? await ctx.store.claimDispatchToken(request.clientToken, fresh, ctx.now().toISOString(), ctx.signal) : fresh;
  if (dispatchId !== fresh) return replay(ctx, dispatchId, lattice.name);
  await launchDispatch(ctx, prepared, dispatchId);
  if (request.argsUpload) {
    // Best effort: the bucket's lifecycle rule expires what a failed delete leaves.
    await ctx.aws.s3.send(new DeleteObjectCommand({ Bucket: ctx.config.bucket, Key: `${UPLOAD_PREFIX}${request.argsUpload}` })).catch(() => undefined);
  }
  return { statusCode: 201, body: { dispatchId, lattice: lattice.name } };
}

/** How long a retry waits for the first request's dispatch item to appear. */
const REPLAY_WAIT_MS = 3_000;

/**
 * The answer to a retried dispatch request whose token is claimed: the first request's
 * dispatch, its execution started if that request was lost before starting it. When the
 * dispatch item does not appear (the first request is still writing, or died partway), a 409
 * says so; nothing is started twice.
 */
async function replay(ctx: RuntimeContext, dispatchId: string, latticeName: string): Promise<RouteAnswer> {
  const until = Date.now() + REPLAY_WAIT_MS;
  for (;;) {
    const dispatch = await ctx.store.getDispatch(dispatchId, ctx.signal);
    if (dispatch) {
      await ensureExecutionStarted(ctx, dispatch);
      return { statusCode: 201, body: { dispatchId, lattice: dispatch.lattice, replayed: true } };
    }
    if (Date.now() >= until) {
      throw new DispatchRouteError(
        409,
        ErrorCode.DISPATCH_REFUSED,
        `An earlier request with this clientToken is creating dispatch ${dispatchId} of lattice "${latticeName}", or stopped partway; it was not started twice. If getResult("${dispatchId}") finds no dispatch, dispatch again.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `POST /uploads` with `{ bytes }`: a presigned `PUT` of exactly that many bytes (the
 * `Content-Length` is signed, so S3 refuses any other size) to a fresh key under
 * {@link UPLOAD_PREFIX}, valid {@link API.uploadUrlSeconds} seconds.
 */
export async function uploadRoute(ctx: RuntimeContext, event: { readonly body?: string | null; readonly isBase64Encoded?: boolean }): Promise<RouteAnswer> {
  const record = jsonObject(event.body, event.isBase64Encoded, 1024, '{ bytes }');
  onlyFields(record, ['bytes']);
  const bytes = record['bytes'];
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 1) throw refuse(`"bytes" must be the upload's size, a positive integer, got ${JSON.stringify(bytes)}`);
  if (bytes > API.maxUploadBytes) throw refuse(`"bytes" is ${bytes}; arguments may be at most ${API.maxUploadBytes} bytes`, 413);
  const uploadId = randomUUID();
  const url = await getSignedUrl(ctx.aws.s3, new PutObjectCommand({ Bucket: ctx.config.bucket, Key: `${UPLOAD_PREFIX}${uploadId}`, ContentLength: bytes }), {
    expiresIn: API.uploadUrlSeconds,
    signableHeaders: new Set(['content-length']),
  });
  return {
    statusCode: 200,
    body: { uploadId, url, method: 'PUT', headers: { 'content-length': String(bytes) }, expiresAt: new Date(Date.now() + API.uploadUrlSeconds * 1000).toISOString() },
  };
}

/**
 * `GET /dispatches/{id}`: the dispatch's status and nodes; with `?result=true` also its
 * result, serialized (`resultText`, for the client to decode: it may hold a Map, a Date, a
 * BigInt), or as a presigned `GET` (`resultUrl`) when larger than {@link API.maxInlineResultBytes}.
 */
export async function statusRoute(ctx: RuntimeContext, dispatchId: string, withResult: boolean): Promise<RouteAnswer> {
  const described = await describeDispatch(ctx, dispatchId, { includeResult: false });
  const body: Record<string, unknown> = { ...described, result: undefined, error: described.error ? { name: described.error.name, message: described.error.message, ...(described.error.code ? { code: described.error.code } : {}) } : undefined };
  const dispatch = withResult ? await ctx.store.getDispatch(dispatchId, ctx.signal) : undefined;
  if (dispatch?.hasResult) {
    const key = payloadKeys.result(dispatchId);
    const head = await ctx.aws.s3.send(new HeadObjectCommand({ Bucket: ctx.config.bucket, Key: key }), { abortSignal: ctx.signal });
    if ((head.ContentLength ?? 0) <= API.maxInlineResultBytes) body['resultText'] = await ctx.payloads.getText(key, ctx.signal);
    else body['resultUrl'] = await getSignedUrl(ctx.aws.s3, new GetObjectCommand({ Bucket: ctx.config.bucket, Key: key }), { expiresIn: API.uploadUrlSeconds });
  }
  return { statusCode: 200, body };
}
