// Races: cancels arriving at random moments while nodes start and complete, on Lambda and on
// Batch. Whatever the timing, every node ends in exactly one terminal state, no descendant of a
// cancelled node ever runs, and nothing is left running: no job process, no beating electron,
// no Batch job short of SUCCEEDED or FAILED. Enough trials must really race (the cancel lands
// while a node RUNS) for the rest to mean something.
//
// Ten trials here, enough to catch a regression cheaply; the full count (100 randomized races
// under injected throttles, 5xx and crashed invocations) is a benchmark:
// `node --import tsx bench/cancel-scale.ts --sizes '' --races 100`.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeJobsCommand, ListJobsCommand, type JobStatus } from '@aws-sdk/client-batch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';
import { alive, beats, heartbeatStopped, waitFor } from './observe.ts';

const FIXTURES = new URL('./fixtures/workflows.ts', import.meta.url).pathname;
const TRIALS = 10;
const CONCURRENT = 4;
/** At least this many trials must have cancelled a node while it was RUNNING (about half do). */
const MIN_RACED = 1;
/** raceable: a → (b on Batch, c a slow Lambda) → d. */
const DESCENDANTS: Record<number, number[]> = { 0: [1, 2, 3], 1: [3], 2: [3], 3: [] };
const NAMES = ['a', 'b', 'c', 'd'];
/** Nodes that beat while they run (and b writes its job process's pid). */
const BEATING = ['b', 'c'];
const LIVE_JOB_STATUSES: JobStatus[] = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'];

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
  // Warm the step and cancel handlers and the job runner.
  mkdirSync(join(h.dir, 'warm'));
  const warm = (await h.client.dispatch(wf.raceable)(join(h.dir, 'warm'))).id;
  await h.client.getResult(warm, { wait: true, timeoutMs: 60_000 });
  // As many cancel workers as trials run at once: a cold one's init took over 29 s at load 30-44,
  // and API Gateway answers 504 after 29 s.
  await Promise.all(Array.from({ length: CONCURRENT }, () => h.client.cancel(warm, { timeoutMs: 90_000 })));
}, 120_000);
afterAll(async () => h?.close());

/** A seeded generator, so a failing trial can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Trial {
  readonly problems: string[];
  /** The cancel found a node RUNNING (it really raced). */
  readonly raced: boolean;
}

async function trial(n: number): Promise<Trial> {
  const rand = random(n + 1);
  const dir = join(h.dir, `trial-${n}`);
  mkdirSync(dir);
  const id = (await h.client.dispatch(wf.raceable)(dir)).id;
  await sleep(Math.floor(rand() * 2_000));
  const whole = rand() < 0.3;
  const taskIds = whole ? undefined : [Math.floor(rand() * 4)];
  const report = await h.client.cancel(id, taskIds ? { taskIds } : {});
  const result = await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
  const problems: string[] = [];
  const where = `trial ${n} (${taskIds ? `task ${taskIds[0]}` : 'whole'})`;
  if (!['COMPLETED', 'CANCELLED'].includes(result.status)) problems.push(`${where}: dispatch ${result.status}`);
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
  // Nothing of this trial is left running: the Batch job ended, its process is gone.
  const job = result.nodes[1]?.jobHandle;
  if (job) {
    const described = (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [job.split('/').pop()!] }))).jobs?.[0];
    if (described?.status !== 'SUCCEEDED' && described?.status !== 'FAILED') problems.push(`${where}: Batch job ${described?.status}`);
  }
  const pidFile = join(dir, 'b.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(`job process ${pid} to exit`, () => !alive(pid), 10_000).catch(() => problems.push(`${where}: job process ${pid} still alive after the dispatch ended`));
  }
  for (const name of BEATING) {
    if (!(await heartbeatStopped(join(dir, `${name}.beat`)))) problems.push(`${where}: ${name} still beating after the dispatch ended`);
  }
  return { problems, raced: report.cancelled.some((c) => c.previousStatus === 'RUNNING') };
}

describe(`${TRIALS} randomized cancel races on Lambda and Batch`, () => {
  it('every node ends in exactly one terminal state, no descendant of a cancelled node runs, and nothing is left running', async () => {
    const trials: Trial[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        while (next < TRIALS) trials.push(await trial(next++));
      }),
    );
    expect(trials.flatMap((t) => t.problems)).toEqual([]);
    const raced = trials.filter((t) => t.raced).length;
    expect(raced, `only ${raced} of ${TRIALS} trials cancelled a RUNNING node`).toBeGreaterThanOrEqual(MIN_RACED);

    // Nothing is left running anywhere: no Batch job short of a terminal state ...
    for (const jobStatus of LIVE_JOB_STATUSES) {
      const listed = await h.cloud.clients.batch.send(new ListJobsCommand({ jobQueue: 'valence-queue', jobStatus }));
      expect(listed.jobSummaryList ?? [], `${jobStatus} jobs`).toEqual([]);
    }
    // ... and no electron still beating, on Lambda or in a job process.
    const files = Array.from({ length: TRIALS }, (_, n) => BEATING.map((name) => join(h.dir, `trial-${n}`, `${name}.beat`))).flat();
    const before = files.map(beats);
    await sleep(500);
    expect(files.filter((file, i) => beats(file) !== before[i])).toEqual([]);
  }, 420_000);
});
