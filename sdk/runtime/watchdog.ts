/**
 * The watchdog of a node that runs inside the step handler (or in a local process the handler
 * owns). Stopping an execution does not stop a running Lambda on AWS, so the node itself must
 * notice a cancel: the watchdog re-reads the node's `cancelRequested` flag every
 * `watchdogIntervalMs` (one eventually consistent read) and renews the node's lease every
 * third of `leaseMs` (one conditional write, which also returns the flag).
 *
 * A forced cancel (`cancelForce`) asks the owner to kill the work at once. A graceful alarm
 * keeps the watchdog reading, so a forced request that arrives during the grace period
 * escalates it.
 */
import type { RuntimeContext } from './context.ts';
import type { NodeItem } from './store.ts';

/** Why the watchdog fired. */
export type WatchdogAlarm =
  | {
      readonly kind: 'cancel';
      readonly reason: string;
      /** Kill now, skipping the grace period (a `force: true` request flagged the node). */
      readonly force: boolean;
    }
  /** Another invocation took the node over, or the node ended elsewhere: stop without writing. */
  | { readonly kind: 'lost-claim' };

/** A running watchdog; `stop()` ends its loop (always call it). */
export interface Watchdog {
  stop(): void;
}

/**
 * Starts watching a node held by `runId`; calls `onAlarm` once, or twice when a forced cancel
 * follows a graceful one (the second alarm has `force: true`). Its reads and writes
 * take the context's signal, and its time the context's clock.
 */
export function startWatchdog(
  ctx: Pick<RuntimeContext, 'store' | 'config' | 'now' | 'signal'>,
  node: { dispatchId: string; nodeId: number; runId: string },
  onAlarm: (alarm: WatchdogAlarm) => void,
): Watchdog {
  const { store, config } = ctx;
  const nowMs = (): number => ctx.now().getTime();
  let stopped = false;
  /** Done: a lost claim or a forced cancel was reported, nothing can follow. */
  let fired = false;
  let graceful = false;
  const fire = (alarm: WatchdogAlarm): void => {
    if (fired || stopped) return;
    if (alarm.kind === 'cancel' && !alarm.force) {
      if (graceful) return;
      graceful = true;
    } else {
      fired = true;
    }
    onAlarm(alarm);
  };
  const check = (item: NodeItem | undefined): void => {
    if (!item || item.runId !== node.runId || (item.status !== 'RUNNING' && item.status !== 'NEW_OBJECT')) {
      // Once a cancel is under way, the node ending elsewhere is that cancel's end, not a takeover.
      if (!graceful) fire({ kind: 'lost-claim' });
    } else if (item.cancelRequested) {
      fire({ kind: 'cancel', reason: item.cancelReason ?? 'cancel requested', force: item.cancelForce === true });
    }
  };
  const renewEvery = Math.max(config.watchdogIntervalMs, Math.floor(config.leaseMs / 3));
  let lastRenew = nowMs();
  let timer: NodeJS.Timeout | undefined;
  const tick = async (): Promise<void> => {
    if (stopped || fired) return;
    // Timers run on the real clock, whatever ctx.now() says (a test's clock may jump).
    const tickedAt = performance.now();
    try {
      if (nowMs() - lastRenew >= renewEvery) {
        lastRenew = nowMs();
        check(await store.renewLease(node.dispatchId, node.nodeId, node.runId, nowMs() + config.leaseMs, ctx.signal));
      } else {
        check(await store.getNode(node.dispatchId, node.nodeId, { consistent: false, signal: ctx.signal }));
      }
    } catch {
      // A failed read is not a cancel; the next tick tries again, and a lapsed lease is
      // handled by whoever takes the node over.
    }
    // Fixed rate: the next read is due one interval after this one began, not after it
    // answered, so a slow read does not stretch the time a cancel waits to be seen.
    if (!stopped && !fired) timer = setTimeout(() => void tick(), Math.max(0, tickedAt + config.watchdogIntervalMs - performance.now()));
  };
  timer = setTimeout(() => void tick(), config.watchdogIntervalMs);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
