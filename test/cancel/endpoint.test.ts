// The cancel endpoint as a client meets it: AWS_IAM (SigV4) authorization, clear 4xx answers
// for bad requests that leave the table untouched; and the sweeper, which stops a job whose
// first TerminateJob failed, and which ends a dispatch whose execution ended on its own.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
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
