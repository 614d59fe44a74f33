/**
 * Serves one local service on a loopback port, the way the router hands it requests, with real
 * counters and fault injection bound to it. Shared by the Lambda, API Gateway and EventBridge tests.
 */
import { createServer } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AddressInfo } from 'node:net';
import { RequestCounters } from '../../../localstack/core/counters.ts';
import { FaultInjector } from '../../../localstack/core/faults.ts';
import type { LocalService, RequestContext, ServiceHooks } from '../../../localstack/core/service.ts';

export const REGION = 'us-east-1';
export const ACCOUNT_ID = '000000000000';
export const TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

/** Counters and faults for one service, plus the hooks object its factory takes. */
export interface HookBench {
  readonly counters: RequestCounters;
  readonly faults: FaultInjector;
  readonly hooks: ServiceHooks;
}

/** Real counters and a real fault injector, bound to `service`. */
export function hookBench(service: string): HookBench {
  const counters = new RequestCounters();
  const faults = new FaultInjector();
  return {
    counters,
    faults,
    hooks: {
      count: (operation) => counters.record(service, operation),
      fault: (operation) => faults.decide(service, operation),
      crashInvocation: (functionName) => faults.crashInvocation(functionName),
    },
  };
}

/** A running HTTP server in front of one service. */
export interface ServedService {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Serves `service` on 127.0.0.1 at a free port. */
export async function serve(service: LocalService, bench: HookBench): Promise<ServedService> {
  const server = createServer((req, res) => {
    const header = String(req.headers.authorization ?? '');
    const accessKeyId = /Credential=([^/]+)\//.exec(header)?.[1];
    const ctx: RequestContext = {
      region: REGION,
      accessKeyId,
      accountId: ACCOUNT_ID,
      count: (operation) => bench.hooks.count(operation),
      fault: (operation) => bench.hooks.fault(operation),
    };
    Promise.resolve(service.handle(req, res, ctx)).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** An access key pair. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * Signs a request for `execute-api` the way an IAM-authorized client does, then sends it with
 * `fetch`; `tamper` replaces the body after signing.
 */
export async function signedFetch(
  url: string,
  init: { method: string; body?: string; credentials: Credentials; tamper?: string; region?: string },
): Promise<Response> {
  const target = new URL(url);
  const signer = new SignatureV4({ credentials: init.credentials, region: init.region ?? REGION, service: 'execute-api', sha256: Sha256 });
  const query: Record<string, string[]> = {};
  for (const [key, value] of target.searchParams) (query[key] ??= []).push(value);
  const signed = await signer.sign(
    new HttpRequest({
      method: init.method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: Number(target.port),
      path: target.pathname,
      query,
      headers: { host: target.host, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: init.body } : {}),
    }),
  );
  return fetch(url, { method: init.method, headers: signed.headers, ...(init.body !== undefined ? { body: init.tamper ?? init.body } : {}) });
}
