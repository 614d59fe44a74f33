// A node whose wait and run are one state (issue 18): run in its wait's own invocation, woken by
// its last parent's invocation, handed back to its plain run state by a handler that cannot
// wake it, and handed back by the sweeper when its wake was lost. Observed on the local cloud:
// the execution's history, the node items, and the electrons' own log of what ran.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executionHistory, startHarness, type RuntimeHarness } from './harness.ts';
import * as wf from './fixtures/workflows.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness();
}, 60_000);
afterAll(async () => h?.close());

type Stamp = { label: string; start: number; end: number };
/** Node 4 (`d`) is the one that waits: it follows x → b in its branch and awaits node 0 (`a`). */
const D = 4;

async function history(id: string, lattice: string): Promise<HistoryEvent[]> {
  const { stateMachineArnPrefix } = await h.client.outputs();
  const executionArn = `${stateMachineArnPrefix.replace(':stateMachine:', ':execution:')}${lattice}:${id}`;
  return executionHistory(h.cloud, executionArn);
}

/** The step events Step Functions sent for node `nodeId`, and the errors its Tasks failed with. */
async function stepsOf(id: string, lattice: string, nodeId: number): Promise<{ actions: string[]; failures: string[] }> {
  const events = await history(id, lattice);
  const payloads = events
    .filter((e) => e.type === 'TaskScheduled')
    .map((e) => (JSON.parse(e.taskScheduledEventDetails?.parameters ?? '{}') as { Payload?: { action?: string; nodeId?: number; run?: boolean } }).Payload ?? {});
  return {
    actions: payloads.filter((p) => p.nodeId === nodeId).map((p) => `${p.action}${p.run ? '+run' : ''}`),
    failures: events.filter((e) => e.type === 'TaskFailed').map((e) => e.taskFailedEventDetails?.error ?? ''),
  };
}

async function nodeItem(id: string, nodeId: number): Promise<Record<string, unknown>> {
  const { tableName } = await h.client.outputs();
  const got = await h.cloud.clients.dynamodb.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: `D#${id}` }, sk: { S: `N#${String(nodeId).padStart(6, '0')}` } } }));
  return unmarshall(got.Item ?? {});
}

const ranLog = (dir: string): string[] => readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n').sort();

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Dispatches `lattice` into a fresh directory `name` and waits until d waits with its token stored. */
async function dispatchUntilWaiting(name: string, lattice: typeof wf.wakeShape | typeof wf.wakeShapeBatch, slowMs: number): Promise<{ id: string; dir: string }> {
  const dir = join(h.dir, name);
  mkdirSync(dir);
  const { id } = await h.client.dispatch(lattice)(dir, slowMs);
  await until('d waiting', async () => (await nodeItem(id, D))['awaitToken'] !== undefined, 30_000);
  return { id, dir };
}

describe('a node whose wait also runs it', () => {
  it('is woken by its slow parent’s own invocation: one state, no hand-back, started right after the parent', async () => {
    // d waits with its token stored (b ended long before a): a's invocation must wake it.
    const { id, dir } = await dispatchUntilWaiting('woken', wf.wakeShape, 2_000);
    const waiting = await nodeItem(id, D);
    expect(waiting).toMatchObject({ status: 'NEW_OBJECT', awaitRuns: true, listKey: 'ACTIVE' });
    const result = await h.client.getResult<{ a: Stamp; c: Stamp; d: Stamp }>(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('COMPLETED');
    const { a, d } = result.result!;
    expect(d.start).toBeGreaterThanOrEqual(a.end);
    // A generous ceiling only against a hang: the wake is one asynchronous invocation.
    expect(d.start - a.end).toBeLessThan(3_000);
    // One state for d's wait and run: no run state, no hand-back, and d ran once.
    const steps = await stepsOf(id, 'wakeShape', D);
    expect(steps.actions).toEqual(['await+run']);
    expect(steps.failures).not.toContain('Valence.RunNode');
    expect(ranLog(dir)).toEqual(['a', 'b', 'c', 'd', 'x']);
    // Ended, it left the sweeper's list.
    const ended = await nodeItem(id, D);
    expect(ended['status']).toBe('COMPLETED');
    expect(ended['listKey']).toBeUndefined();
  }, 90_000);

  it('runs in its wait’s own invocation when its parents have ended already: one invocation for the node', async () => {
    const dir = join(h.dir, 'at-once');
    mkdirSync(dir);
    // a is fast now: by the time d's state starts, both parents have ended.
    const { id } = await h.client.dispatch(wf.wakeShape)(dir, 0);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('COMPLETED');
    expect((await stepsOf(id, 'wakeShape', D)).actions).toEqual(['await+run']);
    expect(ranLog(dir)).toEqual(['a', 'b', 'c', 'd', 'x']);
  }, 60_000);

  it('is handed back to its run state when a handler that cannot wake it releases it (a Batch parent’s completion)', async () => {
    const { id, dir } = await dispatchUntilWaiting('handed-back', wf.wakeShapeBatch, 2_000);
    const result = await h.client.getResult<{ d: Stamp }>(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.result!.d.label).toBe('d');
    // The completion handler failed the wait with RunNode; the Catch ran d in its plain run state, once.
    const steps = await stepsOf(id, 'wakeShapeBatch', D);
    expect(steps.actions).toEqual(['await+run', 'run']);
    expect(steps.failures).toContain('Valence.RunNode');
    expect(ranLog(dir)).toEqual(['a', 'b', 'c', 'd', 'x']);
    expect(result.nodes[D]!.attempts).toBe(1);
  }, 90_000);

  it('is handed back by the sweeper when its wake was lost, and then runs once', async () => {
    const { id, dir } = await dispatchUntilWaiting('lost-wake', wf.wakeShape, 1_500);
    // The next step invocation is a's wake of d: it crashes at once, so the wake is lost.
    h.cloud.faults.crashNthInvocation(1, 'valence-step');
    await until('a ended', async () => (await nodeItem(id, 0))['status'] === 'COMPLETED', 30_000);
    await until('c ended', async () => (await nodeItem(id, 1))['status'] === 'COMPLETED', 30_000);
    // Nothing else would run d: it stays NEW_OBJECT with its wait open, and the dispatch runs on.
    await sleep(1_500);
    expect(await nodeItem(id, D)).toMatchObject({ status: 'NEW_OBJECT', awaitRuns: true });
    expect(ranLog(dir)).toEqual(['a', 'b', 'c', 'x']);
    expect((await h.client.getResult(id)).status).toBe('RUNNING');
    // A sweep that takes a wake for lost at once hands d back to Step Functions.
    const invoked = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-sweeper', Payload: Buffer.from(JSON.stringify({ wakeGraceSeconds: 0 })) }));
    const report = JSON.parse(Buffer.from(invoked.Payload ?? new Uint8Array()).toString()) as { handedBack: number; errors: string[] };
    expect(report.errors).toEqual([]);
    expect(report.handedBack).toBe(1);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('COMPLETED');
    expect((await stepsOf(id, 'wakeShape', D)).actions).toEqual(['await+run', 'run']);
    expect(ranLog(dir)).toEqual(['a', 'b', 'c', 'd', 'x']);
    // A second sweep finds nothing more to hand back.
    const again = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-sweeper', Payload: Buffer.from(JSON.stringify({ wakeGraceSeconds: 0 })) }));
    expect((JSON.parse(Buffer.from(again.Payload ?? new Uint8Array()).toString()) as { handedBack: number }).handedBack).toBe(0);
  }, 120_000);
});
