/**
 * The local DynamoDB's TransactWriteItems (dynalite lacks it; localstack/dynamodb/index.ts adds
 * it on dynalite's own validation and operations), over HTTP with the real SDK clients: all or
 * nothing, cancellation reasons in order with the old item, AWS's validation, idempotency
 * tokens, isolation from concurrent writers, fault injection.
 */
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  IdempotentParameterMismatchException,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';

let cloud: LocalCloud;
let ddb: DynamoDBClient;
const TABLE = 'txn-table';

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0 });
  ddb = cloud.clients.dynamodb;
  await ddb.send(
    new CreateTableCommand({
      TableName: TABLE,
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
});
afterAll(async () => {
  await cloud?.stop();
});

const key = (pk: string, sk: string) => ({ pk: { S: pk }, sk: { S: sk } });
async function item(pk: string, sk: string) {
  return (await ddb.send(new GetItemCommand({ TableName: TABLE, Key: key(pk, sk), ConsistentRead: true }))).Item;
}
const cancelIfNew = (pk: string, sk: string): TransactWriteItem => ({
  Update: {
    TableName: TABLE,
    Key: key(pk, sk),
    UpdateExpression: 'SET #s = :c',
    ConditionExpression: '#s = :n',
    ExpressionAttributeNames: { '#s': 'status' },
    ExpressionAttributeValues: { ':c': { S: 'CANCELLED' }, ':n': { S: 'NEW_OBJECT' } },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  },
});
async function seed(pk: string, n: number, status = 'NEW_OBJECT') {
  for (let i = 0; i < n; i++) await ddb.send(new PutItemCommand({ TableName: TABLE, Item: { ...key(pk, `N#${i}`), status: { S: status } } }));
}

describe('TransactWriteItems on the local DynamoDB', () => {
  it('applies every action (update, put with an index entry, delete, condition check) at once', async () => {
    await seed('a', 3);
    await ddb.send(new PutItemCommand({ TableName: TABLE, Item: { ...key('a', 'gone'), status: { S: 'X' } } }));
    await ddb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          cancelIfNew('a', 'N#0'),
          cancelIfNew('a', 'N#1'),
          { Put: { TableName: TABLE, Item: { ...key('a', 'job'), jobHandle: { S: 'job-7' } }, ConditionExpression: 'attribute_not_exists(pk)' } },
          { Delete: { TableName: TABLE, Key: key('a', 'gone') } },
          { ConditionCheck: { TableName: TABLE, Key: key('a', 'N#2'), ConditionExpression: '#s = :n', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':n': { S: 'NEW_OBJECT' } } } },
        ],
      }),
    );
    expect((await item('a', 'N#0'))?.status).toEqual({ S: 'CANCELLED' });
    expect((await item('a', 'N#1'))?.status).toEqual({ S: 'CANCELLED' });
    expect((await item('a', 'N#2'))?.status).toEqual({ S: 'NEW_OBJECT' });
    expect(await item('a', 'gone')).toBeUndefined();
    const byHandle = await ddb.send(new QueryCommand({ TableName: TABLE, IndexName: 'byJobHandle', KeyConditionExpression: 'jobHandle = :h', ExpressionAttributeValues: { ':h': { S: 'job-7' } } }));
    expect(byHandle.Items?.map((i) => i['sk']?.S)).toEqual(['job']);
  });

  it('writes nothing when one condition fails, and gives a reason per action in order, with the old item', async () => {
    await seed('b', 3);
    await ddb.send(new UpdateItemCommand({ TableName: TABLE, Key: key('b', 'N#1'), UpdateExpression: 'SET #s = :r, runId = :id', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':r': { S: 'RUNNING' }, ':id': { S: 'run-1' } } }));
    const error = (await ddb.send(new TransactWriteItemsCommand({ TransactItems: [cancelIfNew('b', 'N#0'), cancelIfNew('b', 'N#1'), cancelIfNew('b', 'N#2')] })).catch((e: unknown) => e)) as TransactionCanceledException;
    expect(error).toBeInstanceOf(TransactionCanceledException);
    expect(error.message).toContain('[None, ConditionalCheckFailed, None]');
    expect(error.CancellationReasons?.map((r) => r.Code)).toEqual(['None', 'ConditionalCheckFailed', 'None']);
    expect(error.CancellationReasons?.[1]?.Item).toMatchObject({ status: { S: 'RUNNING' }, runId: { S: 'run-1' } });
    // All or nothing: the two that passed their conditions were not written.
    expect((await item('b', 'N#0'))?.status).toEqual({ S: 'NEW_OBJECT' });
    expect((await item('b', 'N#2'))?.status).toEqual({ S: 'NEW_OBJECT' });
  });

  it('refuses what AWS refuses, with a ValidationException that names the problem, and changes nothing', async () => {
    await seed('c', 2);
    const many = Array.from({ length: 101 }, (_, i) => cancelIfNew('c', `N#${i}`));
    await expect(ddb.send(new TransactWriteItemsCommand({ TransactItems: many }))).rejects.toThrow(/less than or equal to 100/);
    await expect(ddb.send(new TransactWriteItemsCommand({ TransactItems: [cancelIfNew('c', 'N#0'), cancelIfNew('c', 'N#0')] }))).rejects.toMatchObject({
      name: 'ValidationException',
      message: 'Transaction request cannot include multiple operations on one item',
    });
    const both = { ...cancelIfNew('c', 'N#1'), Delete: { TableName: TABLE, Key: key('c', 'N#1') } };
    await expect(ddb.send(new TransactWriteItemsCommand({ TransactItems: [cancelIfNew('c', 'N#0'), both] }))).rejects.toThrow(/exactly one of/);
    await expect(ddb.send(new TransactWriteItemsCommand({ TransactItems: [{ Update: { TableName: TABLE, Key: key('c', 'N#0'), UpdateExpression: 'SET #s = :c' } }] }))).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(ddb.send(new TransactWriteItemsCommand({ TransactItems: [{ ...cancelIfNew('c', 'N#0'), Update: { ...cancelIfNew('c', 'N#0').Update!, TableName: 'no-such-table' } }] }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect((await item('c', 'N#0'))?.status).toEqual({ S: 'NEW_OBJECT' });
    expect((await item('c', 'N#1'))?.status).toEqual({ S: 'NEW_OBJECT' });
  });

  it('applies a request once per ClientRequestToken, and refuses the token for another request', async () => {
    const add = (sk: string): TransactWriteItem => ({ Update: { TableName: TABLE, Key: key('d', sk), UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } } });
    const token = `token-${Date.now()}`;
    await ddb.send(new TransactWriteItemsCommand({ TransactItems: [add('x'), add('y')], ClientRequestToken: token }));
    await ddb.send(new TransactWriteItemsCommand({ TransactItems: [add('x'), add('y')], ClientRequestToken: token }));
    expect((await item('d', 'x'))?.['n']).toEqual({ N: '1' });
    await expect(ddb.send(new TransactWriteItemsCommand({ TransactItems: [add('x')], ClientRequestToken: token }))).rejects.toBeInstanceOf(IdempotentParameterMismatchException);
    expect((await item('d', 'x'))?.['n']).toEqual({ N: '1' });
  });

  it('is isolated from concurrent writers: no increment is lost and no transaction is half applied', async () => {
    const add = (sk: string): TransactWriteItem => ({ Update: { TableName: TABLE, Key: key('e', sk), UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } } });
    const transactions = Array.from({ length: 40 }, () => ddb.send(new TransactWriteItemsCommand({ TransactItems: [add('x'), add('y')] })));
    const plain = Array.from({ length: 40 }, () => ddb.send(new UpdateItemCommand({ TableName: TABLE, Key: key('e', 'x'), UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } })));
    await Promise.all([...transactions, ...plain]);
    expect((await item('e', 'x'))?.['n']).toEqual({ N: '80' });
    expect((await item('e', 'y'))?.['n']).toEqual({ N: '40' });
    // A conditional transaction racing plain conditional writers on the same items: each item ends claimed exactly once.
    await seed('f', 20);
    const claims = Array.from({ length: 20 }, (_, i) =>
      ddb
        .send(new UpdateItemCommand({ TableName: TABLE, Key: key('f', `N#${i}`), UpdateExpression: 'SET #s = :r', ConditionExpression: '#s = :n', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':r': { S: 'RUNNING' }, ':n': { S: 'NEW_OBJECT' } } }))
        .then(() => 'claimed', (e: unknown) => {
          if (e instanceof ConditionalCheckFailedException) return 'lost';
          throw e;
        }),
    );
    const txn = ddb.send(new TransactWriteItemsCommand({ TransactItems: Array.from({ length: 20 }, (_, i) => cancelIfNew('f', `N#${i}`)) })).then(() => 'applied', (e: unknown) => {
      if (e instanceof TransactionCanceledException) return 'cancelled';
      throw e;
    });
    const [outcome, ...claimed] = await Promise.all([txn, ...claims]);
    const statuses = await Promise.all(Array.from({ length: 20 }, async (_, i) => (await item('f', `N#${i}`))?.status?.S));
    if (outcome === 'applied') {
      // The transaction went first: every claim lost, every item is CANCELLED.
      expect(claimed.every((c) => c === 'lost')).toBe(true);
      expect(statuses.every((s) => s === 'CANCELLED')).toBe(true);
    } else {
      // A claim went first: the transaction wrote nothing, and only claims changed items.
      expect(statuses.every((s) => s === 'RUNNING' || s === 'NEW_OBJECT')).toBe(true);
      expect(statuses.filter((s) => s === 'RUNNING').length).toBe(claimed.filter((c) => c === 'claimed').length);
    }
  });

  it('is subject to the fault model like every other operation', async () => {
    cloud.faults.add({ service: 'dynamodb', operation: 'TransactWriteItems', errorRate: 1 });
    const client = new DynamoDBClient({ endpoint: cloud.endpoint, region: cloud.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
    try {
      await seed('g', 1);
      await expect(client.send(new TransactWriteItemsCommand({ TransactItems: [cancelIfNew('g', 'N#0')] }))).rejects.toMatchObject({ name: 'ThrottlingException' });
      expect((await item('g', 'N#0'))?.status).toEqual({ S: 'NEW_OBJECT' });
    } finally {
      cloud.faults.clear();
      client.destroy();
    }
  });
});

describe('IAM for TransactWriteItems', () => {
  it('asks for each action as the single-item operation it is, on its table, as AWS does', async () => {
    const { IamEnforcer } = await import('../../localstack/iam/index.ts');
    const { StaticCredentialStore } = await import('../../localstack/core/credentials.ts');
    const enforcer = new IamEnforcer({ credentials: new StaticCredentialStore(), accountId: '000000000000', resourceTags: () => Promise.resolve(undefined) });
    const roleArn = 'arn:aws:iam::000000000000:role/updater';
    const tableArn = `arn:aws:dynamodb:us-east-1:000000000000:table/${TABLE}`;
    enforcer.putRoles([{ arn: roleArn, policies: [{ name: 'p', document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: tableArn }] } }] }]);
    const { accessKeyId } = enforcer.credentialsForRole(roleArn);
    const ask = (items: TransactWriteItem[]) =>
      enforcer.authorize(accessKeyId, {
        service: 'dynamodb',
        method: 'POST',
        path: '/',
        query: new URLSearchParams(),
        headers: { 'x-amz-target': 'DynamoDB_20120810.TransactWriteItems' },
        body: Buffer.from(JSON.stringify({ TransactItems: items })),
        region: 'us-east-1',
        accountId: '000000000000',
      });
    expect(await ask([cancelIfNew('a', 'N#0'), cancelIfNew('a', 'N#1')])).toBeUndefined();
    const check: TransactWriteItem = { ConditionCheck: { TableName: TABLE, Key: key('a', 'N#0'), ConditionExpression: 'attribute_exists(pk)' } };
    expect(await ask([cancelIfNew('a', 'N#1'), check])).toMatchObject({ action: 'dynamodb:ConditionCheckItem', resource: tableArn });
    const elsewhere = { Update: { ...cancelIfNew('a', 'N#0').Update!, TableName: 'other' } };
    expect(await ask([cancelIfNew('a', 'N#1'), elsewhere])).toMatchObject({ action: 'dynamodb:UpdateItem', resource: 'arn:aws:dynamodb:us-east-1:000000000000:table/other' });
  });
});
