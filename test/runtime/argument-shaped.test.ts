// Argument-shaped lattices on the local cloud: the graph is built at dispatch from the real
// arguments and runs on the graph runner; a branch on an argument runs the right electron;
// a per-task cancel stops that task and its descendants.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executionHistory, startHarness, type RuntimeHarness } from './harness.ts';
import { branch, failingChain, fanWithSlow, parts, squares } from './fixtures/argument-shaped.ts';
import { beats, heartbeatStopped, waitFor } from '../cancel/observe.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, fileURLToPath(new URL('./fixtures/argument-shaped.ts', import.meta.url)));
}, 60_000);
afterAll(async () => h?.close());

/**
 * What the graph runner's execution of a dispatch did per node, from its history: the nodes
 * whose `run` state invoked the step handler, and those whose `await` was failed with
 * Valence.NodeEnded (their `run` state skipped).
 */
async function runnerStates(id: string): Promise<{ ran: number[]; skipped: number[]; waits: number[] }> {
  const { graphRunnerArn } = await h.client.outputs();
  const executionArn = `${graphRunnerArn.replace(':stateMachine:', ':execution:')}:${id}`;
  const events = await executionHistory(h.cloud, executionArn);
  const scheduled = (e: HistoryEvent): { action?: string; nodeId?: number } =>
    (JSON.parse(e.taskScheduledEventDetails?.parameters ?? '{}') as { Payload?: { action?: string; nodeId?: number } }).Payload ?? {};
  const ran = events.map((e) => scheduled(e)).filter((p) => p.action === 'run').map((p) => p.nodeId!);
  const waits = events.map((e) => scheduled(e)).filter((p) => p.action === 'await').map((p) => p.nodeId!);
  // The failure's cause names the node ("node 3 ended CANCELLED (upstream-failed) before its turn").
  const skipped = events
    .filter((e) => e.type === 'TaskFailed' && e.taskFailedEventDetails?.error === 'Valence.NodeEnded')
    .map((e) => Number(/^node (\d+) ended/.exec(e.taskFailedEventDetails?.cause ?? '')?.[1]));
  return { ran: ran.sort((a, b) => a - b), skipped: skipped.sort((a, b) => a - b), waits: waits.sort((a, b) => a - b) };
}

const sumOfSquares = (n: number): number => Array.from({ length: n }, (_, i) => i * i).reduce((a, b) => a + b, 0);

describe('an argument-shaped lattice', () => {
  it('is built from n = 3 and from n = 300 at dispatch and gives the right totals', async () => {
    for (const n of [3, 300]) {
      const id = (await h.client.dispatch(squares)(n)).id;
      const result = await h.client.getResult<number>(id, { wait: true, timeoutMs: 240_000 });
      expect(result.status).toBe('COMPLETED');
      expect(result.nodes).toHaveLength(n + 1);
      expect(result.result).toBe(sumOfSquares(n));
    }
  }, 300_000);
});

describe('a branch on an argument', () => {
  it('runs the electron of the branch the argument takes, and never the other', async () => {
    for (const [flag, ran] of [[true, 'yes'], [false, 'no']] as const) {
      const dir = join(h.dir, `branch-${ran}`);
      mkdirSync(dir);
      const id = (await h.client.dispatch(branch)(dir, flag, 7)).id;
      const result = await h.client.getResult<string>(id, { wait: true, timeoutMs: 60_000 });
      expect(result.status).toBe('COMPLETED');
      expect(result.result).toBe(`${ran}:7`);
      expect(readFileSync(join(dir, 'branches.log'), 'utf8').trim().split('\n')).toEqual([ran]);
    }
  }, 150_000);
});

describe('a per-task cancel inside an argument-shaped dispatch', () => {
  it('stops the task (its heartbeat stops) and its descendant, and the rest completes', async () => {
    const dir = join(h.dir, 'cancel');
    mkdirSync(dir);
    const width = 3;
    const id = (await h.client.dispatch(fanWithSlow)(dir, width)).id;
    await waitFor('slow node beats', () => beats(join(dir, 'slow.beat')) > 3, 60_000);
    const report = await h.client.cancel(id, { taskIds: [0], reason: 'per-task cancel' });
    expect(new Set(report.cancelled.map((c) => c.id))).toEqual(new Set([0, 1]));
    expect(await heartbeatStopped(join(dir, 'slow.beat'))).toBe(true);
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 120_000 });
    expect(result.status).toBe('CANCELLED');
    expect(result.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED', ...Array.from({ length: width }, () => 'COMPLETED')]);
    const ran = existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n').map(Number) : [];
    expect(ran.sort((a, b) => a - b)).toEqual([0, 1, 2]);
    // The descendant could never run: its wait was failed with NodeEnded and its run state skipped.
    const states = await runnerStates(id);
    expect(states.skipped).toEqual([1]);
    expect(states.ran).not.toContain(1);
  }, 150_000);
});

describe('a failure in an argument-shaped dispatch', () => {
  it('ends the chain below it upstream-failed from the failing node, with no step invocation for any of them', async () => {
    const dir = join(h.dir, 'failing-chain');
    mkdirSync(dir);
    const depth = 6;
    const id = (await h.client.dispatch(failingChain)(dir, depth)).id;
    const result = await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('FAILED');
    const chain = Array.from({ length: depth }, (_, i) => i + 1);
    expect(result.nodes[0]?.status).toBe('FAILED');
    for (const n of chain) expect(result.nodes[n]).toMatchObject({ status: 'CANCELLED', cancelledBy: 'upstream-failed' });
    expect(result.nodes[depth + 1]?.status).toBe('COMPLETED');
    // Only the failing node and the one apart ran.
    expect(readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n').sort()).toEqual([String(depth + 1), 'fails']);
    // Every chain node's wait was failed with NodeEnded, and none of them got a run invocation:
    // the two that ran did so in their wait's own invocation (issue 18), none handed back to a run state.
    const states = await runnerStates(id);
    expect(states.skipped).toEqual(chain);
    expect(states.ran).toEqual([]);
    expect(states.waits).toEqual(Array.from({ length: depth + 2 }, (_, i) => i));
  }, 90_000);
});

describe('parts of an output', () => {
  it('reach the next electron as just that part (destructuring, .key, [i])', async () => {
    const dir = join(h.dir, 'parts');
    mkdirSync(dir);
    const id = (await h.client.dispatch(parts)(dir, 5)).id;
    const result = await h.client.getResult<unknown[]>(id, { wait: true, timeoutMs: 60_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toEqual([4, 6, 2.5, 10, 30]);
    const got = readFileSync(join(dir, 'got.log'), 'utf8').trim().split('\n').sort();
    expect(got).toEqual(['a 4', 'b 6', 'loss 2.5', 'row3 30', 'w1 10']);
  }, 90_000);
});
