import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiGatewayService } from '../../../localstack/apigateway/index.ts';
import type { LocalApiGatewayService } from '../../../localstack/apigateway/index.ts';
import { StaticCredentialStore } from '../../../localstack/core/credentials.ts';
import { createLambdaService } from '../../../localstack/lambda/index.ts';
import type { LocalLambdaService } from '../../../localstack/lambda/index.ts';
import { ACCOUNT_ID, REGION, hookBench, serve, signedFetch } from '../lambda/harness.ts';
import type { Credentials, HookBench, ServedService } from '../lambda/harness.ts';

describe('local API Gateway', () => {
  let lambdaBench: HookBench;
  let apiBench: HookBench;
  let lambda: LocalLambdaService;
  let api: LocalApiGatewayService;
  let served: ServedService;
  let scratch: string;
  let marker: string;
  let base: string;
  const credentials = new StaticCredentialStore();
  const valid: Credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  const handlerCalls = (): number => (existsSync(marker) ? readFileSync(marker, 'utf8').split('\n').filter(Boolean).length : 0);

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'valence-apigw-'));
    marker = join(scratch, 'calls.log');
    lambdaBench = hookBench('lambda');
    apiBench = hookBench('execute-api');
    lambda = createLambdaService({ hooks: lambdaBench.hooks, region: REGION, accountId: ACCOUNT_ID, environment: () => ({}) });
    lambda.register({ functionName: 'cancel', entry: join(import.meta.dirname, 'fixtures', 'proxy.ts'), environment: { MARKER_FILE: marker } });
    api = createApiGatewayService({ hooks: apiBench.hooks, lambda, credentials, region: REGION, accountId: ACCOUNT_ID });
    const apiId = api.createRestApi('valence');
    api.addRoute(apiId, { method: 'POST', path: '/dispatches/{id}/cancel', functionName: 'cancel' });
    api.addRoute(apiId, { method: 'GET', path: '/dispatches/{id}', functionName: 'cancel' });
    api.addRoute(apiId, { method: 'ANY', path: '/fail/{kind}', functionName: 'cancel' });
    served = await serve(api, apiBench);
    base = api.invokeUrl(apiId, served.endpoint);
    credentials.add({ accessKeyId: 'AKIDALICE', secretAccessKey: 'alice-secret' });
  });

  afterAll(async () => {
    await served?.close();
    await api?.stop();
    await lambda?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('builds invoke URLs the way LocalStack serves them', () => {
    expect(base).toMatch(new RegExp(`^${served.endpoint}/restapis/[a-z0-9]{10}/prod/_user_request_$`));
  });

  it('delivers a signed request as a REST proxy event carrying the caller identity', async () => {
    // Prepare
    const calls = handlerCalls();
    const body = JSON.stringify({ reason: 'user asked' });
    // Act
    const response = await signedFetch(`${base}/dispatches/d-42/cancel?force=true&tag=a&tag=b`, {
      method: 'POST',
      body,
      credentials: { accessKeyId: 'AKIDALICE', secretAccessKey: 'alice-secret' },
    });
    // Assess
    expect(response.status).toBe(202);
    expect(response.headers.get('x-handled-by')).toBe('proxy');
    expect(response.headers.get('x-multi')).toBe('a, b');
    expect(response.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    const event = (await response.json()) as { requestContext: { requestId: string }; headers: Record<string, string>; multiValueHeaders: unknown } & Record<string, unknown>;
    expect(event).toMatchObject({
      resource: '/dispatches/{id}/cancel',
      path: '/dispatches/d-42/cancel',
      httpMethod: 'POST',
      pathParameters: { id: 'd-42' },
      queryStringParameters: { force: 'true', tag: 'b' },
      multiValueQueryStringParameters: { force: ['true'], tag: ['a', 'b'] },
      stageVariables: null,
      body,
      isBase64Encoded: false,
      requestContext: {
        resourcePath: '/dispatches/{id}/cancel',
        httpMethod: 'POST',
        stage: 'prod',
        path: '/prod/dispatches/d-42/cancel',
        accountId: ACCOUNT_ID,
        identity: {
          accessKey: 'AKIDALICE',
          caller: 'AKIDALICE',
          user: 'AKIDALICE',
          userArn: `arn:aws:iam::${ACCOUNT_ID}:user/AKIDALICE`,
          accountId: ACCOUNT_ID,
          sourceIp: '127.0.0.1',
        },
      },
    });
    expect(event.requestContext.requestId).toBe(response.headers.get('x-amzn-requestid'));
    expect(event.headers['content-type'] ?? event.headers['Content-Type']).toBe('application/json');
    expect(Object.keys(event.headers).map((h: string) => h.toLowerCase())).toContain('authorization');
    expect(event.multiValueHeaders).toBeTypeOf('object');
    expect(handlerCalls()).toBe(calls + 1);
  });

  it('counts requests per route', async () => {
    const before = apiBench.counters.get('execute-api', 'GET /dispatches/{id}');
    const response = await signedFetch(`${base}/dispatches/d-1`, { method: 'GET', credentials: valid });
    expect(response.status).toBe(202);
    expect(((await response.json()) as { body: unknown }).body).toBeNull();
    expect(apiBench.counters.get('execute-api', 'GET /dispatches/{id}')).toBe(before + 1);
  });

  it('refuses an unsigned request with 403 Missing Authentication Token and never runs the handler', async () => {
    const calls = handlerCalls();
    const response = await fetch(`${base}/dispatches/d-42/cancel`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(await response.json()).toEqual({ message: 'Missing Authentication Token' });
    expect(handlerCalls()).toBe(calls);
  });

  it('refuses a request signed with the wrong secret', async () => {
    const calls = handlerCalls();
    const response = await signedFetch(`${base}/dispatches/d-42/cancel`, {
      method: 'POST',
      body: '{}',
      credentials: { accessKeyId: 'test', secretAccessKey: 'not-the-secret' },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('InvalidSignatureException');
    expect(((await response.json()) as { message: string }).message).toMatch(/^The request signature we calculated does not match/);
    expect(handlerCalls()).toBe(calls);
  });

  it('refuses a request whose body was changed after signing', async () => {
    const calls = handlerCalls();
    const response = await signedFetch(`${base}/dispatches/d-42/cancel`, {
      method: 'POST',
      body: '{"taskIds":[1]}',
      tamper: '{"taskIds":[2]}',
      credentials: valid,
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toBe('InvalidSignatureException');
    expect(handlerCalls()).toBe(calls);
  });

  it('refuses an unknown access key as an invalid security token', async () => {
    const calls = handlerCalls();
    const response = await signedFetch(`${base}/dispatches/d-42/cancel`, {
      method: 'POST',
      body: '{}',
      credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'whatever' },
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ message: 'The security token included in the request is invalid.' });
    expect(handlerCalls()).toBe(calls);
  });

  it('answers unknown paths and methods with 403 Missing Authentication Token, as AWS does', async () => {
    const calls = handlerCalls();
    const unknownPath = await signedFetch(`${base}/nothing/here`, { method: 'GET', credentials: valid });
    expect(unknownPath.status).toBe(403);
    expect(await unknownPath.json()).toEqual({ message: 'Missing Authentication Token' });
    const wrongMethod = await signedFetch(`${base}/dispatches/d-42/cancel`, { method: 'DELETE', credentials: valid });
    expect(wrongMethod.status).toBe(403);
    const unknownApi = await fetch(`${served.endpoint}/restapis/nosuchapi0/prod/_user_request_/dispatches/x`);
    expect(unknownApi.status).toBe(404);
    expect(handlerCalls()).toBe(calls);
  });

  it('answers 502 Internal server error when the handler throws or returns a malformed response', async () => {
    for (const kind of ['explode', 'malformed']) {
      const response = await signedFetch(`${base}/fail/${kind}`, { method: 'PUT', body: '{}', credentials: valid });
      expect(response.status).toBe(502);
      expect(await response.json()).toEqual({ message: 'Internal server error' });
    }
  });

  it("throttles a stage as AWS does: past the burst, 429 TooManyRequestsException, and the handler never runs", async () => {
    const apiId = api.createRestApi('throttled');
    api.addRoute(apiId, { method: 'GET', path: '/dispatches/{id}', functionName: 'cancel' });
    // A burst of 2 and a refill too slow to add a token during the test.
    api.setThrottling(apiId, 'prod', { rateLimit: 0.001, burstLimit: 2 });
    const url = `${api.invokeUrl(apiId, served.endpoint)}/dispatches/d-1`;
    const calls = handlerCalls();
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const response = await signedFetch(url, { method: 'GET', credentials: valid });
      statuses.push(response.status);
      if (response.status === 429) refused = response;
      else await response.arrayBuffer();
    }
    expect(statuses).toEqual([202, 202, 429, 429]);
    expect(refused!.headers.get('x-amzn-errortype')).toBe('TooManyRequestsException');
    expect(await refused!.json()).toEqual({ message: 'Too Many Requests' });
    expect(handlerCalls()).toBe(calls + 2);
    // Lifting the limit lets requests through again; other APIs were never throttled.
    api.setThrottling(apiId, 'prod', undefined);
    expect((await signedFetch(url, { method: 'GET', credentials: valid })).status).toBe(202);
    expect(() => api.setThrottling(apiId, 'prod', { rateLimit: -1, burstLimit: 2 })).toThrow(/rateLimit/);
  });
});
