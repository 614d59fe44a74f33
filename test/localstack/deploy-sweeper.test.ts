// The local deploy's sweeper schedule: off unless asked for, so that no scheduled sweep
// repairs or races what a test observes (a test of the sweeper invokes it itself).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SWEEP_INTERVAL_MS } from '../../localstack/deploy.ts';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';
import { FIXTURES } from '../runtime/harness.ts';
import { waitFor } from '../cancel/observe.ts';

let cloud: LocalCloud | undefined;
afterEach(async () => {
  await cloud?.stop();
  cloud = undefined;
});

/** DynamoDB Query calls since the last reset: every sweep lists the active nodes (a Query on the byList index). */
const queries = (c: LocalCloud): number => c.counters()['dynamodb']?.['Query'] ?? 0;

describe('the local sweeper schedule', () => {
  it('runs no scheduled sweep by default', async () => {
    // GIVEN a cloud with deployed workflows and no sweeper option, started while intervals are
    // fake, so that a default schedule (had one been made) is a timer this test can run ahead
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      cloud = await startLocalCloud({ port: 0, workflows: FIXTURES });
      cloud.resetCounters();
      // WHEN more than the interval a schedule would have by default passes, in timer time
      vi.advanceTimersByTime(DEFAULT_SWEEP_INTERVAL_MS * 3);
    } finally {
      vi.useRealTimers();
    }
    // (a sweep, once fired, needs real time for its Query to reach the table)
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // THEN no sweep read the table
    expect(queries(cloud)).toBe(0);
  }, 60_000);

  it('a schedule made while intervals are fake does fire when run ahead (the check above can fail)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      cloud = await startLocalCloud({ port: 0, workflows: FIXTURES, sweeper: {} });
      cloud.resetCounters();
      vi.advanceTimersByTime(DEFAULT_SWEEP_INTERVAL_MS * 3);
    } finally {
      vi.useRealTimers();
    }
    const c = cloud;
    await waitFor('a sweep after the default interval', () => queries(c) >= 1, 30_000);
  }, 60_000);

  it('sweeps every intervalMs when asked to', async () => {
    // GIVEN a cloud whose sweeper runs every 200 ms
    cloud = await startLocalCloud({ port: 0, workflows: FIXTURES, sweeper: { intervalMs: 200 } });
    cloud.resetCounters();
    // THEN sweeps read the table, repeatedly, without anyone invoking the sweeper
    const c = cloud;
    await waitFor('two sweeps', () => queries(c) >= 2, 30_000);
    // AND after stop() no sweep runs any more
    await c.stop();
    const after = queries(c);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(queries(c)).toBe(after);
  }, 60_000);
});
