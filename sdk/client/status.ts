/**
 * Reading a dispatch through the stack's API (`GET /dispatches/{id}`), for a client connected
 * with `apiUrl` alone: a caller granted `grantDispatch` or `grantReadStatus` has
 * `execute-api:Invoke` and no table or bucket access. The result comes serialized (valence's
 * format keeps Maps, Dates and BigInts), inline or, when large, from a presigned URL.
 */
import { API } from '../contract.ts';
import { DispatchNotFoundError, ErrorCode, ValenceError } from '../errors.ts';
import type { AwsClients } from '../aws.ts';
import type { DispatchResult } from '../runtime/describe.ts';
import { deserialize } from '../runtime/serialization.ts';
import { isTerminalDispatchStatus } from '../status.ts';
import { apiUrlOf, readJson, sendWithRetries } from './api.ts';
import { DispatchRequestError } from './dispatch.ts';

/** `GET /dispatches/{id}` as the handler answers it. */
interface StatusAnswer extends Omit<DispatchResult, 'result' | 'error'> {
  readonly error?: { readonly name: string; readonly message: string; readonly code?: string };
  readonly resultText?: string;
  readonly resultUrl?: string;
}

/** Reads dispatch `dispatchId` through the API; with `withResult`, its result too. */
export async function readDispatchThroughApi<R>(aws: AwsClients, apiUrl: string, dispatchId: string, withResult: boolean): Promise<DispatchResult<R>> {
  const url = apiUrlOf(apiUrl, API.statusPath, { id: dispatchId });
  if (withResult) url.searchParams.set('result', 'true');
  const response = await sendWithRetries(aws, url, 'GET', undefined);
  const { text, payload } = await readJson(response);
  if (response.status === 404) throw new DispatchNotFoundError(dispatchId);
  if (response.status !== 200) throw new DispatchRequestError(response.status, `Reading dispatch ${dispatchId} refused (${response.status}): ${(payload as { message?: string }).message ?? text}`);
  const { resultText, resultUrl, error, ...rest } = payload as StatusAnswer;
  let serialized = resultText;
  if (serialized === undefined && resultUrl !== undefined) {
    const object = await fetch(resultUrl);
    if (!object.ok) throw new DispatchRequestError(object.status, `Reading the result of dispatch ${dispatchId} failed (${object.status})`);
    serialized = await object.text();
  }
  return {
    ...rest,
    result: serialized === undefined ? undefined : deserialize<R>(serialized),
    error: error ? Object.assign(new Error(error.message), { name: error.name, ...(error.code ? { code: error.code } : {}) }) : undefined,
  };
}

/** Polls the API until the dispatch is terminal (backing off to 500 ms), then reads it with its result. */
export async function waitThroughApi<R>(aws: AwsClients, apiUrl: string, dispatchId: string, timeoutMs: number): Promise<DispatchResult<R>> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(500, delay * 2)) {
    const read = await readDispatchThroughApi<R>(aws, apiUrl, dispatchId, false);
    if (isTerminalDispatchStatus(read.status)) return readDispatchThroughApi<R>(aws, apiUrl, dispatchId, true);
    if (Date.now() >= deadline) throw new ValenceError(ErrorCode.RESULT_TIMEOUT, `Dispatch ${dispatchId} was still ${String(read.status)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now()))));
  }
}
