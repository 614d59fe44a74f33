// A lattice split into partitions (child executions of a Distributed Map) runs with exact
// dependencies across partitions, and a task cancelled deep inside a partition stops with its
// descendants while everything else completes.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeStateMachineCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from './harness.ts';
import { LAYERS, WIDTH, layered, layeredBy, parentsOf } from './fixtures/large.ts';
import { beats, heartbeatStopped, waitFor } from '../cancel/observe.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  // Partitions of 20 nodes for a 60-node lattice: three child executions.
  h = await startHarness({ partition: { above: 30, chunkSize: 20 } }, fileURLToPath(new URL('./fixtures/large.ts', import.meta.url)));
}, 60_000);
afterAll(async () => h?.close());

function descendantsOf(id: number): Set<number> {
  const found = new Set<number>([id]);
  for (let n = id + 1; n < LAYERS * WIDTH; n++) if (parentsOf(n).some((p) => found.has(p))) found.add(n);
  return found;
}

/**
 * Dispatches with node 25 beating until cancelled, cancels that node, and observes: the report
 * names it and its descendants, its heartbeat stops, they end CANCELLED and never ran, and
 * every other node completes.
 */
async function cancelInsidePartition(name: string, reason: string, dispatch: (dir: string, slow: number) => Promise<{ id: string }>): Promise<void> {
  const dir = join(h.dir, name);
  mkdirSync(dir);
  const slow = 25;
  const id = (await dispatch(dir, slow)).id;
  await waitFor('slow node beats', () => beats(join(dir, 'slow.beat')) > 3, 60_000);
  const report = await h.client.cancel(id, { taskIds: [slow], reason });
  const expected = descendantsOf(slow);
  expect(new Set(report.cancelled.map((c) => c.id))).toEqual(expected);
  expect(await heartbeatStopped(join(dir, 'slow.beat'))).toBe(true);
  const result = await h.client.getResult(id, { wait: true, timeoutMs: 120_000 });
  expect(result.status).toBe('CANCELLED');
  for (const node of result.nodes) expect([node.id, node.status]).toEqual([node.id, expected.has(node.id) ? 'CANCELLED' : 'COMPLETED']);
  const ran = existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n').map(Number) : [];
  expect(ran.filter((n) => expected.has(n))).toEqual([]);
}

describe('a split lattice', () => {
  it('is deployed as partitions of a Distributed Map', async () => {
    const { stateMachineArnPrefix } = await h.client.outputs();
    const machine = await h.cloud.clients.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: `${stateMachineArnPrefix}layered` }));
    const definition = JSON.parse(machine.definition!) as { Comment: string; States: Record<string, { ItemProcessor?: { ProcessorConfig?: { Mode?: string } } }> };
    expect(definition.Comment).toMatch(/split: 3 partition\(s\) of up to 20 nodes/);
    expect(definition.States['partitions']?.ItemProcessor?.ProcessorConfig?.Mode).toBe('DISTRIBUTED');
  });

  it('runs to completion with exact dependencies across partitions', async () => {
    const dir = join(h.dir, 'full');
    mkdirSync(dir);
    const id = (await h.client.dispatch(layered)(dir, -1)).id;
    const result = await h.client.getResult<number[]>(id, { wait: true, timeoutMs: 120_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.nodes.every((n) => n.status === 'COMPLETED')).toBe(true);
    // Every node ran once, and after both of its parents.
    const ran = readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n').map(Number);
    expect([...ran].sort((a, b) => a - b)).toEqual(Array.from({ length: LAYERS * WIDTH }, (_, i) => i));
    for (const node of result.nodes) {
      for (const parent of parentsOf(node.id)) expect(Date.parse(node.startedAt!)).toBeGreaterThanOrEqual(Date.parse(result.nodes[parent]!.endedAt!));
    }
    // Each node adds 1 to the sum of its two parents: layer L is worth 2^(L+1) - 1.
    expect(result.result).toEqual(Array.from({ length: WIDTH }, () => 2 ** LAYERS - 1));
    // The partitions' events went to their own (child) histories: the parent holds the plan,
    // the map run and the tail only, whatever the number of nodes.
    const { stateMachineArnPrefix } = await h.client.outputs();
    const parent = h.cloud.services.stepfunctions.executionStats(`${stateMachineArnPrefix.replace(':stateMachine:', ':execution:')}layered:${id}`);
    expect(parent?.historyEvents).toBeLessThan(40);
  }, 150_000);

  it('cancels a task deep inside a partition: it and its descendants stop, the rest completes', async () => {
    // node 25 is in partition 1 of 0..2; its descendants reach into partition 2
    await cancelInsidePartition('cancel', 'deep cancel', (dir, slow) => h.client.dispatch(layered)(dir, slow));
  }, 150_000);
});

describe('an argument-shaped lattice on the graph runner', () => {
  /** The graph runner's execution of a dispatch, and its own history's size. */
  async function runnerHistory(id: string): Promise<number | undefined> {
    const { graphRunnerArn } = await h.client.outputs();
    return h.cloud.services.stepfunctions.executionStats(`${graphRunnerArn.replace(':stateMachine:', ':execution:')}:${id}`)?.historyEvents;
  }

  it('runs a graph past the split threshold in partitions, and a small one inline', async () => {
    const dir = join(h.dir, 'by-args');
    mkdirSync(dir);
    // 60 nodes, past the deploy's `above: 30`: three partitions of 20, each its own child execution.
    const large = (await h.client.dispatch(layeredBy)(dir, -1, LAYERS)).id;
    const result = await h.client.getResult<number[]>(large, { wait: true, timeoutMs: 120_000 });
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toEqual(Array.from({ length: WIDTH }, () => 2 ** LAYERS - 1));
    for (const node of result.nodes) {
      for (const parent of parentsOf(node.id)) expect(Date.parse(node.startedAt!)).toBeGreaterThanOrEqual(Date.parse(result.nodes[parent]!.endedAt!));
    }
    // The runner's own history holds the plan, the map run and the tail, not 60 nodes' events.
    expect(await runnerHistory(large)).toBeLessThan(40);
    // 20 nodes, under the threshold: the inline Map, every node's events in the runner's history.
    const small = (await h.client.dispatch(layeredBy)(dir, -1, 2)).id;
    const smallResult = await h.client.getResult<number[]>(small, { wait: true, timeoutMs: 120_000 });
    expect(smallResult.result).toEqual(Array.from({ length: WIDTH }, () => 3));
    expect(await runnerHistory(small)).toBeGreaterThan(2 * WIDTH * 5);
  }, 150_000);

  it('cancels a task inside a partition: it and its descendants stop, the rest completes', async () => {
    await cancelInsidePartition('by-args-cancel', 'deep cancel, argument-shaped', (dir, slow) => h.client.dispatch(layeredBy)(dir, slow, LAYERS));
  }, 150_000);
});
