/**
 * The local cloud refuses what AWS refuses, and what a web page could send: each refusal is
 * proven by observation — no process spawned, no function run, the table and bucket unchanged.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sha256 } from '@aws-crypto/sha256-js';
import { CreateTableCommand, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud } from '../../localstack/index.ts';
import type { LocalCloud } from '../../localstack/index.ts';

let cloud: LocalCloud;
let dir: string;
let url: URL;
let apiId: string;
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const touch = fileURLToPath(new URL('./fixtures/touch-handler.ts', import.meta.url));

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0 });
  url = new URL(cloud.endpoint);
  dir = mkdtempSync(join(tmpdir(), 'valence-security-'));
  cloud.services.lambda.register({ functionName: 'touch', entry: touch, timeoutSeconds: 10 });
  apiId = cloud.services.apigateway.createRestApi('security');
  cloud.services.apigateway.addRoute(apiId, { method: 'POST', path: '/run', functionName: 'touch' });
  await cloud.clients.dynamodb.send(
    new CreateTableCommand({ TableName: 'guarded', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
  );
  await cloud.clients.s3.send(new CreateBucketCommand({ Bucket: 'guarded' }));
}, 60_000);
afterAll(async () => {
  await cloud?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Sent {
  readonly status: number;
  readonly body: string;
}

/** Sends raw bytes with exactly these headers (no client fixes anything up). */
function rawSend(method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface SignOptions {
  readonly service: string;
  readonly region?: string;
  readonly host?: string;
  readonly sessionToken?: string;
  readonly headers?: Record<string, string>;
  /** The body that was signed; {@link signedSend} may send another. */
  readonly body?: string;
  readonly method?: string;
}

async function sign(path: string, options: SignOptions): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials: { ...credentials, ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}) },
    region: options.region ?? cloud.region,
    service: options.service,
    sha256: Sha256,
    uriEscapePath: options.service !== 's3',
    applyChecksum: false,
  });
  const host = options.host ?? url.host;
  const signed = await signer.sign(
    new HttpRequest({ method: options.method ?? 'POST', protocol: 'http:', hostname: host.replace(/:\d+$/, ''), port: Number(url.port), path, headers: { host, ...options.headers }, ...(options.body !== undefined ? { body: options.body } : {}) }),
  );
  return signed.headers;
}

async function signedSend(path: string, options: SignOptions, sentBody = options.body): Promise<Sent> {
  return rawSend(options.method ?? 'POST', path, await sign(path, options), sentBody);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a web page cannot run commands', () => {
  it('refuses the unsigned text/plain RegisterJobDefinition + SubmitJob pair: no job, no process', async () => {
    const marker = join(dir, 'batch-ran');
    const definition = await rawSend('POST', '/v1/registerjobdefinition', { 'content-type': 'text/plain' }, JSON.stringify({ jobDefinitionName: 'x', type: 'container', containerProperties: { command: ['/bin/sh', '-c', `touch ${marker}`] } }));
    const submit = await rawSend('POST', '/v1/submitjob', { 'content-type': 'text/plain' }, JSON.stringify({ jobName: 'x', jobQueue: 'q', jobDefinition: 'x' }));
    expect([definition.status, submit.status]).toEqual([403, 403]);
    await pause(500);
    expect(existsSync(marker)).toBe(false);
    expect(cloud.services.batch.jobs()).toEqual([]);
    expect(cloud.counters().batch).toBeUndefined();
  });

  it('refuses a correctly signed request that carries an Origin or a text/plain body', async () => {
    const marker = join(dir, 'lambda-origin');
    const body = JSON.stringify({ file: marker });
    const withOrigin = await signedSend('/2015-03-31/functions/touch/invocations', { service: 'lambda', body, headers: { origin: 'https://evil.example' } });
    const asText = await signedSend('/2015-03-31/functions/touch/invocations', { service: 'lambda', body, headers: { 'content-type': 'text/plain' } });
    expect([withOrigin.status, asText.status]).toEqual([403, 403]);
    await pause(300);
    expect(existsSync(marker)).toBe(false);
    expect(cloud.counters().lambda).toBeUndefined();
  });

  it('refuses a Host that is not its own address (DNS rebinding), even correctly signed', async () => {
    const marker = join(dir, 'lambda-rebound');
    const host = `rebind.evil.example:${url.port}`;
    const response = await signedSend('/2015-03-31/functions/touch/invocations', { service: 'lambda', host, body: JSON.stringify({ file: marker }) });
    expect(response.status).toBe(403);
    await pause(300);
    expect(existsSync(marker)).toBe(false);
  });

  it('invokes the function when the request is signed as AWS requires (the check is not a blanket refusal)', async () => {
    const marker = join(dir, 'lambda-signed');
    const response = await signedSend('/2015-03-31/functions/touch/invocations', { service: 'lambda', body: JSON.stringify({ file: marker }) });
    expect(response.status).toBe(200);
    expect(existsSync(marker)).toBe(true);
  });

  it('refuses an unsigned Lambda invoke: the function never runs', async () => {
    const marker = join(dir, 'lambda-unsigned');
    const response = await rawSend('POST', '/2015-03-31/functions/touch/invocations', {}, JSON.stringify({ file: marker }));
    expect(response.status).toBe(403);
    await pause(300);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('SigV4 as strict as AWS', () => {
  const putItem = (id: string) => JSON.stringify({ TableName: 'guarded', Item: { pk: { S: id } } });
  const dynamo = (extra: Partial<SignOptions> = {}): SignOptions => ({
    service: 'dynamodb',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem' },
    ...extra,
  });
  const stored = async (id: string) => (await cloud.clients.dynamodb.send(new GetItemCommand({ TableName: 'guarded', Key: { pk: { S: id } } }))).Item;

  it.each([
    ['another region (us-west-2)', dynamo({ region: 'us-west-2' })],
    ['another region (eu-central-1)', dynamo({ region: 'eu-central-1' })],
    ['a session token the cloud never issued', dynamo({ sessionToken: 'forged-token' })],
  ])('refuses a signature with %s: 403, the table unchanged', async (_what, options) => {
    const id = `scoped-${Math.random()}`;
    const response = await signedSend('/', { ...options, body: putItem(id) });
    expect(response.status).toBe(403);
    expect(JSON.parse(response.body)).toHaveProperty('__type');
    expect(await stored(id)).toBeUndefined();
  });

  it('refuses a signature scoped to another service than X-Amz-Target names', async () => {
    const id = `service-${Math.random()}`;
    const response = await signedSend('/', { ...dynamo(), service: 'states', body: putItem(id) });
    expect(response.status).toBe(403);
    expect(await stored(id)).toBeUndefined();
  });

  it('refuses UNSIGNED-PAYLOAD on DynamoDB with the body swapped after signing', async () => {
    const id = `swapped-${Math.random()}`;
    const options = dynamo({ headers: { ...dynamo().headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const response = await signedSend('/', { ...options, body: putItem('innocent') }, putItem(id));
    expect(response.status).toBe(403);
    expect(await stored(id)).toBeUndefined();
    expect(await stored('innocent')).toBeUndefined();
  });

  it('refuses an S3 upload whose body is not the declared x-amz-content-sha256: the object is not stored', async () => {
    const { createHash } = await import('node:crypto');
    const signedBody = 'the signed body';
    const headers = { 'x-amz-content-sha256': createHash('sha256').update(signedBody).digest('hex') };
    const response = await signedSend('/guarded/swapped.txt', { service: 's3', method: 'PUT', headers, body: signedBody }, 'a different body!');
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.body).toContain('XAmzContentSHA256Mismatch');
    await expect(cloud.clients.s3.send(new GetObjectCommand({ Bucket: 'guarded', Key: 'swapped.txt' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
  });

  it('accepts UNSIGNED-PAYLOAD on S3, as AWS does', async () => {
    const response = await signedSend('/guarded/unsigned.txt', { service: 's3', method: 'PUT', headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }, body: 'ok' });
    expect(response.status).toBe(200);
  });

  it.each([
    ['a stage that was never deployed', `/restapis/API/beta/_user_request_/run`, { service: 'execute-api' }],
    ['a signature scoped to dynamodb', `/restapis/API/prod/_user_request_/run`, { service: 'dynamodb' }],
    ['a forged session token', `/restapis/API/prod/_user_request_/run`, { service: 'execute-api', sessionToken: 'forged' }],
  ])('API Gateway refuses %s: 403, the function never runs', async (_what, path, options) => {
    const marker = join(dir, `api-${Math.random()}`);
    const response = await signedSend(path.replace('API', apiId), { ...options, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ file: marker }) });
    expect(response.status).toBe(403);
    await pause(300);
    expect(existsSync(marker)).toBe(false);
  });

  it('API Gateway runs the function for a deployed stage and a valid signature', async () => {
    const marker = join(dir, 'api-ok');
    const response = await signedSend(`/restapis/${apiId}/prod/_user_request_/run`, { service: 'execute-api', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ file: marker }) });
    expect(response.status).toBe(200);
    expect(existsSync(marker)).toBe(true);
  });
});

describe('the admin API', () => {
  it('refuses a request without the start token, or with another one: the faults stay off', async () => {
    const put = (token?: string) =>
      rawSend('PUT', '/_valence/faults', { 'content-type': 'application/json', ...(token ? { 'x-valence-admin-token': token } : {}) }, JSON.stringify({ rules: [{ service: '*', errorRate: 1 }] }));
    expect((await put()).status).toBe(403);
    expect((await put('not-the-token')).status).toBe(403);
    expect(cloud.faults.config().rules).toEqual([]);
    expect((await put(cloud.adminToken)).status).toBe(200);
    cloud.faults.clear();
  });
});

describe('oversized bodies', () => {
  it('refuses a 60 MB body to API Gateway before reading it or checking auth, and its memory stays low', async () => {
    const before = process.memoryUsage().rss;
    const marker = join(dir, 'api-huge');
    // Chunked, no Content-Length: the cloud must count while it streams in. curl reads the
    // early 413 while it is still sending, as AWS clients do.
    const curl = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Transfer-Encoding: chunked', '-H', 'content-type: application/json', '--data-binary', '@-', `${cloud.endpoint}/restapis/${apiId}/prod/_user_request_/run`], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    curl.stdout.on('data', (c: Buffer) => (out += c.toString()));
    curl.stdin.on('error', () => {});
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    for (let mb = 0; mb < 60 && !curl.stdin.destroyed; mb += 1) {
      if (!curl.stdin.write(chunk)) await new Promise((resolve) => curl.stdin.once('drain', resolve).once('close', resolve));
    }
    curl.stdin.end();
    await new Promise((resolve) => curl.once('close', resolve));
    const status = Number(out);
    expect(status).toBe(413);
    expect(existsSync(marker)).toBe(false);
    const grownMb = (process.memoryUsage().rss - before) / 2 ** 20;
    expect(grownMb).toBeLessThan(200);
  });

  it('refuses a declared 60 MB body at once', async () => {
    const response = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'POST', path: '/2015-03-31/functions/touch/invocations', headers: { 'content-length': String(60 * 1024 * 1024) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
      req.write(Buffer.alloc(1024));
    });
    expect(response).toBe(413);
  });
});
