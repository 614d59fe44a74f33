// Dispatching through the API (issue 14): `POST /dispatches` runs beside the deployed code,
// large arguments travel through a presigned S3 upload, a client connected with `apiUrl` alone
// dispatches and reads results, and every bad request is refused with nothing written.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { ListExecutionsCommand } from '@aws-sdk/client-sfn';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type ValenceClient } from '../../sdk/client/index.ts';
import { API, UPLOAD_PREFIX } from '../../sdk/contract.ts';
import { ErrorCode } from '../../sdk/errors.ts';
import { serialize } from '../../sdk/runtime/serialization.ts';
import { chain, richValues } from '../runtime/fixtures/workflows.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';

let h: RuntimeHarness;
let apiOnly: ValenceClient;
let apiUrl: string;
beforeAll(async () => {
  h = await startHarness({ sweeper: false });
  apiUrl = (await h.client.outputs()).apiUrl;
  apiOnly = connect({ endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials, apiUrl });
}, 120_000);
afterAll(async () => {
  apiOnly?.close();
  await h?.close();
});

/** A SigV4-signed (execute-api) request to the stack's API, as any AWS client would send it. */
async function callApi(method: string, path: string, body?: string): Promise<{ status: number; json: { message?: string; code?: string } & Record<string, unknown> }> {
  const url = new URL(path, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  const signer = new SignatureV4({ service: 'execute-api', region: h.cloud.region, credentials: h.cloud.credentials, sha256: Sha256 });
  const request = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: { host: url.host, 'content-type': 'application/json' },
    ...(body !== undefined ? { body } : {}),
  });
  const response = await fetch(url, { method, headers: request.headers, ...(body !== undefined ? { body } : {}) });
  return { status: response.status, json: (await response.json()) as { message?: string } };
}

/** Requests the local cloud counted for `service` (one operation, or all of them). */
function calls(service: string, operation?: string): number {
  const byOperation = h.cloud.counters()[service] ?? {};
  return operation !== undefined ? (byOperation[operation] ?? 0) : Object.values(byOperation).reduce((a, b) => a + b, 0);
}

/** Every table item and every execution of every state machine: what a refused request must leave as it was. */
async function footprint(): Promise<{ items: number; executions: number; uploads: number }> {
  const { tableName, bucketName } = await h.client.outputs();
  const items = (await h.cloud.clients.dynamodb.send(new ScanCommand({ TableName: tableName, Select: 'COUNT' }))).Count ?? 0;
  let executions = 0;
  for (const name of ['chain', 'richValues']) {
    const arn = `arn:aws:states:${h.cloud.region}:${h.cloud.accountId}:stateMachine:valence_${name}`;
    executions += (await h.cloud.clients.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn }))).executions?.length ?? 0;
  }
  const uploads = (await h.cloud.clients.s3.send(new ListObjectsV2Command({ Bucket: bucketName, Prefix: UPLOAD_PREFIX }))).KeyCount ?? 0;
  return { items, executions, uploads };
}

describe('dispatch through the API', () => {
  it('a client connected with apiUrl alone dispatches, waits and reads the result; the request went to POST /dispatches', async () => {
    const before = calls('execute-api', `POST ${API.dispatchPath}`);
    const run = await apiOnly.dispatch(chain)(4);
    expect(calls('execute-api', `POST ${API.dispatchPath}`)).toBe(before + 1);
    const result = await apiOnly.getResult(run, { wait: true, timeoutMs: 60_000 });
    expect(result).toMatchObject({ dispatchId: run.id, lattice: 'chain', status: 'COMPLETED', result: 20 });
    expect(result.nodes.map((n) => n.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    expect(await run.result()).toBe(20);
  }, 90_000);

  it('arguments past the inline limit go through a presigned upload, arrive whole, and the upload is deleted', async () => {
    const key = 'k'.repeat(API.maxInlineArgsBytes + 10_000);
    const date = new Date('2026-01-02T03:04:05Z');
    const uploadsBefore = calls('execute-api', `POST ${API.uploadPath}`);
    const run = await apiOnly.dispatch(richValues)(date, new Map([[key, 21n]]));
    expect(calls('execute-api', `POST ${API.uploadPath}`)).toBe(uploadsBefore + 1);
    const result = await apiOnly.getResult<{ d: Date; m: Map<string, bigint> }>(run, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('COMPLETED');
    // Through the API the result keeps its types: a Date, a Map with a BigInt.
    expect(result.result!.d).toEqual(new Date(date.getTime() + 1000));
    expect(result.result!.m.get(key)).toBe(42n);
    expect((await footprint()).uploads).toBe(0);
  }, 90_000);

  it('a result past the inline limit comes through a presigned GET', async () => {
    const key = 'r'.repeat(API.maxInlineResultBytes + 50_000);
    const run = await apiOnly.dispatch(richValues)(new Date(0), new Map([[key, 1n]]));
    const result = await apiOnly.getResult<{ m: Map<string, bigint> }>(run, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.result!.m.get(key)).toBe(2n);
    const answer = await callApi('GET', `dispatches/${run.id}?result=true`);
    expect(answer.json['resultText']).toBeUndefined();
    expect(answer.json['resultUrl']).toMatch(/X-Amz-Signature=/);
    // A small one comes inline.
    const small = await apiOnly.dispatch(chain)(1);
    await apiOnly.getResult(small, { wait: true, timeoutMs: 60_000 });
    expect((await callApi('GET', `dispatches/${small.id}?result=true`)).json).toMatchObject({ status: 'COMPLETED', resultText: serialize(8) });
    expect((await callApi('GET', `dispatches/${small.id}`)).json['resultText']).toBeUndefined();
  }, 90_000);

  it('a client connected with apiUrl alone says which calls need the stack', async () => {
    await expect(apiOnly.listDispatches()).rejects.toMatchObject({ code: ErrorCode.STACK_ACCESS_REQUIRED, message: /apiUrl .* alone/ });
    await expect(apiOnly.redispatch('x')).rejects.toMatchObject({ code: ErrorCode.STACK_ACCESS_REQUIRED });
  });
});

describe('a dispatch request is safe to repeat (its client token)', () => {
  const chainExecutions = async (): Promise<number> => {
    const arn = `arn:aws:states:${h.cloud.region}:${h.cloud.accountId}:stateMachine:valence_chain`;
    return (await h.cloud.clients.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn }))).executions?.length ?? 0;
  };

  it('the same request twice: one dispatch, one execution; the second answer names the first dispatch', async () => {
    const before = await chainExecutions();
    const body = JSON.stringify({ lattice: 'chain', args: serialize([2]), clientToken: '4b7c2a1e-0d3f-4e6a-9b8c-1a2b3c4d5e6f' });
    const first = await callApi('POST', 'dispatches', body);
    const second = await callApi('POST', 'dispatches', body);
    expect(first.status).toBe(201);
    expect(second).toMatchObject({ status: 201, json: { dispatchId: first.json['dispatchId'], replayed: true } });
    expect(await chainExecutions()).toBe(before + 1);
    expect((await apiOnly.getResult(String(first.json['dispatchId']), { wait: true, timeoutMs: 60_000 })).result).toBe(12);
  }, 90_000);

  it('a gateway 503, then a crashed API handler invocation: the SDK retries, and the lattice runs once', async () => {
    const before = await chainExecutions();
    const posts = calls('execute-api', `POST ${API.dispatchPath}`);
    h.cloud.faults.add({ service: 'execute-api', operation: `POST ${API.dispatchPath}`, errorRate: 1, maxErrors: 1, error: { status: 503, code: 'ServiceUnavailableException', message: 'Service Unavailable' } });
    h.cloud.faults.crashNthInvocation(1, 'valence-cancel');
    try {
      const run = await apiOnly.dispatch(chain)(3);
      expect(calls('execute-api', `POST ${API.dispatchPath}`)).toBeGreaterThanOrEqual(posts + 3);
      expect(await run.result({ timeoutMs: 60_000 })).toBe(16);
      expect(await chainExecutions()).toBe(before + 1);
      expect(h.cloud.faults.config().lambdaCrashes).toHaveLength(0);
    } finally {
      h.cloud.faults.clear();
    }
  }, 90_000);
});

describe('bad dispatch requests: a clear 4xx naming the problem, and nothing written', () => {
  const args = serialize([1]);
  const cases: [string, string, number, RegExp][] = [
    ['not JSON', '{', 400, /not valid JSON/],
    ['an array', '[]', 400, /must be a JSON object/],
    ['an unknown field', JSON.stringify({ lattice: 'chain', args, extra: 1 }), 400, /Unknown field\(s\).*extra/],
    ['no lattice', JSON.stringify({ args }), 400, /"lattice" must be a lattice name/],
    ['both args and argsUpload', JSON.stringify({ lattice: 'chain', args, argsUpload: '00000000-0000-0000-0000-000000000000' }), 400, /exactly one of "args"/],
    ['neither', JSON.stringify({ lattice: 'chain' }), 400, /exactly one of "args"/],
    ['undecodable args', JSON.stringify({ lattice: 'chain', args: 'not devalue' }), 400, /cannot be decoded/],
    ['args that are not an array', JSON.stringify({ lattice: 'chain', args: serialize({ x: 1 }) }), 400, /must serialize an array/],
    ['the wrong number of arguments', JSON.stringify({ lattice: 'chain', args: serialize([1, 2]) }), 400, /takes 1 argument\(s\), got 2/],
    ['an upload that was never made', JSON.stringify({ lattice: 'chain', argsUpload: '00000000-0000-0000-0000-000000000000' }), 400, /No upload 00000000/],
    ['a lattice that is not deployed', JSON.stringify({ lattice: 'nowhere', args }), 404, /"nowhere" is not deployed/],
    ['a client token that is not a UUID', JSON.stringify({ lattice: 'chain', args, clientToken: 'again' }), 400, /"clientToken" must be a UUID/],
    ['a graph hash of another graph', JSON.stringify({ lattice: 'chain', args, graphHash: 'ab'.repeat(32) }), 409, /changed since it was deployed/],
    // The client token is claimed only once every check passed: a refused request leaves no token item.
    ['a stale graph with a client token', JSON.stringify({ lattice: 'chain', args, graphHash: 'cd'.repeat(32), clientToken: '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b' }), 409, /changed since it was deployed/],
    ['inline args past the limit', JSON.stringify({ lattice: 'chain', args: serialize(['x'.repeat(API.maxInlineArgsBytes)]) }), 413, /inline arguments may be at most/],
  ];
  it.each(cases)('%s', async (_, body, status, message) => {
    const before = await footprint();
    const answer = await callApi('POST', 'dispatches', body);
    expect(answer.status).toBe(status);
    expect(answer.json.message).toMatch(message);
    expect(await footprint()).toEqual(before);
  }, 30_000);

  it('a body past the limit is refused (413) before it is parsed', async () => {
    const before = await footprint();
    const answer = await callApi('POST', 'dispatches', `{"lattice":"chain","args":"${'y'.repeat(API.maxDispatchBodyBytes)}"}`);
    expect(answer.status).toBe(413);
    expect(answer.json.message).toMatch(/may be at most 655360 bytes/);
    expect(await footprint()).toEqual(before);
  });

  it('uploads: a size past the limit or not an integer is refused; a PUT of another size than signed is refused by S3', async () => {
    const tooLarge = await callApi('POST', 'uploads', JSON.stringify({ bytes: API.maxUploadBytes + 1 }));
    expect([tooLarge.status, tooLarge.json.message]).toEqual([413, expect.stringMatching(/at most 67108864 bytes/) as unknown]);
    const fractional = await callApi('POST', 'uploads', JSON.stringify({ bytes: 1.5 }));
    expect([fractional.status, fractional.json.message]).toEqual([400, expect.stringMatching(/positive integer/) as unknown]);
    const granted = await callApi('POST', 'uploads', JSON.stringify({ bytes: 10 }));
    expect(granted.status).toBe(200);
    const { url, uploadId } = granted.json as { url: string; uploadId: string };
    // The Content-Length is signed: 11 bytes against a URL for 10 is refused, and nothing is stored.
    const wrong = await fetch(url, { method: 'PUT', body: 'x'.repeat(11) });
    expect(wrong.status).toBe(403);
    expect((await footprint()).uploads).toBe(0);
    const answer = await callApi('POST', 'dispatches', JSON.stringify({ lattice: 'chain', argsUpload: uploadId }));
    expect([answer.status, answer.json.message]).toEqual([400, expect.stringMatching(/No upload/) as unknown]);
  });

  it('the SDK refuses arguments past the upload limit before anything is sent', async () => {
    const before = calls('execute-api');
    const error: unknown = await apiOnly.dispatch(richValues)(new Date(0), new Map([['z'.repeat(API.maxUploadBytes + 1), 1n]])).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ValidationError', message: /may be at most 67108864 bytes/ });
    expect(calls('execute-api')).toBe(before);
  });

});
