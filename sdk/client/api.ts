/**
 * Calling the stack's API as AWS authorizes it: SigV4-signed requests (service
 * `execute-api`) with the client's credentials, retried only where a retry cannot do twice
 * what the caller asked once. Dispatch, cancel and status all go through here, so a caller
 * needs `execute-api:Invoke` on those methods and no table access.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsClients } from '../aws.ts';

/** The URL of API route `route` (e.g. `/dispatches/{id}/cancel`) under `apiUrl`, its `{params}` filled in and encoded. */
export function apiUrlOf(apiUrl: string, route: string, params: Readonly<Record<string, string>> = {}): URL {
  const path = route.slice(1).replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ''));
  return new URL(path, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
}

/** The response's text and its JSON (or `{ message: text }` when it is not JSON, as API Gateway's own errors can be). */
export async function readJson(response: Response): Promise<{ text: string; payload: unknown }> {
  const text = await response.text();
  try {
    return { text, payload: JSON.parse(text) as unknown };
  } catch {
    return { text, payload: { message: text } };
  }
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
 * exponentially with full jitter. A `POST` the server makes idempotent (`idempotent`: a
 * dispatch with its client token, which a retry answers with the first attempt's dispatch) is
 * retried as a read is, and on 500 too. Delays grow
 * exponentially with full jitter (the AWS SDK's standard mode), or follow `Retry-After`;
 * each attempt is signed again, since a signature is only valid for a few minutes.
 */
export async function sendWithRetries(aws: AwsClients, url: URL, method: 'GET' | 'POST', body: string | undefined, options: { readonly idempotent?: boolean } = {}): Promise<Response> {
  const repeatable = method === 'GET' || options.idempotent === true;
  for (let attempt = 1; ; attempt++) {
    let response: Response;
    try {
      response = await signedFetch(aws, url, method, body);
    } catch (error) {
      if (!repeatable || attempt >= API_ATTEMPTS) throw error;
      await backoff(attempt, undefined);
      continue;
    }
    const retryable = response.status === 429 || (repeatable && [500, 502, 503, 504].includes(response.status));
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
