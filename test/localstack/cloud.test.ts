import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { Sha256 } from '@aws-crypto/sha256-js';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud } from '../../localstack/index.ts';
import type { LocalCloud } from '../../localstack/index.ts';

let cloud: LocalCloud;
const extraClients: { destroy(): void }[] = [];
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0 });
});
afterAll(async () => {
  for (const client of extraClients) client.destroy();
  await cloud?.stop();
});

/** A client with no SDK retries, so one call is one request. */
function noRetry<T extends { destroy(): void }>(client: T): T {
  extraClients.push(client);
  return client;
}

async function signedFetch(service: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const url = new URL(cloud.endpoint);
  const signer = new SignatureV4({ credentials, region: cloud.region, service, sha256: Sha256 });
  const signed = await signer.sign(
    new HttpRequest({
      method: init.method ?? 'POST',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path,
      headers: { host: url.host, ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    }),
  );
  return fetch(`${cloud.endpoint}${path}`, { method: signed.method, headers: signed.headers as Record<string, string>, ...(init.body !== undefined ? { body: init.body } : {}) });
}

describe('DynamoDB', () => {
  it('creates a table with a GSI, puts, updates conditionally and queries the index', async () => {
    const ddb = cloud.clients.dynamodb;
    await ddb.send(
      new CreateTableCommand({
        TableName: 'valence-nodes',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'jobHandle', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [{ IndexName: 'byJobHandle', KeySchema: [{ AttributeName: 'jobHandle', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } }],
      }),
    );
    await ddb.send(
      new PutItemCommand({
        TableName: 'valence-nodes',
        Item: { pk: { S: 'd1' }, sk: { S: 'node#0' }, status: { S: 'NEW_OBJECT' }, cancelRequested: { BOOL: false }, jobHandle: { S: 'job-42' } },
      }),
    );
    const updated = await ddb.send(
      new UpdateItemCommand({
        TableName: 'valence-nodes',
        Key: { pk: { S: 'd1' }, sk: { S: 'node#0' } },
        UpdateExpression: 'SET #s = :running',
        ConditionExpression: '#s = :new AND cancelRequested = :false',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':running': { S: 'RUNNING' }, ':new': { S: 'NEW_OBJECT' }, ':false': { BOOL: false } },
        ReturnValues: 'ALL_NEW',
      }),
    );
    expect(updated.Attributes?.status).toEqual({ S: 'RUNNING' });
    // The same transition again must fail: the item is no longer NEW_OBJECT.
    await expect(
      ddb.send(
        new UpdateItemCommand({
          TableName: 'valence-nodes',
          Key: { pk: { S: 'd1' }, sk: { S: 'node#0' } },
          UpdateExpression: 'SET #s = :running',
          ConditionExpression: '#s = :new',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':running': { S: 'RUNNING' }, ':new': { S: 'NEW_OBJECT' } },
        }),
      ),
    ).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    // A writer that lost the race can learn the winner's write from the refusal itself.
    const refused = (await ddb
      .send(
        new UpdateItemCommand({
          TableName: 'valence-nodes',
          Key: { pk: { S: 'd1' }, sk: { S: 'node#0' } },
          UpdateExpression: 'SET #s = :running',
          ConditionExpression: '#s = :new',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':running': { S: 'RUNNING' }, ':new': { S: 'NEW_OBJECT' } },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      )
      .catch((e: unknown) => e)) as ConditionalCheckFailedException;
    expect(refused).toBeInstanceOf(ConditionalCheckFailedException);
    expect(refused.Item).toMatchObject({ status: { S: 'RUNNING' }, jobHandle: { S: 'job-42' } });
    // Without the option (and for an item that does not exist) the refusal carries no item.
    const missing = (await ddb
      .send(
        new PutItemCommand({
          TableName: 'valence-nodes',
          Item: { pk: { S: 'd1' }, sk: { S: 'node#9' } },
          ConditionExpression: 'attribute_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      )
      .catch((e: unknown) => e)) as ConditionalCheckFailedException;
    expect(missing).toBeInstanceOf(ConditionalCheckFailedException);
    expect(missing.Item).toBeUndefined();
    const byHandle = await ddb.send(
      new QueryCommand({
        TableName: 'valence-nodes',
        IndexName: 'byJobHandle',
        KeyConditionExpression: 'jobHandle = :h',
        ExpressionAttributeValues: { ':h': { S: 'job-42' } },
      }),
    );
    expect(byHandle.Items?.map((item) => item.sk?.S)).toEqual(['node#0']);
  });
});

describe('S3', () => {
  it('stores and returns a 10 MB streamed body byte for byte', async () => {
    const s3 = cloud.clients.s3;
    await s3.send(new CreateBucketCommand({ Bucket: 'valence-payloads' }));
    const data = randomBytes(10 * 1024 * 1024);
    const chunks = Array.from({ length: 40 }, (_, i) => data.subarray(i * 262_144, (i + 1) * 262_144));
    await s3.send(new PutObjectCommand({ Bucket: 'valence-payloads', Key: 'dispatches/d1/big.bin', Body: Readable.from(chunks), ContentLength: data.length }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'valence-payloads', Key: 'dispatches/d1/big.bin' }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    expect(bytes.length).toBe(data.length);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('stores streamed bodies without chunk framing even with the SDK default checksum settings', async () => {
    // The default client streams with aws-chunked framing and a trailing CRC32; s3rver alone
    // would store the framing. Without forcePathStyle: an IP endpoint is path-style anyway.
    const s3 = noRetry(new S3Client({ endpoint: cloud.endpoint, region: cloud.region, credentials }));
    const data = randomBytes(300_000);
    await s3.send(new PutObjectCommand({ Bucket: 'valence-payloads', Key: 'default-settings.bin', Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.length }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'valence-payloads', Key: 'default-settings.bin' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
    expect(got.ContentEncoding ?? '').not.toContain('aws-chunked');
  });

  it('serves <bucket>.localhost virtual-host requests as path style', async () => {
    await cloud.clients.s3.send(new PutObjectCommand({ Bucket: 'valence-payloads', Key: 'vhost.txt', Body: 'via vhost' }));
    const url = new URL(cloud.endpoint);
    const signer = new SignatureV4({ credentials, region: cloud.region, service: 's3', sha256: Sha256, uriEscapePath: false });
    const host = `valence-payloads.localhost:${url.port}`;
    const signed = await signer.sign(new HttpRequest({ method: 'GET', protocol: 'http:', hostname: 'valence-payloads.localhost', port: Number(url.port), path: '/vhost.txt', headers: { host } }));
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/vhost.txt', headers: signed.headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('via vhost');
  });

  it('lets the in-process API write objects that clients read', async () => {
    await cloud.services.s3.writeObject('valence-payloads', 'results/braket.json', '{"counts":{"00":10}}');
    const listed = await cloud.clients.s3.send(new ListObjectsV2Command({ Bucket: 'valence-payloads', Prefix: 'results/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['results/braket.json']);
    expect((await cloud.services.s3.readObject('valence-payloads', 'results/braket.json'))?.toString()).toBe('{"counts":{"00":10}}');
    await expect(cloud.services.s3.writeObject('no-such-bucket', 'k', 'v')).rejects.toMatchObject({ awsCode: 'NoSuchBucket' });
  });
});

describe('routing', () => {
  it('routes by the credential scope, whatever the path', async () => {
    const response = await signedFetch('dynamodb', '/some/odd/path', {
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.ListTables' },
      body: '{}',
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ TableNames: expect.arrayContaining(['valence-nodes']) as unknown });
  });

  it('refuses unsigned JSON requests (placed by X-Amz-Target) before DynamoDB sees them', async () => {
    cloud.resetCounters();
    const response = await fetch(`${cloud.endpoint}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.ListTables' },
      body: '{}',
    });
    // Every service requires SigV4, as on AWS: the router refuses it, DynamoDB never counts it.
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
    expect(cloud.counters()).toEqual({});
  });

  it('answers a service it does not host with an AWS error the SDK parses', async () => {
    const sts = noRetry(new STSClient({ endpoint: cloud.endpoint, region: cloud.region, credentials, maxAttempts: 1 }));
    const error = await sts.send(new GetCallerIdentityCommand({})).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'NotImplemented', $metadata: { httpStatusCode: 501 } });
    expect((error as Error).message).toContain("'sts'");
    const unsigned = await fetch(`${cloud.endpoint}/nothing-here`);
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain('MissingAuthenticationToken');
  });

  it('answers the admin health route', async () => {
    const health = (await (await fetch(`${cloud.endpoint}/_valence/health`, { headers: { 'x-valence-admin-token': cloud.adminToken } })).json()) as { status: string; services: string[]; endpoint: string };
    expect(health.status).toBe('ok');
    expect(health.endpoint).toBe(cloud.endpoint);
    expect(health.services).toEqual(expect.arrayContaining(['dynamodb', 's3', 'cloudformation']));
  });
});

describe('CloudFormation', () => {
  it('describes the outputs of a stack the local cloud deployed', async () => {
    cloud.services.cloudformation.putStack('valence', { TableName: 'valence-nodes', BucketName: 'valence-payloads' });
    const described = await cloud.clients.cloudformation.send(new DescribeStacksCommand({ StackName: 'valence' }));
    const stack = described.Stacks?.[0];
    expect(stack?.StackStatus).toBe('CREATE_COMPLETE');
    expect(stack?.StackId).toMatch(/^arn:aws:cloudformation:us-east-1:000000000000:stack\/valence\//);
    expect(Object.fromEntries((stack?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]))).toEqual({ TableName: 'valence-nodes', BucketName: 'valence-payloads' });
  });

  it('fails with ValidationError for an unknown stack, as AWS does', async () => {
    const cfn = noRetry(new CloudFormationClient({ endpoint: cloud.endpoint, region: cloud.region, credentials, maxAttempts: 1 }));
    await expect(cfn.send(new DescribeStacksCommand({ StackName: 'nope' }))).rejects.toMatchObject({ name: 'ValidationError', message: 'Stack with id nope does not exist' });
  });
});

describe('counters', () => {
  it('count requests per service and operation, in process and over HTTP', async () => {
    cloud.resetCounters();
    await cloud.clients.dynamodb.send(new GetItemCommand({ TableName: 'valence-nodes', Key: { pk: { S: 'd1' }, sk: { S: 'node#0' } } }));
    await cloud.clients.dynamodb.send(new GetItemCommand({ TableName: 'valence-nodes', Key: { pk: { S: 'd1' }, sk: { S: 'node#0' } } }));
    await cloud.clients.s3.send(new GetObjectCommand({ Bucket: 'valence-payloads', Key: 'vhost.txt' }));
    await cloud.clients.s3.send(new ListObjectsV2Command({ Bucket: 'valence-payloads' }));
    expect(cloud.counters()).toEqual({ dynamodb: { GetItem: 2 }, s3: { GetObject: 1, ListObjectsV2: 1 } });
    expect(await (await fetch(`${cloud.endpoint}/_valence/counters`, { headers: { 'x-valence-admin-token': cloud.adminToken } })).json()).toEqual({ dynamodb: { GetItem: 2 }, s3: { GetObject: 1, ListObjectsV2: 1 } });
    const reset = await fetch(`${cloud.endpoint}/_valence/counters/reset`, { headers: { 'x-valence-admin-token': cloud.adminToken }, method: 'POST' });
    expect(await reset.json()).toMatchObject({ dynamodb: { GetItem: 2 } });
    expect(cloud.counters()).toEqual({});
  });
});

describe('fault injection', () => {
  it('an error rate of 1.0 makes the SDK see ThrottlingException, and the SDK retries count', async () => {
    cloud.faults.add({ service: 'dynamodb', operation: 'PutItem', errorRate: 1 });
    try {
      const ddb = noRetry(new DynamoDBClient({ endpoint: cloud.endpoint, region: cloud.region, credentials, maxAttempts: 1 }));
      const item = { TableName: 'valence-nodes', Item: { pk: { S: 'd2' }, sk: { S: 'node#0' } } };
      await expect(ddb.send(new PutItemCommand(item))).rejects.toMatchObject({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
      cloud.resetCounters();
      const retrying = noRetry(new DynamoDBClient({ endpoint: cloud.endpoint, region: cloud.region, credentials, maxAttempts: 2 }));
      await expect(retrying.send(new PutItemCommand(item))).rejects.toMatchObject({ name: 'ThrottlingException', $metadata: { attempts: 2 } });
      expect(cloud.requestCounters.get('dynamodb', 'PutItem')).toBe(2);
      // Other operations are unaffected.
      await cloud.clients.dynamodb.send(new GetItemCommand({ TableName: 'valence-nodes', Key: { pk: { S: 'd1' }, sk: { S: 'node#0' } } }));
    } finally {
      cloud.faults.clear();
    }
    await cloud.clients.dynamodb.send(new PutItemCommand({ TableName: 'valence-nodes', Item: { pk: { S: 'd2' }, sk: { S: 'node#0' } } }));
  });

  it('adds latency to the chosen operation only', async () => {
    cloud.faults.add({ service: 'dynamodb', operation: 'GetItem', latencyMs: 1_500 });
    try {
      const key = { TableName: 'valence-nodes', Key: { pk: { S: 'd1' }, sk: { S: 'node#0' } } };
      // Both at once: the delayed GetItem takes at least its latency; the S3 read, not delayed,
      // ends first (an ordering, which a loaded machine does not break).
      const order: string[] = [];
      const started = performance.now();
      const getItem = cloud.clients.dynamodb.send(new GetItemCommand(key)).then(() => {
        order.push('GetItem');
        return performance.now() - started;
      });
      const getObject = cloud.clients.s3.send(new GetObjectCommand({ Bucket: 'valence-payloads', Key: 'vhost.txt' })).then(() => order.push('GetObject'));
      const [delayed] = await Promise.all([getItem, getObject]);
      expect(delayed).toBeGreaterThanOrEqual(1_490);
      expect(order).toEqual(['GetObject', 'GetItem']);
    } finally {
      cloud.faults.clear();
    }
  });

  it('is configurable over HTTP and renders S3 faults as S3 XML errors', async () => {
    const s3 = noRetry(new S3Client({ endpoint: cloud.endpoint, region: cloud.region, credentials, forcePathStyle: true, maxAttempts: 1 }));
    const put = await fetch(`${cloud.endpoint}/_valence/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-valence-admin-token': cloud.adminToken },
      body: JSON.stringify({ rules: [{ service: 's3', operation: 'GetObject', errorRate: 1, error: 'server-error' }] }),
    });
    expect(put.status).toBe(200);
    expect(await (await fetch(`${cloud.endpoint}/_valence/faults`, { headers: { 'x-valence-admin-token': cloud.adminToken } })).json()).toEqual({
      rules: [{ service: 's3', operation: 'GetObject', errorRate: 1, error: 'server-error' }],
      lambdaCrashes: [],
    });
    await expect(s3.send(new GetObjectCommand({ Bucket: 'valence-payloads', Key: 'vhost.txt' }))).rejects.toMatchObject({ name: 'InternalError', $metadata: { httpStatusCode: 500 } });
    const bad = await fetch(`${cloud.endpoint}/_valence/faults`, { headers: { 'x-valence-admin-token': cloud.adminToken }, method: 'PUT', body: JSON.stringify({ rules: [{ service: 's3', errorRate: 7 }] }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ __type: 'InvalidFaultConfig' });
    expect((await fetch(`${cloud.endpoint}/_valence/faults`, { headers: { 'x-valence-admin-token': cloud.adminToken }, method: 'DELETE' })).status).toBe(200);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'valence-payloads', Key: 'vhost.txt' }));
    expect(await got.Body!.transformToString()).toBe('via vhost');
  });

  it('renders CloudFormation faults as query-protocol errors', async () => {
    cloud.faults.add({ service: 'cloudformation', errorRate: 1 });
    try {
      const cfn = noRetry(new CloudFormationClient({ endpoint: cloud.endpoint, region: cloud.region, credentials, maxAttempts: 1 }));
      await expect(cfn.send(new DescribeStacksCommand({ StackName: 'valence' }))).rejects.toMatchObject({ name: 'ThrottlingException' });
    } finally {
      cloud.faults.clear();
    }
  });
});
