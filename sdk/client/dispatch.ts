/**
 * Dispatching through the stack's API (issue 14): the client checks and serializes the
 * arguments, uploads them through a presigned S3 URL when they are too large to send inline,
 * and sends `POST /dispatches` signed as `execute-api`. The deployed handler builds the graph
 * with the deployed code, records the dispatch and starts its execution; the caller needs
 * `execute-api:Invoke` on the dispatch methods and no table, state-machine or bucket access.
 *
 * A dispatch request carries a client token, so it is retried on API Gateway's 429, on 5xx
 * and on a lost connection: the handler answers a repeated token with the first attempt's
 * dispatch, and never starts a second run.
 */
import { randomUUID } from 'node:crypto';
import { API } from '../contract.ts';
import { ErrorCode, ValenceError, ValidationCode, ValidationError } from '../errors.ts';
import type { AwsClients } from '../aws.ts';
import { graphHash } from '../model/graph.ts';
import type { Lattice } from '../model/lattice.ts';
import { planGraph } from '../model/shape.ts';
import { NotDeployedError, serializeArguments, StaleDeployError } from '../runtime/start-dispatch.ts';
import { apiUrlOf, readJson, sendWithRetries } from './api.ts';

export { NotDeployedError, StaleDeployError } from '../runtime/start-dispatch.ts';

/** The dispatch endpoint, or the upload of the arguments, refused the request; `status` is the HTTP status. */
export class DispatchRequestError extends ValenceError {
  override readonly name = 'DispatchRequestError';
  constructor(
    /** The HTTP status the endpoint (or S3, for an upload) answered with. */
    readonly status: number,
    message: string,
  ) {
    super(ErrorCode.DISPATCH_REFUSED, message);
  }
}

/** A presigned upload, as `POST /uploads` answers. */
interface Upload {
  readonly uploadId: string;
  readonly url: string;
  readonly headers: Record<string, string>;
}

/**
 * Starts a run of `lattice` with `args` through the API at `apiUrl`; resolves with the
 * dispatch id once the execution started. Bad arguments are refused here, before anything is
 * sent; the graph the local lattice builds goes with the request as its hash, so that a
 * lattice edited since the deploy is refused ({@link StaleDeployError}) rather than run as deployed.
 */
export async function requestDispatch(aws: AwsClients, apiUrl: string, lattice: Lattice<unknown[], unknown>, args: readonly unknown[]): Promise<string> {
  const serializedArgs = serializeArguments(lattice, args);
  const hash = graphHash(planGraph(lattice, args).graph);
  const bytes = Buffer.byteLength(serializedArgs, 'utf8');
  if (bytes > API.maxUploadBytes) {
    throw new ValidationError(ValidationCode.INVALID_OPTION, `lattice "${lattice.name}": the arguments serialize to ${bytes} bytes; a dispatch's arguments may be at most ${API.maxUploadBytes} bytes. Store large inputs in S3 and pass their keys.`, { lattice: lattice.name });
  }
  const argsField = bytes <= API.maxInlineArgsBytes ? { args: serializedArgs } : { argsUpload: await uploadArguments(aws, apiUrl, serializedArgs, bytes) };
  // The client token makes the request safe to repeat after a 5xx or a lost answer: a retry
  // is answered with the first attempt's dispatch, never a second run.
  const body = JSON.stringify({ lattice: lattice.name, ...argsField, graphHash: hash, clientToken: randomUUID() });
  const response = await sendWithRetries(aws, apiUrlOf(apiUrl, API.dispatchPath), 'POST', body, { idempotent: true });
  const { text, payload } = await readJson(response);
  if (response.status === 201) return (payload as { dispatchId: string }).dispatchId;
  throw dispatchRefused(lattice.name, response.status, payload, text);
}

/** PUTs the serialized arguments to a presigned URL from `POST /uploads`; resolves with the upload id. */
async function uploadArguments(aws: AwsClients, apiUrl: string, serializedArgs: string, bytes: number): Promise<string> {
  const response = await sendWithRetries(aws, apiUrlOf(apiUrl, API.uploadPath), 'POST', JSON.stringify({ bytes }));
  const { text, payload } = await readJson(response);
  if (response.status !== 200) throw new DispatchRequestError(response.status, `Upload of the arguments refused (${response.status}): ${(payload as { message?: string }).message ?? text}`);
  const upload = payload as Upload;
  // fetch sets Content-Length from the body itself; it is the size the URL was signed for.
  const headers = Object.fromEntries(Object.entries(upload.headers).filter(([name]) => name.toLowerCase() !== 'content-length'));
  const put = await fetch(upload.url, { method: 'PUT', headers, body: serializedArgs });
  if (!put.ok) throw new DispatchRequestError(put.status, `Upload of the arguments failed (${put.status}): ${(await put.text()).slice(0, 500)}`);
  await put.arrayBuffer().catch(() => undefined);
  return upload.uploadId;
}

/** The error a refused dispatch answer stands for: the same classes a direct dispatch threw. */
function dispatchRefused(latticeName: string, status: number, payload: unknown, text: string): Error {
  const { message = text, code } = payload as { message?: string; code?: string };
  if (code === ErrorCode.NOT_DEPLOYED) return new NotDeployedError(ErrorCode.NOT_DEPLOYED, message);
  if (code === ErrorCode.STALE_DEPLOY) return new StaleDeployError(ErrorCode.STALE_DEPLOY, message);
  if (code !== undefined && (Object.values(ValidationCode) as string[]).includes(code)) return new ValidationError(code as ValidationCode, message, { lattice: latticeName });
  return new DispatchRequestError(status, `Dispatch request refused (${status}): ${message}`);
}
