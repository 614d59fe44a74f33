// Dispatching lattices on the local cloud: every node runs on its executor and the result is
// read back through the real AWS SDK clients over HTTP.
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from './harness.ts';
import * as wf from './fixtures/workflows.ts';
import { beats, heartbeatStopped, stopsBeating } from '../cancel/observe.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness();
}, 60_000);
afterAll(async () => h?.close());

const run = async <R>(dispatchRun: Promise<{ readonly id: string }>) => h.client.getResult<R>((await dispatchRun).id, { wait: true, timeoutMs: 60_000 });

describe('dispatch and getResult', () => {
  it('runs a chain', async () => {
    const result = await run<number>(h.client.dispatch(wf.chain)(3));
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(16);
    expect(result.nodes.map((n) => n.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    expect(result.nodes.every((n) => n.attempts === 1 && n.executor === 'lambda')).toBe(true);
  });

  it('hands each parent on through the state payload: a chain reads no parent item, a diamond only its join', async () => {
    // Issue 18: the state that runs right after a parent's gets the parent's view (status, output)
    // from the Task result, on AWS as here; only the join of the diamond (two parents, after a
    // Parallel) reads its parents, in one BatchGetItem. The counters are the local cloud's own.
    const batchGets = () => h.cloud.counters().dynamodb?.BatchGetItem ?? 0;
    h.cloud.resetCounters();
    expect((await run<number>(h.client.dispatch(wf.chain)(3))).result).toBe(16);
    expect(batchGets()).toBe(0);
    h.cloud.resetCounters();
    expect((await run<number>(h.client.dispatch(wf.diamond)(1))).result).toBe(16);
    expect(batchGets()).toBe(1);
    // A Batch node's view comes with its task token's release (SendTaskSuccess), not the Lambda's answer.
    h.cloud.resetCounters();
    expect((await run<number>(h.client.dispatch(wf.batchLattice)(h.dir, 2))).result).toBe(7);
    expect(batchGets()).toBe(0);
  }, 60_000);

  it('ignores a carried parent view of another dispatch, of a node that is no parent, or not ended, and reads the item', async () => {
    // Each view below would let node 1 (double) run at once on a forged 1,000, were it taken;
    // read from the table instead, node 0 is still running (it sleeps 2 s), so node 1 is refused.
    const { serialize } = await import('../../sdk/runtime/serialization.ts');
    const dir = join(h.dir, 'carried-view');
    mkdirSync(dir, { recursive: true });
    const dispatchId = (await h.client.dispatch(wf.crashing)(dir)).id;
    const forged = { dispatchId, nodeId: 0, status: 'COMPLETED', hasOutput: true, output: serialize(1000) };
    const views = [{ ...forged, dispatchId: 'another-dispatch' }, { ...forged, nodeId: 1 }, { ...forged, status: 'RUNNING' }];
    for (const parent of views) {
      const answer = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-step', Payload: Buffer.from(JSON.stringify({ action: 'run', dispatchId, nodeId: 1, parent })) }));
      expect(answer.FunctionError, JSON.stringify(parent)).toBeDefined();
      expect(Buffer.from(answer.Payload ?? new Uint8Array()).toString()).toContain('was started before its parents 0 ended');
    }
    const early = await h.client.getResult(dispatchId);
    expect(early.nodes[1]?.status).toBe('NEW_OBJECT');
    const result = await h.client.getResult<number>(dispatchId, { wait: true, timeoutMs: 60_000 });
    expect(result.result).toBe(84);
    expect(result.nodes[1]?.attempts).toBe(1);
  }, 60_000);

  it('takes the parents’ views from its await’s release: a well-formed one saves the read, a forged one is ignored', async () => {
    // Issue 18: the release of a node's `await` carries its parents' views (settle.ts,
    // `awaitReleased`), and the `run` state after it takes them (`released`) instead of reading
    // the parents' items. Delivered here as Step Functions delivers it, to a finished chain's
    // last node: its run only settles, so the one read it can make is its parent's.
    const { unmarshall } = await import('@aws-sdk/util-dynamodb');
    const { parentViewOf } = await import('../../sdk/runtime/store.ts');
    const { id } = await h.client.dispatch(wf.chain)(3);
    expect((await h.client.getResult<number>(id, { wait: true, timeoutMs: 60_000 })).result).toBe(16);
    const { tableName } = await h.client.outputs();
    const stored = await h.cloud.clients.dynamodb.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: `D#${id}` }, sk: { S: 'N#000001' } } }));
    const view = parentViewOf(unmarshall(stored.Item!) as never);
    expect(view).toMatchObject({ dispatchId: id, nodeId: 1, status: 'COMPLETED' });

    const readsOfRun = async (released: unknown): Promise<number> => {
      h.cloud.resetCounters();
      const answer = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-step', Payload: Buffer.from(JSON.stringify({ action: 'run', dispatchId: id, nodeId: 2, released })) }));
      expect(answer.FunctionError, JSON.stringify(released)).toBeUndefined();
      return h.cloud.counters().dynamodb?.BatchGetItem ?? 0;
    };
    expect(await readsOfRun(undefined)).toBe(1);
    expect(await readsOfRun({ nodeId: 2, released: true, parents: [view] })).toBe(0);
    // Of another dispatch, not a parent, not ended, not a view at all: read from the table.
    for (const forged of [{ ...view, dispatchId: 'another-dispatch' }, { ...view, nodeId: 0 }, { ...view, status: 'RUNNING' }, 'view', null]) {
      expect(await readsOfRun({ nodeId: 2, released: true, parents: [forged] }), JSON.stringify(forged)).toBe(1);
    }
    expect(await readsOfRun({ nodeId: 2, released: true, parents: 'not a list' })).toBe(1);
    // The node is as it was: completed once, its result unchanged.
    const after = await h.client.getResult<number>(id);
    expect(after.result).toBe(16);
    expect(after.nodes[2]?.attempts).toBe(1);
  }, 60_000);

  it('runs a diamond', async () => {
    const result = await run<number>(h.client.dispatch(wf.diamond)(1));
    expect(result.result).toBe(2 * 2 + (2 + 10));
  });

  it('fans out over 100 items and fans in', async () => {
    const result = await run<number>(h.client.dispatch(wf.fanout)());
    expect(result.status).toBe('COMPLETED');
    expect(result.nodes).toHaveLength(101);
    expect(result.result).toBe(Array.from({ length: 100 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
  }, 120_000);

  it('starts each node of the N shape as soon as its own parents end', async () => {
    type T = { label: string; start: number; end: number };
    // The second run measures scheduling, not sandbox cold starts.
    await run(h.client.dispatch(wf.nShape)());
    const result = await run<{ a: T; b: T; c: T; d: T }>(h.client.dispatch(wf.nShape)());
    const { a, b, c, d } = result.result!;
    // c depends on a only: it must not wait for the long b.
    expect(c.start).toBeGreaterThanOrEqual(a.end);
    expect(c.end).toBeLessThan(b.end);
    // d depends on a and b: it starts after both, without a level barrier's extra wait.
    expect(d.start).toBeGreaterThanOrEqual(Math.max(a.end, b.end));
    // A level-by-level schedule would start c only after b; here c starts while b still runs.
    expect(c.start).toBeLessThan(b.end);
    // d follows b without a level barrier's wait (a generous ceiling: the machine may be loaded).
    expect(d.start - b.end).toBeLessThan(3_000);
  });

  it('passes nested data containing placeholders', async () => {
    const result = await run<string>(h.client.dispatch(wf.nested)(5));
    expect(result.result).toBe('n:6:10,7,z');
  });

  it('runs a sublattice as a child dispatch built from real inputs', async () => {
    const result = await run<number>(h.client.dispatch(wf.withSublattice)(100));
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(1 + 4 + 9 + 100);
    const node = result.nodes.find((n) => n.name === 'squares')!;
    expect(node.childDispatchId).toBeTruthy();
    const child = await h.client.getResult<number>(node.childDispatchId!);
    expect(child.status).toBe('COMPLETED');
    expect(child.result).toBe(14);
    expect(child.nodes).toHaveLength(4);
    expect(child.parent).toEqual({ dispatchId: result.dispatchId, nodeId: node.id });
  });

  it('retries a failing electron and succeeds on the third attempt', async () => {
    const result = await run<number>(h.client.dispatch(wf.retrying)(h.dir));
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(3);
    expect(result.nodes[0]!.attempts).toBe(3);
    expect(readFileSync(join(h.dir, 'flaky.log'), 'utf8').trim().split('\n')).toEqual(['1', '2', '3']);
  });

  it('fails a node that exceeds its timeout, and terminates its thread', async () => {
    const dir = join(h.dir, 'timeout');
    mkdirSync(dir);
    const started = Date.now();
    const result = await run(h.client.dispatch(wf.timingOut)(dir));
    expect(result.status).toBe('FAILED');
    expect(result.nodes[0]!.status).toBe('FAILED');
    expect(result.nodes[0]!.error?.name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(15_000);
    // It ran (it beat), and its thread was terminated: the beats stopped, well before its own 20 s end.
    expect(beats(join(dir, 'slow.beat'))).toBeGreaterThan(3);
    await stopsBeating(join(dir, 'slow.beat'));
    expect(await heartbeatStopped(join(dir, 'slow.beat'), 1_000)).toBe(true);
  });

  it('fails the dispatch, cancels descendants and finishes independent branches', async () => {
    const dir = join(h.dir, 'failing');
    mkdirSync(dir);
    const result = await run(h.client.dispatch(wf.failing)(dir, 2));
    expect(result.status).toBe('FAILED');
    expect(result.error?.message).toMatch(/boom/);
    const byName = Object.fromEntries(result.nodes.map((n) => [n.id, n]));
    expect(byName[0]!.status).toBe('FAILED');
    expect(byName[0]!.error?.name).toBe('TypeError');
    expect(byName[1]!.status).toBe('CANCELLED');
    expect(byName[1]!.cancelledBy).toBe('upstream-failed');
    expect(byName[2]!.status).toBe('CANCELLED');
    expect(byName[3]!.status).toBe('COMPLETED');
    // The descendants never ran; the independent branch did (so the record works).
    expect(readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n')).toEqual(['independent']);
  });

  it('runs a Batch node as a real local process', async () => {
    const result = await run<number>(h.client.dispatch(wf.batchLattice)(h.dir, 7));
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(22);
    const node = result.nodes[0]!;
    expect(node.executor).toBe('batch');
    expect(node.jobHandle).toMatch(/^arn:aws:batch:/);
    const pid = Number(readFileSync(join(h.dir, 'batch-pid'), 'utf8'));
    expect(pid).not.toBe(process.pid);
    expect(pid).toBeGreaterThan(0);
  });

  it('runs a LocalExecutor node in its own process', async () => {
    const dir = join(h.dir, 'local');
    (await import('node:fs')).mkdirSync(dir);
    const result = await run<number>(h.client.dispatch(wf.localLattice)(dir, 1));
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(202);
    expect(result.nodes[0]!.jobHandle).toMatch(/^pid:\d+$/);
    const pid = Number(readFileSync(join(dir, 'local-pid'), 'utf8'));
    expect(result.nodes[0]!.jobHandle).toBe(`pid:${pid}`);
    expect(pid).not.toBe(process.pid);
  }, 60_000);

  it('retries a Batch node through the job retry strategy', async () => {
    const dir = join(h.dir, 'batch-retry');
    (await import('node:fs')).mkdirSync(dir);
    const result = await run<number>(h.client.dispatch(wf.batchRetrying)(dir));
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(2);
    expect(readFileSync(join(dir, 'flaky-job.log'), 'utf8').trim().split('\n')).toEqual(['1', '2']);
  }, 60_000);

  it('runs a Braket node: a Bell pair measures 00 and 11 about evenly', async () => {
    const result = await run<Record<string, number>>(h.client.dispatch(wf.braketLattice)());
    expect(result.status).toBe('COMPLETED');
    const counts = result.result!;
    expect(Object.keys(counts).sort()).toEqual(['00', '11']);
    expect(counts['00']! + counts['11']!).toBe(1000);
    expect(counts['00']!).toBeGreaterThan(400);
    expect(counts['11']!).toBeGreaterThan(400);
    expect(result.nodes[0]!.jobHandle).toMatch(/^arn:aws:braket:/);
  });

  it('moves a 10 MB payload through S3', async () => {
    const result = await run<number>(h.client.dispatch(wf.bigPayload)(10));
    // Under load (whole runs at load 4-10) this has ended without a result: name how it ended.
    expect(result.status, JSON.stringify({ error: result.error?.message, nodes: result.nodes.map((n) => [n.name, n.status, n.error?.message]) })).toBe('COMPLETED');
    expect(result.result).toBe(10 * 1024 * 1024);
  });

  it('round-trips Date, Map, Set, BigInt, typed arrays and undefined', async () => {
    const d = new Date('2026-01-02T03:04:05.000Z');
    const result = await run<{ d: Date; m: Map<string, bigint>; s: Set<number>; u: undefined; t: Uint8Array }>(
      h.client.dispatch(wf.richValues)(d, new Map([['a', 21n]])),
    );
    const value = result.result!;
    expect(value.d).toBeInstanceOf(Date);
    expect(value.d.getTime()).toBe(d.getTime() + 1000);
    expect(value.m.get('a')).toBe(42n);
    expect([...value.s]).toEqual([1, 2]);
    expect('u' in value && value.u === undefined).toBe(true);
    expect([...value.t]).toEqual([1, 2, 3]);
  });

  it('runs the electron once when the step handler is invoked twice for one node', async () => {
    const dispatchId = (await h.client.dispatch(wf.once)(h.dir)).id;
    const payload = JSON.stringify({ action: 'run', dispatchId, nodeId: 0 });
    // Two more invocations of the same node while the state machine's own one runs.
    const extra = [0, 1].map(() => h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-step', Payload: Buffer.from(payload) })));
    const result = await h.client.getResult(dispatchId, { wait: true, timeoutMs: 60_000 });
    await Promise.all(extra);
    expect(result.status).toBe('COMPLETED');
    const runs = readFileSync(join(h.dir, 'side-effect.log'), 'utf8').trim().split('\n');
    expect(runs).toHaveLength(1);
  });
});

describe('bad input', () => {
  it('refuses arguments that cannot be serialized before writing anything', async () => {
    const before = h.cloud.requestCounters.get('dynamodb', 'PutItem') + h.cloud.requestCounters.get('s3', 'PutObject');
    await expect(h.client.dispatch(wf.chain)((() => 1) as unknown as number)).rejects.toMatchObject({
      name: 'ValidationError',
      code: 'VALIDATION_UNSERIALIZABLE_CONSTANT',
    });
    expect(h.cloud.requestCounters.get('dynamodb', 'PutItem') + h.cloud.requestCounters.get('s3', 'PutObject')).toBe(before);
  });

  it('answers an unknown dispatch id with a not-found error', async () => {
    await expect(h.client.getResult('no-such-dispatch')).rejects.toMatchObject({ name: 'DispatchNotFoundError', code: 'DISPATCH_NOT_FOUND' });
  });

  it('refuses a lattice that was never deployed, naming what to deploy', async () => {
    const { lattice, electron } = await import('../../sdk/model/index.ts');
    const id = electron(function identity(x: number) {
      return x;
    });
    const undeployed = lattice({ name: 'neverDeployed' }, (x: number) => id(x));
    await expect(h.client.dispatch(undeployed)(1)).rejects.toMatchObject({ name: 'NotDeployedError', message: expect.stringMatching(/neverDeployed.*cdk deploy/) as unknown });
  });

  it('refuses a lattice whose graph changed since it was deployed', async () => {
    const { Lattice, LatticeRegistry } = await import('../../sdk/model/index.ts');
    // Same name as the deployed "chain", another body (the nested lattice's graph).
    const changed = new Lattice({ name: 'chain', registry: new LatticeRegistry() }, (x: number) => (wf.nested.fn as (x: number) => unknown)(x));
    await expect(h.client.dispatch(changed)(1)).rejects.toMatchObject({ name: 'StaleDeployError', message: expect.stringMatching(/Redeploy/) as unknown });
  });
});

describe('a Lambda crash mid-node', () => {
  it('is retried by the state machine and the result is still correct', async () => {
    // Warm up so the crash lands on the node's own invocation, not a cold start.
    await run(h.client.dispatch(wf.chain)(0));
    const dir = join(h.dir, 'crash');
    (await import('node:fs')).mkdirSync(dir);
    // Crash the node's invocation 1 s into its run: the electron is mid-sleep.
    h.cloud.faults.crashNthInvocation(1, 'valence-step', 1_000);
    const result = await run<number>(h.client.dispatch(wf.crashing)(dir));
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(84);
    const markers = readdirSync(dir).filter((f) => f.startsWith('crashable-'));
    // The crashed attempt started (its marker exists) and a second attempt finished the node.
    expect(markers.length).toBe(2);
    expect(markers.map((m) => m.split('-')[1]).sort()).toEqual(['1', '2']);
    expect(result.nodes[0]!.attempts).toBe(2);
  }, 60_000);
});
