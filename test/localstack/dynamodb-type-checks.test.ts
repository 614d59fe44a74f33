/**
 * The local DynamoDB's request type check (localstack/dynamodb/type-checks.ts, issue 18) is
 * dynalite's own `checkTypes`, made cheap. These tests hold it to that: thousands of generated
 * requests against every dynalite action's types, valid and not, must get the same converted
 * request (and the same fields deleted from the input) or the same error as dynalite's
 * original. Then over HTTP, with the real SDK client: the cloud uses the new check, converts
 * what DynamoDB converts, and refuses what it refuses without writing anything.
 */
import { createRequire } from 'node:module';
import { CreateTableCommand, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';
import { checkTypes } from '../../localstack/dynamodb/type-checks.ts';
import { seeded } from '../sdk/compiler/graphs.ts';

const require = createRequire(import.meta.url);
type Check = (data: unknown, types: Record<string, unknown>) => unknown;
const validations = require('dynalite/validations') as { checkTypes: Check & { original?: Check } };
/** dynalite's own check, whether or not a local cloud in this worker has swapped it already. */
const original: Check = validations.checkTypes.original ?? validations.checkTypes;

const ACTIONS = [
  'batchGetItem', 'batchWriteItem', 'createTable', 'deleteItem', 'deleteTable', 'describeTable', 'describeTimeToLive', 'getItem', 'listTables',
  'listTagsOfResource', 'putItem', 'query', 'scan', 'tagResource', 'untagResource', 'updateItem', 'updateTable',
] as const;
const typesOf = (action: string): Record<string, unknown> => (require(`dynalite/validations/${action}`) as { types: Record<string, unknown> }).types;

const ATTRIBUTE_KINDS = ['S', 'N', 'B', 'BOOL', 'NULL', 'SS', 'NS', 'BS', 'L', 'M'] as const;

/** Values of every JSON kind, the ones DynamoDB's parser converts among them. */
function wrongValue(r: () => number): unknown {
  const options: unknown[] = [true, false, 0, 7, 2.5, -3, '', 'x', 'TRUE', 'no', '1', 'QUJD', 'QUJ', 'QUJD=', [], [1, 'a'], {}, { S: 'a' }, null];
  return options[Math.floor(r() * options.length)];
}

/** A value for `spec`: mostly what the type wants, sometimes anything at all. */
function valueFor(spec: unknown, r: () => number, depth: number): unknown {
  if (r() < 0.08) return wrongValue(r);
  const described = typeof spec === 'object' && spec !== null ? (spec as { type?: string; children?: unknown }) : undefined;
  const name = described?.type ?? (spec as string);
  const children = typeof described?.children === 'string' ? { type: described.children } : described?.children;
  const [base, subtype] = /(.+?)<(.+)>$/.exec(name)?.slice(1) ?? [name, undefined];
  switch (base) {
    case 'AttrStruct':
      return attributeValue(r, depth, subtype === 'ValueStruct');
    case 'String':
      return ['a', 'pk', 'ALL_OLD', 'attr', 'TOTAL', '#n = :v', 'S'][Math.floor(r() * 7)];
    case 'Boolean':
      return [true, false, 'yes', 'No', '0', 'maybe'][Math.floor(r() * 6)];
    case 'Short':
    case 'Integer':
    case 'Long':
    case 'Double':
      return [1, 25, 3.7, -2, 0][Math.floor(r() * 5)];
    case 'Blob':
      return ['QUJD', 'QUJDRA==', 'QUJ', 'QU=D', '****'][Math.floor(r() * 5)];
    case 'List':
    case 'ParameterizedList':
      return depth > 3 ? [] : Array.from({ length: Math.floor(r() * 3) }, () => valueFor(children, r, depth + 1));
    case 'Map':
    case 'ParameterizedMap': {
      const out: Record<string, unknown> = {};
      if (depth <= 3) for (let i = Math.floor(r() * 3); i > 0; i--) out[`k${i}`] = valueFor(children, r, depth + 1);
      return out;
    }
    case 'ValueStruct':
    case 'FieldStruct':
      return depth > 3 ? {} : request(children as Record<string, unknown>, r, depth + 1);
    default:
      return wrongValue(r);
  }
}

function attributeValue(r: () => number, depth: number, nested: boolean): unknown {
  const kind = ATTRIBUTE_KINDS[Math.floor(r() * (depth > 3 ? 8 : ATTRIBUTE_KINDS.length))]!;
  const value: Record<string, unknown> = {};
  switch (kind) {
    case 'S':
    case 'N':
      value[kind] = r() < 0.9 ? String(Math.floor(r() * 100)) : wrongValue(r);
      break;
    case 'B':
      value[kind] = valueFor('Blob', r, depth);
      break;
    case 'BOOL':
    case 'NULL':
      value[kind] = valueFor('Boolean', r, depth);
      break;
    case 'SS':
    case 'NS':
      value[kind] = r() < 0.9 ? ['1', '2'] : wrongValue(r);
      break;
    case 'BS':
      value[kind] = r() < 0.9 ? ['QUJD', valueFor('Blob', r, depth)] : wrongValue(r);
      break;
    case 'L':
      value[kind] = Array.from({ length: Math.floor(r() * 3) }, () => attributeValue(r, depth + 1, true));
      break;
    case 'M': {
      const m: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 3); i > 0; i--) m[`f${i}`] = attributeValue(r, depth + 1, true);
      value[kind] = m;
      break;
    }
  }
  // Two kinds at once, an unknown member, a null member: DynamoDB's parser keeps what it knows.
  if (r() < 0.05) value['S'] = 'also';
  if (r() < 0.05) value['X'] = 1;
  if (r() < 0.05) value['N'] = null;
  return nested && r() < 0.03 ? wrongValue(r) : value;
}

function request(types: Record<string, unknown>, r: () => number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(types)) if (r() < 0.7) out[key] = valueFor(spec, r, depth);
  if (r() < 0.2) out['Unknown'] = wrongValue(r);
  if (r() < 0.1) out[Object.keys(types)[0] ?? 'x'] = null;
  return out;
}

/** What a check did: its answer or its error, and what it left of its input. */
function outcome(check: Check, input: Record<string, unknown>, types: Record<string, unknown>): string {
  const data = structuredClone(input);
  try {
    return JSON.stringify({ answer: check(data, types), left: data });
  } catch (error) {
    const e = error as Error & { statusCode?: number; body?: unknown };
    return JSON.stringify({ error: e.message, statusCode: e.statusCode, body: e.body, left: data });
  }
}

describe('the cheap type check is dynalite’s', () => {
  it('answers every action’s generated requests as dynalite does: same conversions, same errors, same fields deleted', () => {
    let compared = 0;
    let refused = 0;
    for (const action of ACTIONS) {
      const types = typesOf(action);
      for (let seed = 1; seed <= 400; seed++) {
        const input = request(types, seeded(seed * 97 + action.length));
        const expected = outcome(original, input, types);
        const actual = outcome(checkTypes as Check, input, types);
        if (actual !== expected) throw new Error(`${action}, seed ${seed}: ${JSON.stringify(input)}\n  dynalite: ${expected}\n  cheap:    ${actual}`);
        compared++;
        if (expected.startsWith('{"error"')) refused++;
      }
    }
    expect(compared).toBe(ACTIONS.length * 400);
    // Both sides of the check are exercised: a generator that only made valid (or only
    // invalid) requests would prove little.
    expect(refused).toBeGreaterThan(compared / 10);
    expect(refused).toBeLessThan(compared * 0.9);
  });

  it('is kept to a type table entry dynalite would read: the same conversions on a real node item', () => {
    const item = {
      pk: { S: 'D#1' }, sk: { S: 'N#00001' }, parents: { L: [{ N: '0' }] }, executorJson: { M: { kind: { S: 'lambda' } } },
      cancelRequested: { BOOL: 'yes' }, attempts: { N: '0' }, blob: { B: 'QUJD' }, tags: { SS: ['a'] },
    };
    const types = typesOf('batchWriteItem');
    const input = { RequestItems: { t: [{ PutRequest: { Item: item } }] } };
    expect(outcome(checkTypes as Check, input, types)).toBe(outcome(original, input, types));
    expect((checkTypes(structuredClone(input), types as never) as { RequestItems: { t: { PutRequest: { Item: { cancelRequested: unknown } } }[] } }).RequestItems.t[0]!.PutRequest.Item.cancelRequested).toEqual({ BOOL: true });
  });
});

describe('over HTTP', () => {
  let cloud: LocalCloud;
  let ddb: DynamoDBClient;
  const TableName = 'type-checks';
  beforeAll(async () => {
    cloud = await startLocalCloud({ port: 0 });
    ddb = cloud.clients.dynamodb;
    await ddb.send(
      new CreateTableCommand({ TableName, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }),
    );
  });
  afterAll(async () => {
    await cloud?.stop();
  });

  /** Sends `PutItem` with its serialized body's `flag` replaced by `raw`: what a hand-written client might send. */
  async function putWithRawFlag(id: string, raw: string): Promise<void> {
    const command = new PutItemCommand({ TableName, Item: { id: { S: id }, flag: { BOOL: true } } });
    command.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body: string | Uint8Array; headers: Record<string, string> };
        const body = typeof request.body === 'string' ? request.body : Buffer.from(request.body).toString('utf8');
        request.body = body.replace('{"BOOL":true}', raw);
        request.headers['content-length'] = String(Buffer.byteLength(request.body));
        return next(args);
      },
      { step: 'build', name: 'rawFlag' },
    );
    await ddb.send(command);
  }

  it('uses the cheap check, converts a string boolean and refuses an unparseable one with the table unchanged', async () => {
    await putWithRawFlag('a', '{"BOOL":"yes"}');
    // The swap happened in this cloud (dynalite's own check is kept beside it only for the test above).
    expect(validations.checkTypes.original).toBeTypeOf('function');
    expect((await ddb.send(new GetItemCommand({ TableName, Key: { id: { S: 'a' } }, ConsistentRead: true }))).Item?.flag).toEqual({ BOOL: true });

    await expect(putWithRawFlag('b', '{"BOOL":"maybe"}')).rejects.toMatchObject({ name: 'SerializationException', $metadata: { httpStatusCode: 400 } });
    await expect(putWithRawFlag('c', '{"BOOL":[true]}')).rejects.toMatchObject({ name: 'SerializationException', message: 'Unrecognized collection type class java.lang.Boolean' });
    for (const id of ['b', 'c']) expect((await ddb.send(new GetItemCommand({ TableName, Key: { id: { S: id } }, ConsistentRead: true }))).Item).toBeUndefined();
  });
});
