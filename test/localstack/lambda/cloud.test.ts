// Lambda, API Gateway and EventBridge behind the local cloud's one port: the router picks the
// service from the SigV4 credential scope (or the /restapis/ path), as LocalStack does.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { startLocalCloud } from '../../../localstack/index.ts';
import type { LocalCloud } from '../../../localstack/index.ts';
import { eventually, signedFetch } from './harness.ts';

const fixtures = join(import.meta.dirname, '..');

describe('Lambda, API Gateway and EventBridge in the local cloud', () => {
  let cloud: LocalCloud;
  let scratch: string;
  let recordFile: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'valence-cloud-'));
    recordFile = join(scratch, 'events.jsonl');
    cloud = await startLocalCloud({ port: 0, environment: { TABLE_NAME: 'valence-local' } });
    const lambda = cloud.services.lambda;
    lambda.register({ functionName: 'echo', entry: join(fixtures, 'lambda', 'fixtures', 'echo.ts') });
    lambda.register({ functionName: 'cancel', entry: join(fixtures, 'apigateway', 'fixtures', 'proxy.ts') });
    lambda.register({ functionName: 'completion', entry: join(fixtures, 'events', 'fixtures', 'record.ts'), environment: { RECORD_FILE: recordFile } });
  });

  afterAll(async () => {
    await cloud?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('invokes a function with the SDK, which sees the endpoint and environment of the cloud', async () => {
    const response = await cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'echo', Payload: '{"n":1}' }));
    const result = JSON.parse(new TextDecoder().decode(response.Payload)) as { event: unknown; env: Record<string, string> };
    expect(result.event).toEqual({ n: 1 });
    expect(result.env).toMatchObject({ AWS_ENDPOINT_URL: cloud.endpoint, TABLE_NAME: 'valence-local', AWS_LAMBDA_FUNCTION_NAME: 'echo' });
    expect(cloud.counters()['lambda']?.['Invoke']).toBeGreaterThanOrEqual(1);
  });

  it('serves an IAM-authorized API Gateway route and refuses unsigned calls', async () => {
    const api = cloud.services.apigateway;
    const apiId = api.createRestApi('valence');
    api.addRoute(apiId, { method: 'POST', path: '/dispatches/{id}/cancel', functionName: 'cancel' });
    const url = `${api.invokeUrl(apiId, cloud.endpoint)}/dispatches/d-9/cancel`;

    const unsigned = await fetch(url, { method: 'POST', body: '{}' });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.json()).toEqual({ message: 'Missing Authentication Token' });

    const signed = await signedFetch(url, { method: 'POST', body: '{"reason":"test"}', credentials: cloud.credentials, region: cloud.region });
    expect(signed.status).toBe(202);
    const event = (await signed.json()) as { pathParameters: unknown; requestContext: { identity: { accessKey: string; userArn: string } } };
    expect(event.pathParameters).toEqual({ id: 'd-9' });
    expect(event.requestContext.identity.accessKey).toBe(cloud.credentials.accessKeyId);
    expect(event.requestContext.identity.userArn).toBe(`arn:aws:iam::${cloud.accountId}:user/${cloud.credentials.accessKeyId}`);
    expect(cloud.counters()['execute-api']?.['POST /dispatches/{id}/cancel']).toBe(1);
  });

  it('delivers an emitted state-change event to the Lambda target of a rule made with the SDK', async () => {
    const pattern = { source: ['aws.batch'], 'detail-type': ['Batch Job State Change'], detail: { status: ['SUCCEEDED', 'FAILED'] } };
    await cloud.clients.eventbridge.send(new PutRuleCommand({ Name: 'batch-done', EventPattern: JSON.stringify(pattern) }));
    await cloud.clients.eventbridge.send(
      new PutTargetsCommand({ Rule: 'batch-done', Targets: [{ Id: 'completion', Arn: `arn:aws:lambda:${cloud.region}:${cloud.accountId}:function:completion` }] }),
    );
    cloud.services.events.emit({ source: 'aws.batch', 'detail-type': 'Batch Job State Change', detail: { status: 'FAILED', jobId: 'j-7' } });
    const delivered = await eventually(() => (existsSync(recordFile) ? readFileSync(recordFile, 'utf8') : undefined));
    expect(JSON.parse(delivered)).toMatchObject({ source: 'aws.batch', account: cloud.accountId, detail: { jobId: 'j-7' } });
    expect(cloud.counters()['events']).toMatchObject({ PutRule: 1, PutTargets: 1 });
  });
});
