/**
 * Cancelling through the stack's API: a SigV4-signed `POST` (service `execute-api`), as AWS
 * authorizes it, so the client needs no table access to cancel.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsClients } from '../aws.ts';
import { API } from '../contract.ts';
import { DispatchNotFoundError, ErrorCode, ValenceError } from '../errors.ts';
import type { CancelReport } from '../runtime/cancel.ts';

/** Options of a cancel request. */
export interface CancelOptions {
  /** Node ids, or paths into sublattices (`"5/2"`); absent means the whole dispatch; empty is refused. */
  readonly taskIds?: readonly (number | string)[];
  /** Why; recorded with the request and passed to the services. */
  readonly reason?: string;
  /**
   * Skip the grace period: running work is killed at once instead of being signalled and
   * given its `graceSeconds` to stop (Temporal's terminate beside its cancel). For an electron
   * that ignores its signal, or when the seconds of a large Batch job matter more than its
   * cleanup. Work a graceful cancel is already stopping is escalated. @default false
   */
  readonly force?: boolean;
  /**
   * Wait for the final report when the endpoint accepted the request without finishing it
   * (202: the sweeper finishes it). `false` returns {@link CancelAccepted} at once then.
   * @default true
   */
  readonly wait?: boolean;
  /** Called with the request's progress while waiting after a 202. */
  readonly onProgress?: (progress: CancelProgress) => void;
  /** How long to wait for the final report after a 202. @default 120 000 ms */
  readonly timeoutMs?: number;
}

/** The answer to a cancel the endpoint accepted but did not finish within its request. */
export interface CancelAccepted {
  readonly dispatchId: string;
  readonly requestId: string;
  readonly accepted: true;
}

/** One cancel request as `GET /dispatches/{id}/cancels/{requestId}` returns it. */
export interface CancelProgress {
  readonly dispatchId: string;
  readonly requestId: string;
  /** `OPEN` while it is being worked on, `DONE` once `report` is final. */
  readonly state: 'OPEN' | 'DONE';
  readonly requestedAt: string;
  readonly attempts?: number;
  readonly progressAt?: string;
  /** The last failure of an attempt (the sweeper tries again). */
  readonly lastError?: string;
  readonly finishedAt?: string;
  /** How far an open request got: targets done out of all, and the step it is in. */
  readonly progress?: { readonly phase: string; readonly done: number; readonly total: number };
  readonly report?: CancelReport;
}

/** The cancel endpoint refused a request (400 or 403); `status` is its HTTP status. */
export class CancelRequestError extends ValenceError {
  override readonly name = 'CancelRequestError';
  constructor(
    /** The HTTP status the endpoint answered with. */
    readonly status: number,
    message: string,
  ) {
    super(ErrorCode.CANCEL_REFUSED, message);
  }
}

function baseUrl(apiUrl: string): string {
  return apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`;
}

async function readJson(response: Response): Promise<{ text: string; payload: unknown }> {
  const text = await response.text();
  try {
    return { text, payload: JSON.parse(text) as unknown };
  } catch {
    return { text, payload: { message: text } };
  }
}

function refused(status: number, payload: unknown, text: string): CancelRequestError {
  const message = (payload as { message?: string }).message ?? text;
  return new CancelRequestError(status, `Cancel request refused (${status}): ${message}`);
}

/**
 * Sends the cancel request for `dispatchId` to the API at `apiUrl`. A 200 carries the final
 * report; a 202 means the request is recorded and finishes outside it: then, unless
 * `wait: false`, polls {@link getCancelReport} until the report is final.
 */
export async function requestCancel(aws: AwsClients, apiUrl: string, dispatchId: string, options: CancelOptions & { readonly wait: false }): Promise<CancelReport | CancelAccepted>;
export async function requestCancel(aws: AwsClients, apiUrl: string, dispatchId: string, options: CancelOptions): Promise<CancelReport>;
export async function requestCancel(aws: AwsClients, apiUrl: string, dispatchId: string, options: CancelOptions): Promise<CancelReport | CancelAccepted> {
  const url = new URL(API.cancelPath.slice(1).replace('{id}', encodeURIComponent(dispatchId)), baseUrl(apiUrl));
  const body = JSON.stringify({ ...(options.taskIds ? { taskIds: options.taskIds } : {}), ...(options.reason ? { reason: options.reason } : {}), ...(options.force ? { force: true } : {}) });
  const response = await sendWithRetries(aws, url, 'POST', body);
  const { text, payload } = await readJson(response);
  if (response.status === 200) return payload as CancelReport;
  if (response.status === 404) throw new DispatchNotFoundError(dispatchId);
  if (response.status !== 202) throw refused(response.status, payload, text);
  const accepted: CancelAccepted = { dispatchId, requestId: (payload as { requestId: string }).requestId, accepted: true };
  if (options.wait === false) return accepted;
  return waitForReport(aws, apiUrl, accepted, options);
}

async function waitForReport(aws: AwsClients, apiUrl: string, accepted: CancelAccepted, options: CancelOptions): Promise<CancelReport> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  // Short first polls: most accepted cancels finish within a second or two of the 202.
  for (let delay = 100; ; delay = Math.min(Math.round(delay * 1.5), 1_000)) {
    const progress = await getCancelReport(aws, apiUrl, accepted.dispatchId, accepted.requestId);
    options.onProgress?.(progress);
    if (progress.state === 'DONE' && progress.report) return progress.report;
    if (Date.now() + delay > deadline) {
      throw new CancelRequestError(202, `Cancel request ${accepted.requestId} was accepted but not finished within ${options.timeoutMs ?? 120_000} ms${progress.lastError ? ` (last error: ${progress.lastError})` : ''}; its report is at getCancelReport`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Reads one cancel request: its final report once `state` is `DONE`, else its progress so far. */
export async function getCancelReport(aws: AwsClients, apiUrl: string, dispatchId: string, requestId: string): Promise<CancelProgress> {
  const url = new URL(API.cancelReportPath.slice(1).replace('{id}', encodeURIComponent(dispatchId)).replace('{requestId}', encodeURIComponent(requestId)), baseUrl(apiUrl));
  const response = await sendWithRetries(aws, url, 'GET', undefined);
  const { text, payload } = await readJson(response);
  if (response.status === 200) return payload as CancelProgress;
  if (response.status === 404 && !(payload as { message?: string }).message?.includes('cancel request')) throw new DispatchNotFoundError(dispatchId);
  throw refused(response.status, payload, text);
}

/** Attempts of one API call, the first included: as the AWS SDK's standard retry mode. */
const API_ATTEMPTS = 5;
/** Backoff cap between attempts, and the longest `Retry-After` honoured. */
const API_MAX_DELAY_MS = 20_000;

/**
 * Sends a signed API request, retrying what the API answers when it did not run the request:
 * 429 (API Gateway's throttling answers before the function runs, so the cancel was not
 * recorded and a retry cannot cancel twice). A read (`GET`) is also retried on 502, 503 and
 * 504 and on a network failure, since repeating it changes nothing. A `POST` answered 502 or
 * 504 may have run, so it is not repeated: its error says what happened. Delays grow
 * exponentially with full jitter (the AWS SDK's standard mode), or follow `Retry-After`;
 * each attempt is signed again, since a signature is only valid for a few minutes.
 */
async function sendWithRetries(aws: AwsClients, url: URL, method: 'GET' | 'POST', body: string | undefined): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    let response: Response;
    try {
      response = await signedFetch(aws, url, method, body);
    } catch (error) {
      if (method !== 'GET' || attempt >= API_ATTEMPTS) throw error;
      await backoff(attempt, undefined);
      continue;
    }
    const retryable = response.status === 429 || (method === 'GET' && [502, 503, 504].includes(response.status));
    if (!retryable || attempt >= API_ATTEMPTS) return response;
    // The body is not needed: read it so the connection is released.
    await response.arrayBuffer().catch(() => undefined);
    await backoff(attempt, response.headers.get('retry-after'));
  }
}

function backoff(attempt: number, retryAfter: string | null | undefined): Promise<void> {
  const seconds = retryAfter ? Number(retryAfter) : NaN;
  const delay = Number.isFinite(seconds) && seconds >= 0
    ? Math.min(seconds * 1000, API_MAX_DELAY_MS)
    : Math.random() * Math.min(API_MAX_DELAY_MS, 100 * 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, delay));
}

/** Sends a SigV4-signed request (service `execute-api`) with the client's credentials. */
async function signedFetch(aws: AwsClients, url: URL, method: string, body: string | undefined): Promise<Response> {
  const credentials = aws.config.credentials ?? (await defaultProvider()());
  const signer = new SignatureV4({ service: 'execute-api', region: aws.config.region, credentials, sha256: Sha256 });
  const query: Record<string, string> = {};
  url.searchParams.forEach((value, key) => (query[key] = value));
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query,
    headers: { host: url.host, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body } : {}),
  });
  return fetch(url, { method, headers: signed.headers as Record<string, string>, ...(body !== undefined ? { body } : {}) });
}
