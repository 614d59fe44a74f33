/**
 * Cancelling through the stack's API: a SigV4-signed `POST` (service `execute-api`), as AWS
 * authorizes it, so the client needs no table access to cancel.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsClients } from '../aws.ts';
import { DispatchNotFoundError, ErrorCode, ValenceError } from '../errors.ts';
import type { CancelReport } from '../runtime/cancel.ts';

/** Options of a cancel request. */
export interface CancelOptions {
  /** Node ids, or paths into sublattices (`"5/2"`); absent means the whole dispatch. */
  readonly taskIds?: readonly (number | string)[];
  /** Why; recorded with the request and passed to the services. */
  readonly reason?: string;
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

/** Sends the cancel request for `dispatchId` to the API at `apiUrl` and returns its report. */
export async function requestCancel(aws: AwsClients, apiUrl: string, dispatchId: string, options: CancelOptions): Promise<CancelReport> {
  const url = new URL(`dispatches/${encodeURIComponent(dispatchId)}/cancel`, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  const body = JSON.stringify({ ...(options.taskIds ? { taskIds: options.taskIds } : {}), ...(options.reason ? { reason: options.reason } : {}) });
  const response = await signedFetch(aws, url, 'POST', body);
  const text = await response.text();
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    payload = { message: text };
  }
  if (response.status === 200) return payload as CancelReport;
  if (response.status === 404) throw new DispatchNotFoundError(dispatchId);
  const message = (payload as { message?: string }).message ?? text;
  throw new CancelRequestError(response.status, `Cancel request refused (${response.status}): ${message}`);
}

/** Sends a SigV4-signed request (service `execute-api`) with the client's credentials. */
async function signedFetch(aws: AwsClients, url: URL, method: string, body: string): Promise<Response> {
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
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  return fetch(url, { method, headers: signed.headers as Record<string, string>, body });
}
