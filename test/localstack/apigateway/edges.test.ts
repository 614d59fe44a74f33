// The edges of the deployed cancel API (local API Gateway, AWS_IAM authorization, the
// lambdas/cancel.ts handler) as a client meets them over HTTP: GET /dispatches/{id}, a method
// the API does not route, a method the handler refuses, a base64-encoded body, an invalid
// dispatch id and the reason length limit. A refused request writes nothing.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../../runtime/harness.ts';
import * as wf from '../../runtime/fixtures/paths.ts';

const PATHS = new URL('../../runtime/fixtures/paths.ts', import.meta.url).pathname;
let h: RuntimeHarness;
let completed: string;
beforeAll(async () => {
  h = await startHarness({}, PATHS);
  const dir = join(h.dir, 'quick');
  mkdirSync(dir);
  completed = (await h.client.dispatch(wf.quickPair)(dir)).id;
  await h.client.getResult(completed, { wait: true, timeoutMs: 30_000 });
}, 90_000);
afterAll(async () => h?.close());

interface Answer {
  readonly status: number;
  readonly json: Record<string, unknown> & { message?: string };
}

/** A SigV4-signed request to the deployed API, as any AWS_IAM client sends it. */
async function call(method: string, path: string, body?: string | Buffer): Promise<Answer> {
  const { apiUrl } = await h.client.outputs();
  const url = new URL(path, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  const signer = new SignatureV4({ service: 'execute-api', region: h.cloud.region, credentials: h.cloud.credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: { host: url.host, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
  });
  const response = await fetch(url, { method, headers: signed.headers as Record<string, string>, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return { status: response.status, json: (text ? JSON.parse(text) : {}) as Answer['json'] };
}

async function tableSnapshot(): Promise<string> {
  const { tableName } = await h.client.outputs();
  const items = await h.cloud.clients.dynamodb.send(new ScanCommand({ TableName: tableName }));
  return JSON.stringify((items.Items ?? []).map((i) => JSON.stringify(i)).sort());
}

describe('GET /dispatches/{id}', () => {
  it('answers the dispatch and its nodes as stored', async () => {
    const answer = await call('GET', `dispatches/${completed}`);
    expect(answer.status).toBe(200);
    const stored = await h.client.getResult(completed);
    expect(answer.json).toMatchObject({ dispatchId: completed, status: 'COMPLETED' });
    expect((answer.json['nodes'] as { status: string }[]).map((n) => n.status)).toEqual(stored.nodes.map((n) => n.status));
    expect((answer.json['nodes'] as { name: string }[]).map((n) => n.name)).toEqual(['tick', 'tick']);
  });

  it('answers 404 naming the id for an unknown dispatch', async () => {
    const answer = await call('GET', 'dispatches/00000000-0000-0000-0000-000000000000');
    expect(answer.status).toBe(404);
    expect(answer.json.message).toMatch(/00000000-0000-0000-0000-000000000000/);
  });
});

describe('methods', () => {
  it('a method the API does not route is refused by API Gateway (403, as on AWS) and writes nothing', async () => {
    const before = await tableSnapshot();
    const answer = await call('DELETE', `dispatches/${completed}/cancel`);
    expect(answer.status).toBe(403);
    expect(answer.json.message).toBe('Missing Authentication Token');
    expect(await tableSnapshot()).toBe(before);
  });

  it('a method the handler does not serve is 405 naming the method, and writes nothing', async () => {
    // The API routes only GET and POST to the handler, so the 405 branch is reached by a proxy
    // event with another method, sent to the deployed function.
    const before = await tableSnapshot();
    const invoked = await h.cloud.clients.lambda.send(
      new InvokeCommand({
        FunctionName: 'valence-cancel',
        Payload: Buffer.from(JSON.stringify({ httpMethod: 'PUT', path: `/dispatches/${completed}`, pathParameters: { id: completed }, body: '{}' })),
      }),
    );
    const response = JSON.parse(Buffer.from(invoked.Payload!).toString('utf8')) as { statusCode: number; body: string };
    expect(response.statusCode).toBe(405);
    expect((JSON.parse(response.body) as { message: string }).message).toBe('Method PUT is not allowed');
    expect(await tableSnapshot()).toBe(before);
  });
});

describe('bodies', () => {
  it('a body that is not UTF-8 arrives base64-encoded and is decoded: the request is recorded', async () => {
    // "café" in Latin-1: API Gateway passes bytes that are not UTF-8 as base64; the handler
    // decodes them (the é becomes U+FFFD) and records the reason.
    const body = Buffer.concat([Buffer.from('{"reason":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const answer = await call('POST', `dispatches/${completed}/cancel`, body);
    expect(answer.status).toBe(200);
    expect(answer.json['dispatchId']).toBe(completed);
    const requests = (await h.client.getResult(completed)).cancelRequests;
    expect(requests.map((r) => r.reason)).toContain('caf\uFFFD');
  });

  it('a base64 body that does not decode to JSON is 400 and writes nothing', async () => {
    const before = await tableSnapshot();
    const answer = await call('POST', `dispatches/${completed}/cancel`, Buffer.from([0xff, 0xfe, 0x00, 0x7b]));
    expect(answer.status).toBe(400);
    expect(answer.json.message).toMatch(/not valid JSON/);
    expect(await tableSnapshot()).toBe(before);
  });
});

describe('dispatch ids and the reason limit', () => {
  it.each([
    ['a character outside [A-Za-z0-9_-]', 'bad.id'],
    ['81 characters', 'a'.repeat(81)],
  ])('an id with %s is 400 naming it, and writes nothing', async (_what, id) => {
    const before = await tableSnapshot();
    const answer = await call('POST', `dispatches/${id}/cancel`, '{}');
    expect(answer.status).toBe(400);
    expect(answer.json.message).toBe(`Invalid dispatch id ${JSON.stringify(id)}`);
    expect(await tableSnapshot()).toBe(before);
  });

  it('a reason of 1,024 characters is accepted and recorded whole', async () => {
    const reason = 'r'.repeat(1024);
    const answer = await call('POST', `dispatches/${completed}/cancel`, JSON.stringify({ reason }));
    expect(answer.status).toBe(200);
    expect((await h.client.getResult(completed)).cancelRequests.map((r) => r.reason)).toContain(reason);
  });

  it('a reason of 1,025 characters is 400 naming the limit, and writes nothing', async () => {
    const before = await tableSnapshot();
    const answer = await call('POST', `dispatches/${completed}/cancel`, JSON.stringify({ reason: 'r'.repeat(1025) }));
    expect(answer.status).toBe(400);
    expect(answer.json.message).toBe('"reason" must be a string of at most 1024 characters');
    expect(await tableSnapshot()).toBe(before);
  });
});
