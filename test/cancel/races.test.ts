// Races: cancels arriving at random moments while nodes start and complete. Whatever the
// timing, every node ends in exactly one terminal state, no descendant of a cancelled node
// ever runs, and nothing is left running.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
const TRIALS = 100;
const CONCURRENT = 4;
/** quick: a → (b, c) → d. */
const DESCENDANTS: Record<number, number[]> = { 0: [1, 2, 3], 1: [3], 2: [3], 3: [] };
const NAMES = ['a', 'b', 'c', 'd'];

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
  const warm = await h.client.dispatch(wf.quick)(h.dir);
  await h.client.getResult(warm, { wait: true });
  await h.client.cancel(warm);
}, 60_000);
afterAll(async () => h?.close());

/** A seeded generator, so a failing trial can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function trial(n: number): Promise<string[]> {
  const rand = random(n + 1);
  const dir = join(h.dir, `trial-${n}`);
  mkdirSync(dir);
  const id = await h.client.dispatch(wf.quick)(dir);
  await sleep(Math.floor(rand() * 600));
  const whole = rand() < 0.3;
  const taskIds = whole ? undefined : [Math.floor(rand() * 4)];
  const report = await h.client.cancel(id, taskIds ? { taskIds } : {});
  const result = await h.client.getResult(id, { wait: true, timeoutMs: 30_000 });
  const problems: string[] = [];
  const where = `trial ${n} (${taskIds ? `task ${taskIds[0]}` : 'whole'})`;
  if (!['COMPLETED', 'CANCELLED', 'FAILED'].includes(result.status)) problems.push(`${where}: dispatch ${result.status}`);
  const ran = existsSync(join(dir, 'ran.log')) ? readFileSync(join(dir, 'ran.log'), 'utf8').trim().split('\n') : [];
  for (const node of result.nodes) {
    if (node.status !== 'COMPLETED' && node.status !== 'CANCELLED') problems.push(`${where}: node ${node.id} ${node.status}`);
    if (node.status === 'COMPLETED' && ran.filter((r) => r === NAMES[node.id]).length !== 1) problems.push(`${where}: node ${node.id} completed but ran ${ran.filter((r) => r === NAMES[node.id]).length} times`);
    if (node.status === 'CANCELLED') {
      for (const d of DESCENDANTS[node.id]!) {
        if (ran.includes(NAMES[d]!)) problems.push(`${where}: node ${d} ran although its ancestor ${node.id} was cancelled`);
      }
    }
  }
  // The report and the final state agree: what it called cancelled ended cancelled.
  for (const c of report.cancelled) {
    const node = result.nodes.find((x) => x.id === c.id);
    if (c.status === 'CANCELLED' && node?.status !== 'CANCELLED') problems.push(`${where}: report says ${c.id} cancelled, store says ${node?.status}`);
  }
  for (const t of report.alreadyTerminal) {
    const node = result.nodes.find((x) => x.id === t.id);
    if (node?.status !== t.status) problems.push(`${where}: report says ${t.id} ${t.status}, store says ${node?.status}`);
  }
  return problems;
}

describe(`${TRIALS} randomized cancel races`, () => {
  it('every node ends in exactly one terminal state and no descendant of a cancelled node runs', async () => {
    const problems: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        while (next < TRIALS) problems.push(...(await trial(next++)));
      }),
    );
    expect(problems).toEqual([]);
  }, 400_000);
});
