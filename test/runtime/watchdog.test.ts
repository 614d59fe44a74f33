// The watchdog reads a running node's cancel flag at a fixed rate: the next read is due one
// interval after the previous one began, so a slow read does not stretch the time a cancel
// waits to be seen (issue 13, cancel latency). Fake store, real timers.
import { describe, expect, it } from 'vitest';
import { startWatchdog, type WatchdogAlarm } from '../../sdk/runtime/watchdog.ts';
import type { RuntimeContext } from '../../sdk/runtime/context.ts';
import type { NodeItem } from '../../sdk/runtime/store.ts';

const INTERVAL_MS = 100;
const READ_MS = 60;

/** A store whose eventually consistent read takes READ_MS and sees the flag once `flagged`. */
function fakeContext(state: { flagged: boolean; reads: number[] }): Pick<RuntimeContext, 'store' | 'config' | 'now' | 'signal'> {
  const item = (): NodeItem => ({ dispatchId: 'd', nodeId: 0, runId: 'r', status: 'RUNNING', cancelRequested: state.flagged, cancelReason: 'test' }) as unknown as NodeItem;
  const store = {
    getNode: async () => {
      state.reads.push(performance.now());
      await new Promise((resolve) => setTimeout(resolve, READ_MS));
      return item();
    },
    renewLease: () => Promise.resolve(item()),
  };
  return {
    store: store as unknown as RuntimeContext['store'],
    config: { watchdogIntervalMs: INTERVAL_MS, leaseMs: 60_000 } as RuntimeContext['config'],
    now: () => new Date(),
    signal: new AbortController().signal,
  };
}

describe('the watchdog', () => {
  it('starts a read every interval even when each read takes most of one', async () => {
    // Prepare
    const state = { flagged: false, reads: [] as number[] };
    const dog = startWatchdog(fakeContext(state), { dispatchId: 'd', nodeId: 0, runId: 'r' }, () => undefined);
    // Act
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    dog.stop();
    // Assess: reads begin ~100 ms apart (scheduling after the answer made it ~160 ms: 6 reads).
    // The median, not the largest gap: on a loaded machine one timer may fire late.
    const gaps = state.reads.slice(1).map((t, i) => t - state.reads[i]!).sort((a, b) => a - b);
    expect(state.reads.length).toBeGreaterThanOrEqual(8);
    expect(gaps[Math.floor(gaps.length / 2)]!).toBeLessThan(INTERVAL_MS + READ_MS / 2);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(INTERVAL_MS - 5);
  });

  it('fires the cancel alarm within one interval and one read of the flag being set', async () => {
    // Prepare
    const state = { flagged: false, reads: [] as number[] };
    let alarmedAt: number | undefined;
    const dog = startWatchdog(fakeContext(state), { dispatchId: 'd', nodeId: 0, runId: 'r' }, (alarm: WatchdogAlarm) => {
      if (alarm.kind === 'cancel') alarmedAt = performance.now();
    });
    await new Promise((resolve) => setTimeout(resolve, 330));
    // Act
    const flaggedAt = performance.now();
    state.flagged = true;
    while (alarmedAt === undefined && performance.now() - flaggedAt < 2_000) await new Promise((resolve) => setTimeout(resolve, 5));
    dog.stop();
    // Assess: a read that began before the flag misses it; the next begins within an interval.
    expect(alarmedAt).toBeDefined();
    expect(alarmedAt! - flaggedAt).toBeLessThan(INTERVAL_MS + READ_MS + 40);
  });
});
