// The local cloud runs what `cdk synth` produced (cdk.out), with IAM enforced: the bundled
// handlers, the template's state machines, environment and roles. Proven by observation:
// heartbeats stop, processes are gone, and a permission removed from a copy of the template
// turns the Batch cancel into a reported failure naming the action.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sha256 } from '@aws-crypto/sha256-js';
import { GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import { DisableRuleCommand } from '@aws-sdk/client-eventbridge';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { LocalCredentials } from '../../localstack/index.ts';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';
import { leastPrivilegeTable } from '../../localstack/iam/index.ts';
import { connect, type ValenceClient } from '../../sdk/client/index.ts';
import { API, ENV } from '../../sdk/contract.ts';
import * as wf from '../cancel/fixtures/workflows.ts';
import { alive, beats, heartbeatStopped, stopsBeating, waitFor } from '../cancel/observe.ts';
import { CALLER_ROLES } from './fixtures/roles.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = 'test/cancel/fixtures';
const outdir = mkdtempSync(join(tmpdir(), 'valence-assembly-test-'));
const dir = mkdtempSync(join(tmpdir(), 'valence-assembly-obs-'));

interface Started {
  readonly cloud: LocalCloud;
  readonly client: ValenceClient;
}
const started: Started[] = [];
async function start(assembly: string): Promise<Started> {
  const cloud = await startLocalCloud({
    port: 0,
    assembly,
    batchDelays: { submittedMs: 20, pendingMs: 20, runnableMs: 20, startingMs: 20 },
    // Quantum tasks stay QUEUED long enough to cancel one on a loaded machine, then finish quickly.
    braketQueueDelayMs: 4_000,
    braketRunMs: 100,
    environment: { [ENV.leaseMs]: '3000', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  const client = connect({ endpoint: cloud.endpoint, region: cloud.region, credentials: cloud.credentials });
  const s = { cloud, client };
  started.push(s);
  return s;
}

let main: Started;
beforeAll(() => {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const env = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true', DOCKER: '/nonexistent/docker' };
  const synth = spawnSync(
    'npx',
    // The app: valence's stack for the cancel fixtures, plus caller roles granted by its grant methods.
    ['cdk', 'synth', '--app', 'npx tsx test/assembly/fixtures/app.ts', '--quiet', '--no-notices', '--no-version-reporting', '--output', outdir, '-c', `workflows=${FIXTURES}/workflows.ts`],
    { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 },
  );
  expect(synth.status, synth.stderr.slice(-2000)).toBe(0);
  // The job image's context leaves out test/ (.dockerignore), so a workflows module under
  // test/ is missing from the image, on AWS as here; the fixtures are added to the staged
  // context as a project whose workflows live outside test/ has them.
  const assets = JSON.parse(readFileSync(join(outdir, 'valence.assets.json'), 'utf8')) as { dockerImages: Record<string, { source: { directory: string } }> };
  for (const image of Object.values(assets.dockerImages)) {
    const target = join(outdir, image.source.directory, FIXTURES);
    mkdirSync(target, { recursive: true });
    for (const file of readdirSync(join(REPO, FIXTURES))) cpSync(join(REPO, FIXTURES, file), join(target, file));
  }
}, 150_000);
beforeAll(async () => {
  main = await start(outdir);
}, 60_000);
afterAll(async () => {
  for (const s of started) {
    s.client.close();
    await s.cloud.stop();
  }
  rmSync(outdir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('startLocalCloud({ assembly })', () => {
  it('deploys the template: outputs connect finds, functions with their roles, skipped types listed', async () => {
    const { cloud, client } = main;
    const outputs = await client.outputs();
    expect(outputs.tableName).toBe(cloud.assembly!.outputs['TableName']);
    expect(cloud.assembly!.functions.filter((f) => f.roleArn).length).toBeGreaterThanOrEqual(4);
    const skippedTypes = cloud.assembly!.skipped.map((s) => s.type);
    expect(skippedTypes).toContain('AWS::Lambda::Permission');
    expect(skippedTypes).toContain('AWS::EC2::VPC');
  });

  it('runs and cancels a Lambda electron from the bundled handlers, each handler signing as its own role', async () => {
    const { cloud, client } = main;
    const id = await client.dispatch(wf.lambdaRunning)(dir);
    await waitFor('beats', () => beats(join(dir, 'polite.beat')) > 3);
    const report = await client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ id: 0, status: 'CANCELLED', method: 'signal' });
    expect(await heartbeatStopped(join(dir, 'polite.beat'))).toBe(true);
    const usage = cloud.iam!.usage();
    const roles = Object.keys(usage);
    expect(roles.some((r) => r.includes('StepHandlerRole'))).toBe(true);
    expect(roles.some((r) => r.includes('CancelHandlerRole'))).toBe(true);
    for (const actions of Object.values(usage)) for (const count of Object.values(actions)) expect(count.denied).toBe(0);
  }, 60_000);

  it('cancels a running Batch job: its process group is gone', async () => {
    const { client } = main;
    const sub = join(dir, 'batch');
    mkdirSync(sub);
    const id = await client.dispatch(wf.batchRunning)(sub);
    await waitFor('job beats', () => beats(join(sub, 'job.beat')) > 3, 30_000);
    const [pid] = readFileSync(join(sub, 'job.pids'), 'utf8').split(' ').map(Number) as [number];
    const report = await client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ id: 0, method: 'TerminateJob' });
    await waitFor('process group gone', () => !alive(pid), 10_000);
  }, 60_000);

  it('runs and cancels a LocalExecutor electron: its process is gone', async () => {
    const { client } = main;
    const sub = join(dir, 'local');
    mkdirSync(sub);
    const id = (await client.dispatch(wf.localRunning)(sub)).id;
    await waitFor('local beats', () => beats(join(sub, 'local.beat')) > 3, 30_000);
    const pid = Number(readFileSync(join(sub, 'local.pid'), 'utf8'));
    const report = await client.cancel(id, { taskIds: [0] });
    expect(report.cancelled.find((c) => c.id === 0)).toMatchObject({ previousStatus: 'RUNNING', status: 'CANCELLED' });
    await waitFor('local process gone', () => !alive(pid), 10_000);
    expect(await heartbeatStopped(join(sub, 'local.beat'))).toBe(true);
  }, 60_000);

  it('runs and cancels a Braket hybrid job with CancelJob: its process is gone, the job CANCELLED', async () => {
    const { cloud, client } = main;
    const sub = join(dir, 'hybrid');
    mkdirSync(sub);
    const id = (await client.dispatch(wf.hybridJob)(sub)).id;
    await waitFor('hybrid beats', () => beats(join(sub, 'hybrid.beat')) > 3, 30_000);
    const pid = Number(readFileSync(join(sub, 'hybrid.pid'), 'utf8'));
    const report = await client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ id: 0, method: 'CancelHybridJob' });
    await waitFor('hybrid process gone', () => !alive(pid), 10_000);
    const node = (await client.getResult(id, { wait: true, timeoutMs: 20_000 })).nodes[0]!;
    const { GetJobCommand } = await import('@aws-sdk/client-braket');
    expect((await cloud.clients.braket.send(new GetJobCommand({ jobArn: node.jobHandle! }))).status).toBe('CANCELLED');
  }, 60_000);

  it('runs a split lattice (partitions as child executions, under the states role) to completion', async () => {
    const { cloud, client } = main;
    const sub = join(dir, 'split');
    mkdirSync(sub);
    const { DescribeStateMachineCommand } = await import('@aws-sdk/client-sfn');
    const { stateMachineArnPrefix } = await client.outputs();
    const definition = (await cloud.clients.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: `${stateMachineArnPrefix}wideQuick` }))).definition!;
    expect(definition).toContain('"Mode":"DISTRIBUTED"');
    const run = await client.dispatch(wf.wideQuick)(sub);
    const result = await client.getResult(run, { wait: true, timeoutMs: 45_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.nodes.map((n) => n.status)).toEqual(Array(7).fill('COMPLETED'));
    // Every electron really ran, once: each tick appended its name.
    expect(readFileSync(join(sub, 'ran.log'), 'utf8').trim().split('\n').sort()).toEqual(['w-end', 'w0', 'w1', 'w2', 'w3', 'w4', 'w5']);
  }, 60_000);
});

describe('Braket, sublattices, completion events and the sweeper, from the bundles, under IAM', () => {
  it('cancels a QUEUED quantum task with CancelQuantumTask (its tag condition holds)', async () => {
    const { client } = main;
    const sub = join(dir, 'braket');
    mkdirSync(sub);
    const id = await client.dispatch(wf.braketRunning)(sub);
    await waitFor('task handle', async () => (await client.getResult(id)).nodes[0]!.jobHandle);
    const report = await client.cancel(id, { taskIds: [0] });
    expect(report.cancelled[0]).toMatchObject({ method: 'CancelQuantumTask', status: 'CANCELLED' });
    const result = await client.getResult(id, { wait: true, timeoutMs: 20_000 });
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
  }, 60_000);

  it('a completed quantum task\'s state-change event reaches the completion handler: the dispatch completes', async () => {
    const { client } = main;
    const sub = join(dir, 'braket-done');
    mkdirSync(sub);
    const id = await client.dispatch(wf.braketRunning)(sub);
    const result = await client.getResult(id, { wait: true, timeoutMs: 30_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.nodes.map((n) => n.status)).toEqual(['COMPLETED', 'COMPLETED']);
  }, 60_000);

  it('cancels one node inside a sublattice ("1/2"): its heartbeat stops', async () => {
    const { client } = main;
    const sub = join(dir, 'sublattice');
    mkdirSync(sub);
    const id = await client.dispatch(wf.outer)(sub);
    await waitFor('inner slow beats', () => beats(join(sub, 'inner-slow.beat')) > 1, 30_000);
    const report = await client.cancel(id, { taskIds: ['1/2'] });
    expect(report.cancelled.map((c) => [c.id, c.method])).toEqual([['1/2', 'signal']]);
    await stopsBeating(join(sub, 'inner-slow.beat'));
  }, 60_000);

  it('the sweeper, under its own role, completes a node whose completion event was lost', async () => {
    const { cloud, client } = main;
    const rule = Object.entries(cloud.assembly!.resources).find(([, r]) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties['EventPattern'] ?? '').includes('aws.braket'))![0];
    await cloud.clients.eventbridge.send(new DisableRuleCommand({ Name: cloud.assembly!.refs[rule] }));
    const sub = join(dir, 'swept');
    mkdirSync(sub);
    const id = await client.dispatch(wf.braketRunning)(sub);
    const handle = await waitFor('task handle', async () => (await client.getResult(id)).nodes[0]!.jobHandle);
    await waitFor('task COMPLETED', async () => (await cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: handle }))).status === 'COMPLETED', 20_000);
    // The event went nowhere: the node waits on.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await client.getResult(id)).nodes[0]!.status).toBe('RUNNING');
    const sweeper = cloud.assembly!.functions.find((f) => f.logicalId.includes('Sweeper'))!;
    const invoked = await cloud.clients.lambda.send(new InvokeCommand({ FunctionName: sweeper.name, Payload: Buffer.from('{}') }));
    expect(invoked.FunctionError).toBeUndefined();
    const swept = JSON.parse(Buffer.from(invoked.Payload!).toString('utf8')) as { completed: number; errors: string[] };
    expect(swept.errors).toEqual([]);
    expect(swept.completed).toBe(1);
    expect((await client.getResult(id, { wait: true, timeoutMs: 20_000 })).status).toBe('COMPLETED');
  }, 60_000);

  it('no handler was refused an action, and the actions used stand beside those allowed', () => {
    const rows = leastPrivilegeTable(main.cloud.iam!);
    console.log(rows.map((r) => `${r.role.replace(/^.*role\/(valence-)?/, '')}\t${r.action}\t${r.used}\t${r.allowed ? 'allowed' : 'NOT allowed'}\t${r.finding ?? ''}`).join('\n'));
    expect(rows.filter((r) => r.finding === 'denied')).toEqual([]);
  });
});

describe('a permission removed from a copy of the template', () => {
  it('batch:TerminateJob gone from the cancel handler role: the Batch cancel is reported failed with AccessDenied naming it', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'valence-assembly-copy-'));
    onTestFinished(() => rmSync(copy, { recursive: true, force: true }));
    cpSync(outdir, copy, { recursive: true });
    const templatePath = join(copy, 'valence.template.json');
    const template = JSON.parse(readFileSync(templatePath, 'utf8')) as { Resources: Record<string, { Type: string; Properties: { PolicyDocument?: { Statement: { Action: string | string[] }[] }; Roles?: { Ref: string }[] } }> };
    let removed = 0;
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      if (resource.Type !== 'AWS::IAM::Policy' || !logicalId.includes('CancelHandlerRole')) continue;
      for (const statement of resource.Properties.PolicyDocument!.Statement) {
        if (!Array.isArray(statement.Action) || !statement.Action.includes('batch:TerminateJob')) continue;
        statement.Action = statement.Action.filter((a) => a !== 'batch:TerminateJob');
        removed++;
      }
    }
    expect(removed).toBe(1);
    writeFileSync(templatePath, JSON.stringify(template));
    const { client } = await start(copy);
    const sub = join(dir, 'denied');
    mkdirSync(sub);
    const id = await client.dispatch(wf.batchRunning)(sub);
    await waitFor('job beats', () => beats(join(sub, 'job.beat')) > 3, 30_000);
    const report = await client.cancel(id, { taskIds: [0] });
    // Reported as not done: still RUNNING, with the refusal naming the action.
    const node = report.cancelled.find((c) => c.id === 0)!;
    expect(node).toMatchObject({ previousStatus: 'RUNNING', status: 'RUNNING' });
    expect(node.error).toMatch(/^AccessDeniedException: .*not authorized to perform: batch:TerminateJob on resource: arn:aws:batch:/);
    // The job still runs: nothing stopped it.
    expect(beats(join(sub, 'job.beat'))).toBeGreaterThan(3);
  }, 90_000);
});

/** A request to the cancel API signed with `credentials`, as an IAM caller's SDK would sign it. */
async function callApi(credentials: LocalCredentials, method: 'GET' | 'POST', path: string, body?: object): Promise<{ status: number; text: string }> {
  const { cloud } = main;
  const url = new URL(path, (await main.client.outputs()).apiUrl);
  const signer = new SignatureV4({ service: 'execute-api', region: cloud.region, credentials, sha256: Sha256 });
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const request = await signer.sign({
    method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    headers: { host: url.host, ...(payload ? { 'content-type': 'application/json' } : {}) },
    ...(payload ? { body: payload } : {}),
  });
  const response = await fetch(url, { method, headers: request.headers, ...(payload ? { body: payload } : {}) });
  return { status: response.status, text: await response.text() };
}

describe('callers acting as roles the Orchestrator granted (execute-api:Invoke on the method ARN)', () => {
  const roleArn = (name: string): string => `arn:aws:iam::${main.cloud.accountId}:role/${name}`;

  it('grantReadStatus: reads a dispatch, and cannot cancel it', async () => {
    const { cloud, client } = main;
    const { id } = await client.dispatch(wf.quick)(join(dir));
    const reader = cloud.credentialsForRole!(roleArn(CALLER_ROLES.reader));
    const status = await callApi(reader, 'GET', `dispatches/${id}`);
    expect(status.status).toBe(200);
    expect(status.text).toContain(id);
    const cancel = await callApi(reader, 'POST', `dispatches/${id}/cancel`, {});
    expect(cancel.status).toBe(403);
    expect(cancel.text).toContain('execute-api:Invoke');
  }, 60_000);

  it('grantCancel: cancels a running dispatch', async () => {
    const { cloud, client } = main;
    const sub = join(dir, 'granted-cancel');
    mkdirSync(sub);
    const { id } = await client.dispatch(wf.lambdaRunning)(sub);
    await waitFor('beats', () => beats(join(sub, 'polite.beat')) > 3);
    const canceller = cloud.credentialsForRole!(roleArn(CALLER_ROLES.canceller));
    expect((await callApi(canceller, 'GET', `dispatches/${id}`)).status).toBe(403);
    const cancel = await callApi(canceller, 'POST', `dispatches/${id}/cancel`, { taskIds: [0] });
    expect([200, 202]).toContain(cancel.status);
    // A 202 means the stop goes on outside the request: wait for the heartbeat to go quiet
    // (it throws if the electron keeps beating), rather than look once.
    await stopsBeating(join(sub, 'polite.beat'), 30_000);
  }, 60_000);

  it('grantDispatch: dispatches (large arguments too) and reads results through the API alone, and cannot cancel or touch the table', async () => {
    const { cloud, client } = main;
    const { apiUrl, tableName } = await client.outputs();
    const credentials = cloud.credentialsForRole!(roleArn(CALLER_ROLES.dispatcher));
    const dispatcher = connect({ endpoint: cloud.endpoint, region: cloud.region, credentials, apiUrl });
    try {
      const sub = join(dir, 'granted-dispatch');
      mkdirSync(sub);
      const id = await dispatcher.dispatch(wf.quick)(sub);
      const result = await dispatcher.getResult(id, { wait: true, timeoutMs: 30_000 });
      expect(result.status).toBe('COMPLETED');
      // Past the inline limit the arguments go through a presigned upload (signed as the API handler's role).
      const text = 'x'.repeat(API.maxInlineArgsBytes + 1000);
      const measured = await dispatcher.dispatch(wf.measured)(text);
      expect(await measured.result({ timeoutMs: 30_000 })).toBe(text.length);
      await expect(dispatcher.cancel(id, { taskIds: [0] })).rejects.toThrow(/403/);
      // The role has no table access: a direct read is refused, so the dispatch above went through the API.
      const { GetItemCommand, DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
      const direct = new DynamoDBClient({ endpoint: cloud.endpoint, region: cloud.region, credentials });
      await expect(direct.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: `D#${id.id}` }, sk: { S: 'D' } } }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
      direct.destroy();
    } finally {
      dispatcher.close();
    }
  }, 90_000);
});

describe("the API's request validator, as the template defines it", () => {
  const roleArn = (name: string): string => `arn:aws:iam::${main.cloud.accountId}:role/${name}`;
  /** The cancel requests recorded for `id` (the handler writes one per request it runs). */
  async function cancelRequests(id: string): Promise<number> {
    const { ScanCommand } = await import('@aws-sdk/client-dynamodb');
    const { tableName } = await main.client.outputs();
    const items = (await main.cloud.clients.dynamodb.send(new ScanCommand({ TableName: tableName }))).Items ?? [];
    return items.filter((item) => item.pk?.S === `D#${id}` && item.sk?.S?.startsWith('C#')).length;
  }

  it('refuses a body the model does not allow with 400 BadRequestException; the handler never runs and nothing is recorded', async () => {
    const { cloud, client } = main;
    const { id } = await client.dispatch(wf.quick)(join(dir));
    await client.getResult(id, { wait: true, timeoutMs: 30_000 });
    const canceller = cloud.credentialsForRole!(roleArn(CALLER_ROLES.canceller));
    for (const body of [{ taskIds: [0], everything: true }, { taskIds: 'all' }, { reason: 7 }, { force: 'yes' }, { taskIds: [1.5] }]) {
      const refused = await callApi(canceller, 'POST', `dispatches/${id}/cancel`, body);
      expect(refused, JSON.stringify(body)).toEqual({ status: 400, text: JSON.stringify({ message: 'Invalid request body' }) });
    }
    expect(await cancelRequests(id)).toBe(0);
    // A value of the right shape reaches the handler, which names what is wrong.
    const empty = await callApi(canceller, 'POST', `dispatches/${id}/cancel`, { taskIds: [] });
    expect(empty.status).toBe(400);
    expect((JSON.parse(empty.text) as { message: string }).message).toMatch(/"taskIds" is empty/);
    expect(await cancelRequests(id)).toBe(0);
  }, 60_000);

  it('lets every field the SDK sends through: a forced cancel from the SDK stops the electron', async () => {
    const { client } = main;
    const sub = join(dir, 'forced-through-model');
    mkdirSync(sub);
    const { id } = await client.dispatch(wf.lambdaRunning)(sub);
    await waitFor('beats', () => beats(join(sub, 'polite.beat')) > 3);
    const report = await client.cancel(id, { taskIds: [0], reason: 'through the model', force: true });
    expect(report.cancelled.map((c) => c.id)).toContain(0);
    expect(await heartbeatStopped(join(sub, 'polite.beat'))).toBe(true);
  }, 60_000);
});
