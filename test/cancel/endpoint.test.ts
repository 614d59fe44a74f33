// The cancel endpoint as a client meets it: AWS_IAM (SigV4) authorization, clear 4xx answers
// for bad requests that leave the table untouched; the sweeper, which stops a job whose first
// TerminateJob failed, and which ends a dispatch whose execution ended on its own; and a
// whole-dispatch cancel that never ends its dispatch CANCELLED while a merged target still runs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { cancelReportKey } from '../../sdk/runtime/cancel.ts';
import * as wf from './fixtures/workflows.ts';
import { alive, beats, heartbeatStopped, waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
let h: RuntimeHarness;
let completed: string;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
  completed = (await h.client.dispatch(wf.quick)(h.dir)).id;
  await h.client.getResult(completed, { wait: true });
}, 60_000);
afterAll(async () => h?.close());

async function call(path: string, body: string, options: { sign?: boolean; secret?: string } = {}): Promise<{ status: number; json: { message?: string } }> {
  const { apiUrl } = await h.client.outputs();
  const url = new URL(path, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  let headers: Record<string, string> = { host: url.host, 'content-type': 'application/json' };
  if (options.sign !== false) {
    const signer = new SignatureV4({
      service: 'execute-api',
      region: h.cloud.region,
      credentials: { accessKeyId: h.cloud.credentials.accessKeyId, secretAccessKey: options.secret ?? h.cloud.credentials.secretAccessKey },
      sha256: Sha256,
    });
    const signed = await signer.sign({ method: 'POST', protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {}, headers, body });
    headers = signed.headers;
  }
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, json: (await response.json()) as { message?: string } };
}

async function tableSnapshot(): Promise<string> {
  const items = await h.cloud.clients.dynamodb.send(new ScanCommand({ TableName: 'valence-table' }));
  return JSON.stringify((items.Items ?? []).map((i) => JSON.stringify(i)).sort());
}

describe('bad requests at POST /dispatches/{id}/cancel', () => {
  it.each([
    ['an unknown dispatch', 'dispatches/00000000-0000-0000-0000-000000000000/cancel', '{}', {}, 404, /No dispatch/],
    ['a body that is not JSON', `dispatches/{completed}/cancel`, '{nope', {}, 400, /not valid JSON/],
    ['task ids that are not ids', `dispatches/{completed}/cancel`, '{"taskIds":[1,"x"]}', {}, 400, /taskIds\[1\]/],
    ['an unknown field', `dispatches/{completed}/cancel`, '{"taskIdz":[1]}', {}, 400, /taskIdz/],
    ['a reason that is not text', `dispatches/{completed}/cancel`, '{"reason":5}', {}, 400, /reason/],
    ['an unsigned request', `dispatches/{completed}/cancel`, '{}', { sign: false }, 403, /Missing Authentication Token/],
    ['a request signed with the wrong secret', `dispatches/{completed}/cancel`, '{}', { secret: 'wrong' }, 403, /signature/i],
  ])('refuses %s and changes nothing', async (_what, path, body, options, status, message) => {
    const before = await tableSnapshot();
    const answer = await call(path.replace('{completed}', completed), body, options);
    expect(answer.status).toBe(status);
    expect(answer.json.message).toMatch(message);
    expect(await tableSnapshot()).toBe(before);
  });
});

describe('the sweeper', () => {
  it('stops a Batch job whose first TerminateJob failed', async () => {
    const dir = join(h.dir, 'sweep');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.batchRunning)(dir)).id;
    await waitFor('job beats', () => beats(join(dir, 'job.beat')) > 3, 30_000);
    const [pid] = readFileSync(join(dir, 'job.pids'), 'utf8').split(' ').map(Number) as [number];
    // A non-retryable failure of every TerminateJob until the sweeper runs: an attempt cut after
    // its failed stop and before recording it (the endpoint's answer budget) sends it again.
    h.cloud.faults.add({ service: 'batch', operation: 'TerminateJob', errorRate: 1, error: { status: 400, code: 'ClientException', message: 'injected' } });
    const report = await h.client.cancel(id, { taskIds: [0], reason: 'sweep me' });
    expect(report.cancelled[0]).toMatchObject({ id: 0, status: 'RUNNING' });
    expect(report.cancelled[0]!.error).toMatch(/ClientException/);
    // The job really still runs: the failed call stopped nothing.
    expect(await heartbeatStopped(join(dir, 'job.beat'))).toBe(false);
    expect(alive(pid)).toBe(true);
    h.cloud.faults.clear();
    const swept = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-sweeper', Payload: Buffer.from('{}') }));
    const sweep = JSON.parse(Buffer.from(swept.Payload!).toString()) as { recancelled: number };
    expect(sweep.recancelled).toBeGreaterThanOrEqual(1);
    await waitFor('process gone', () => !alive(pid), 10_000);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes[0]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'TerminateJob' });
  }, 60_000);

  it('ends FAILED, with the reason, a dispatch whose execution someone else stopped, and stops its work', async () => {
    const dir = join(h.dir, 'aborted');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.lambdaRunning)(dir)).id;
    await waitFor('polite beats', () => beats(join(dir, 'polite.beat')) > 3, 45_000);
    const running = await h.client.getResult(id);
    const executionArn = (await h.cloud.clients.dynamodb.send(new ScanCommand({ TableName: 'valence-table' }))).Items!.find((i) => i.pk?.S === `D#${id}` && i.sk?.S === 'D')!.executionArn!.S!;
    // Stopped outside valence (the console, a script): ABORTED, and nothing records it.
    await h.cloud.clients.sfn.send(new StopExecutionCommand({ executionArn, error: 'Operator', cause: 'stopped from the console' }));
    expect((await h.cloud.clients.sfn.send(new DescribeExecutionCommand({ executionArn }))).status).toBe('ABORTED');
    expect(running.status).toBe('RUNNING');
    expect((await h.client.getResult(id)).status).toBe('RUNNING');
    const swept = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-sweeper', Payload: Buffer.from('{}') }));
    const sweep = JSON.parse(Buffer.from(swept.Payload!).toString()) as { failedExecutions: number; errors: string[] };
    expect(sweep.failedExecutions).toBeGreaterThanOrEqual(1);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(result.status).toBe('FAILED');
    expect(result.error?.message).toMatch(/execution ended ABORTED: Operator: stopped from the console/);
    // Its work is stopped too: the electron stops beating, its child never runs, every node ends.
    expect(await waitFor('the electron stops', async () => (await heartbeatStopped(join(dir, 'polite.beat'))) || undefined, 30_000)).toBe(true);
    const ended = await waitFor('every node terminal', async () => {
      const now = await h.client.getResult(id);
      return now.nodes.every((n) => n.status === 'CANCELLED') ? now : undefined;
    }, 30_000);
    expect(ended.status).toBe('FAILED');
    expect((await import('node:fs')).existsSync(join(dir, 'ran.log'))).toBe(false);
  }, 120_000);
});

describe('a whole-dispatch cancel whose merged target does not stop within its bound', () => {
  // Request A (a task cancel) flagged node 0 first and its TerminateJob failed: A is done, its
  // report truthfully says RUNNING with the error. Request B (the whole dispatch) finds node 0
  // merged, not its to stop. B must not end the dispatch CANCELLED while node 0 runs: it stays
  // open; once A is gone (done) B stops node 0 itself, and ends the dispatch when every node did.
  it('leaves the dispatch RUNNING until the node ended, stops it for its gone owner, then ends it CANCELLED', async () => {
    const dir = join(h.dir, 'merged-late');
    (await import('node:fs')).mkdirSync(dir);
    const id = (await h.client.dispatch(wf.batchRunning)(dir)).id;
    await waitFor('job beats', () => beats(join(dir, 'job.beat')) > 3, 30_000);
    const [pid] = readFileSync(join(dir, 'job.pids'), 'utf8').split(' ').map(Number) as [number];
    let requestId = '';
    h.cloud.faults.add({ service: 'batch', operation: 'TerminateJob', errorRate: 1, error: { status: 400, code: 'ClientException', message: 'injected' } });
    try {
      const a = await h.client.cancel(id, { taskIds: [0], reason: 'A' });
      expect(a.cancelled[0]).toMatchObject({ id: 0, status: 'RUNNING' });
      const accepted = await h.client.cancel(id, { wait: false, reason: 'B' });
      requestId = (accepted as { requestId: string }).requestId;
      // Past B's bound (node 0's grace period of 1 s plus 3 s) the node still runs, and so does the dispatch.
      const until = Date.now() + 6_000;
      while (Date.now() < until) {
        const now = await h.client.getResult(id);
        if (now.nodes[0]!.status === 'RUNNING') expect(now.status, 'CANCELLED with node 0 still RUNNING').not.toBe('CANCELLED');
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(alive(pid)).toBe(true);
      const open = await h.client.getCancelReport(id, requestId);
      expect(open.state).toBe('OPEN');
      expect((await h.client.getResult(id)).status).toBe('RUNNING');
    } finally {
      h.cloud.faults.clear();
    }
    // Its polls (as a waiting client's) advance B: it stops the node for A, then ends the dispatch.
    const done = await waitFor('B done', async () => {
      const progress = await h.client.getCancelReport(id, requestId);
      return progress.state === 'DONE' ? progress.report : undefined;
    }, 60_000);
    await waitFor('process gone', () => !alive(pid), 10_000);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
    expect(result.nodes[0]).toMatchObject({ cancelledBy: 'TerminateJob' });
    const aId = result.cancelRequests.find((r) => r.reason === 'A')!.requestId;
    // Truthful: node 0 is A's (merged), stopped by B after all (adopted); node 1, A's too, had
    // ended before B arrived; B cancelled nothing of its own.
    expect(done.merged).toEqual([{ id: 0, requestId: aId, status: 'CANCELLED', adopted: true }]);
    expect(done.alreadyTerminal).toEqual([{ id: 1, status: 'CANCELLED' }]);
    expect(done.cancelled).toEqual([]);
  }, 120_000);
});

describe('a report stored in S3 (past 300 KB, about 2,000 nodes)', () => {
  // Writing one takes a 2,000-node cancel (bench/cancel-scale.ts does it at 10,000 and 20,000);
  // here a finished small report is moved where a large one is written, and read back the way
  // a client reads it: GET …/cancels/{requestId} hands out a presigned reportUrl, which the SDK follows.
  it('is handed out as a presigned reportUrl that getCancelReport follows, and refused without its signature', async () => {
    const report = await h.client.cancel(completed, { reason: 'stored in S3' });
    const { requestId } = report;
    const { tableName, bucketName, apiUrl } = await h.client.outputs();
    const key = cancelReportKey(completed, requestId);
    await h.cloud.clients.s3.send(new PutObjectCommand({ Bucket: bucketName, Key: key, Body: JSON.stringify(report), ContentType: 'application/json' }));
    await h.cloud.clients.dynamodb.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { pk: { S: `D#${completed}` }, sk: { S: `C#${report.requestedAt}#${requestId}` } },
        UpdateExpression: 'SET reportKey = :k REMOVE report',
        ConditionExpression: 'attribute_exists(report)',
        ExpressionAttributeValues: { ':k': { S: key } },
      }),
    );
    // The raw answer carries no report, only its URL: a signed S3 GET that expires.
    const url = new URL(`dispatches/${completed}/cancels/${requestId}`, apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
    const signer = new SignatureV4({ service: 'execute-api', region: h.cloud.region, credentials: h.cloud.credentials, sha256: Sha256 });
    const signed = await signer.sign({ method: 'GET', protocol: url.protocol, hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {}, headers: { host: url.host } });
    const raw = (await (await fetch(url, { headers: signed.headers })).json()) as { report?: unknown; reportUrl?: string; state: string };
    expect(raw.state).toBe('DONE');
    expect(raw.report).toBeUndefined();
    const reportUrl = new URL(raw.reportUrl!);
    expect(reportUrl.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(Number(reportUrl.searchParams.get('X-Amz-Expires'))).toBeGreaterThan(0);
    // Without its signature the object is not readable.
    reportUrl.search = '';
    expect((await fetch(reportUrl)).status).toBe(403);
    // The SDK follows the URL: the same report as the cancel answered.
    const read = await h.client.getCancelReport(completed, requestId);
    expect(read.state).toBe('DONE');
    expect(read.report).toEqual(report);
  }, 30_000);
});
