/**
 * Cancelling through the stack's API: a SigV4-signed `POST` (service `execute-api`), as AWS
 * authorizes it, so the client needs no table access to cancel.
 */
import type { AwsClients } from '../aws.ts';
import { apiUrlOf, readJson, sendWithRetries } from './api.ts';
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
  /**
   * Where a large final report is (a presigned GET, valid 15 minutes): the endpoint hands reports
   * stored in S3 over this way, because past about 45,000 nodes one would not fit a Lambda
   * response. {@link getCancelReport} follows it and fills `report`.
   */
  readonly reportUrl?: string;
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
  const url = apiUrlOf(apiUrl, API.cancelPath, { id: dispatchId });
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
  const url = apiUrlOf(apiUrl, API.cancelReportPath, { id: dispatchId, requestId });
  const response = await sendWithRetries(aws, url, 'GET', undefined);
  const { text, payload } = await readJson(response);
  if (response.status === 200) {
    const progress = payload as CancelProgress;
    if (progress.report || !progress.reportUrl) return progress;
    const object = await fetch(progress.reportUrl);
    if (!object.ok) throw new CancelRequestError(object.status, `Reading the report of cancel request ${requestId} failed (${object.status})`);
    return { ...progress, report: (await object.json()) as CancelReport };
  }
  if (response.status === 404 && !(payload as { message?: string }).message?.includes('cancel request')) throw new DispatchNotFoundError(dispatchId);
  throw refused(response.status, payload, text);
}
