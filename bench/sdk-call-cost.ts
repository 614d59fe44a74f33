/**
 * What one AWS SDK call costs the client (issue 18, round three): DynamoDB UpdateItem against a
 * stub server in a child process (bench/fixtures/dynamodb-stub.mjs), so only the client's CPU
 * is counted. It prints the CPU per call for each block of 250 calls from a fresh process: the
 * first blocks are what a Lambda sandbox pays, whose isolate serves a few hundred calls before
 * V8 has optimised the SDK's code; later blocks are the warm cost.
 *
 * Variants: `doc` (the runtime's DocumentClient from sdk/aws.ts, with `{ abortSignal }`),
 * `docNoOptions`, `docConstUA` (user-agent middleware replaced by a constant header), `raw`
 * (DynamoDBClient with marshalled input), `rawNoOptions`, `rawCached` (`cacheMiddleware: true`,
 * no options, so smithy's handler cache applies).
 *
 * ```sh
 * node --import tsx bench/sdk-call-cost.ts <variant> [blocks of 250]
 * ```
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UpdateItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createAwsClients } from '../sdk/aws.ts';

const STUB = fileURLToPath(new URL('./fixtures/dynamodb-stub.mjs', import.meta.url));
const server = spawn(process.execPath, [STUB], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<string>((resolve) => server.stdout.once('data', (d: Buffer) => resolve(String(d).trim())));
const endpoint = `http://127.0.0.1:${port}`;
const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };
const aws = createAwsClients({ endpoint, region: 'us-east-1', credentials });
const signal = new AbortController().signal;
const docInput = () => ({
  TableName: 't',
  Key: { pk: 'D#x', sk: 'N#00001' },
  UpdateExpression: 'SET #s = :s, attempts = attempts + :one, runId = :r, leaseUntil = :l',
  ConditionExpression: '#s = :new AND attribute_not_exists(cancelRequested)',
  ExpressionAttributeNames: { '#s': 'status' },
  ExpressionAttributeValues: { ':s': 'RUNNING', ':one': 1, ':r': 'abc', ':l': 123456789, ':new': 'NEW_OBJECT' },
  ReturnValues: 'ALL_NEW' as const,
});
const rawInput = () => ({
  TableName: 't',
  Key: { pk: { S: 'D#x' }, sk: { S: 'N#00001' } },
  UpdateExpression: 'SET #s = :s, attempts = attempts + :one, runId = :r, leaseUntil = :l',
  ConditionExpression: '#s = :new AND attribute_not_exists(cancelRequested)',
  ExpressionAttributeNames: { '#s': 'status' },
  ExpressionAttributeValues: { ':s': { S: 'RUNNING' }, ':one': { N: '1' }, ':r': { S: 'abc' }, ':l': { N: '123456789' }, ':new': { S: 'NEW_OBJECT' } },
  ReturnValues: 'ALL_NEW' as const,
});
const base = { endpoint, region: 'us-east-1', credentials, maxAttempts: 8, retryMode: 'standard' };
const variants: Record<string, () => () => Promise<unknown>> = {
  doc: () => () => aws.dynamodb.send(new UpdateCommand(docInput()), { abortSignal: signal }),
  docNoOptions: () => () => aws.dynamodb.send(new UpdateCommand(docInput())),
  docConstUA: () => {
    aws.dynamodb.middlewareStack.remove('getUserAgentMiddleware');
    aws.dynamodb.middlewareStack.add(
      (next) => (args) => {
        const request = (args as { request: { headers: Record<string, string> } }).request;
        request.headers['user-agent'] = 'aws-sdk-js/3 valence';
        request.headers['x-amz-user-agent'] = 'aws-sdk-js/3 valence';
        return next(args);
      },
      { step: 'build', name: 'constUA' },
    );
    return () => aws.dynamodb.send(new UpdateCommand(docInput()), { abortSignal: signal });
  },
  raw: () => {
    const raw = new DynamoDBClient(base);
    return () => raw.send(new UpdateItemCommand(rawInput()), { abortSignal: signal });
  },
  rawNoOptions: () => {
    const raw = new DynamoDBClient(base);
    return () => raw.send(new UpdateItemCommand(rawInput()));
  },
  rawCached: () => {
    const raw = new DynamoDBClient({ ...base, cacheMiddleware: true });
    return () => raw.send(new UpdateItemCommand(rawInput()));
  },
};
const name = process.argv[2] ?? 'doc';
const batches = Number(process.argv[3] ?? 12);
const call = variants[name]!();
const out: string[] = [];
let total = 0;
for (let b = 0; b < batches; b++) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < 250; i++) await call();
  const u = process.cpuUsage(c0);
  total += u.user + u.system;
  out.push(((u.user + u.system) / 1000 / 250).toFixed(2));
}
process.stdout.write(`${name}: ms CPU per call, by 250 calls: ${out.join(' ')}; mean ${(total / 1000 / 250 / batches).toFixed(2)}\n`);
aws.destroy();
server.kill();
