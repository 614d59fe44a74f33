/**
 * The local DynamoDB keeps table descriptions in memory (localstack/dynamodb/index.ts,
 * `rememberTables`, issue 18). A remembered description must never outlive its table: after a
 * delete the table is gone for items too, and a table created again under the same name serves
 * its new key schema and indexes. Over HTTP with the real SDK client.
 */
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ResourceNotFoundException,
  UpdateTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';

let cloud: LocalCloud;
let ddb: DynamoDBClient;
beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0 });
  ddb = cloud.clients.dynamodb;
});
afterAll(async () => {
  await cloud?.stop();
});

describe('table descriptions kept in memory', () => {
  it('follow a delete and a re-create under the same name, key schema and indexes included', async () => {
    const TableName = 'remembered';
    await ddb.send(
      new CreateTableCommand({
        TableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    await ddb.send(new PutItemCommand({ TableName, Item: { id: { S: 'a' }, v: { N: '1' } } }));
    expect((await ddb.send(new GetItemCommand({ TableName, Key: { id: { S: 'a' } } }))).Item?.v).toEqual({ N: '1' });

    await ddb.send(new DeleteTableCommand({ TableName }));
    await expect(ddb.send(new GetItemCommand({ TableName, Key: { id: { S: 'a' } } }))).rejects.toBeInstanceOf(ResourceNotFoundException);

    // Same name, another key schema and a GSI: the old description would refuse this key.
    await ddb.send(
      new CreateTableCommand({
        TableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'N' },
          { AttributeName: 'tag', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [{ IndexName: 'byTag', KeySchema: [{ AttributeName: 'tag', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } }],
      }),
    );
    await ddb.send(new PutItemCommand({ TableName, Item: { pk: { S: 'p' }, sk: { N: '2' }, tag: { S: 't' } } }));
    await expect(ddb.send(new GetItemCommand({ TableName, Key: { id: { S: 'a' } } }))).rejects.toThrow(/key/i);
    const byTag = await ddb.send(new QueryCommand({ TableName, IndexName: 'byTag', KeyConditionExpression: 'tag = :t', ExpressionAttributeValues: { ':t': { S: 't' } } }));
    expect(byTag.Items?.map((i) => i.sk)).toEqual([{ N: '2' }]);
  });

  it('follow an update: the new throughput is what the table describes', async () => {
    const TableName = 'updated';
    await ddb.send(
      new CreateTableCommand({
        TableName,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        ProvisionedThroughput: { ReadCapacityUnits: 1, WriteCapacityUnits: 1 },
      }),
    );
    // Read once, so the description is remembered before it changes.
    await ddb.send(new GetItemCommand({ TableName, Key: { id: { S: 'x' } } }));
    await ddb.send(new UpdateTableCommand({ TableName, ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 7 } }));
    // dynalite finishes the update in the background (updateTableMs 0): wait until it is ACTIVE.
    let table = (await ddb.send(new DescribeTableCommand({ TableName }))).Table;
    for (let i = 0; i < 50 && table?.TableStatus !== 'ACTIVE'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      table = (await ddb.send(new DescribeTableCommand({ TableName }))).Table;
    }
    expect(table?.TableStatus).toBe('ACTIVE');
    expect(table?.ProvisionedThroughput).toMatchObject({ ReadCapacityUnits: 5, WriteCapacityUnits: 7 });
    await ddb.send(new PutItemCommand({ TableName, Item: { id: { S: 'y' } } }));
    expect((await ddb.send(new GetItemCommand({ TableName, Key: { id: { S: 'y' } } }))).Item).toEqual({ id: { S: 'y' } });
  });
});
