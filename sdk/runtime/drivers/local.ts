/**
 * Local: valence's job runner in a child process group the step handler owns (handle
 * `pid:<pid>`). The handler's watchdog sees a cancel and sends SIGTERM to the group, then
 * SIGKILL after the grace period (at once for a forced cancel); the cancel handler has nothing to call.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { NodeStatus } from '../../status.ts';
import { PayloadNotFoundError, payloadKeys } from '../payloads.ts';
import type { SerializedError } from '../serialization.ts';
import { CancelMethod } from '../../status.ts';
import { startWatchdog } from '../watchdog.ts';
import { NO_SERVICE_JOB, stopEach, type ExecutorDriver, type NodeOutcome, type NodeRun } from './driver.ts';
import { jobEnvironment, uploadInputs } from './job-inputs.ts';
import { DRIVER_TRAITS, DriverKind } from './kinds.ts';

/** The process group id a `pid:<pid>` handle names, or undefined. */
function pidOf(jobHandle: string): number | undefined {
  const pid = Number(jobHandle.replace(/^pid:/, ''));
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Signals a process group; false when it is already gone. */
function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

async function start(run: NodeRun): Promise<NodeOutcome> {
  const { ctx, node, dispatch, catalog } = run;
  await uploadInputs(run);
  const env = Object.fromEntries(jobEnvironment(run).map(({ name, value }) => [name, value]));
  const child = spawn(process.execPath, [...catalog.jobRunner.execArgv, catalog.jobRunner.path], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...env, VALENCE_WORKFLOWS: catalog.workflowsUrl },
  });
  const pid = child.pid!;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ? null : code)));
  await ctx.store.recordJobHandle(
    dispatch.dispatchId,
    node.id,
    { jobHandle: `pid:${pid}`, jobKind: DriverKind.Local, ...(run.taskToken ? { taskToken: run.taskToken } : {}) },
    ctx.signal,
  );
  let stoppedBy: CancelMethod | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const watchdog = startWatchdog(ctx, { dispatchId: dispatch.dispatchId, nodeId: node.id, runId: run.runId }, (alarm) => {
    if (alarm.kind === 'cancel' && alarm.force) {
      // Forced (also when it escalates a graceful stop under way): SIGKILL now, no grace period.
      if (killTimer) clearTimeout(killTimer);
      stoppedBy = CancelMethod.Terminated;
      killGroup(pid, 'SIGKILL');
      return;
    }
    stoppedBy = CancelMethod.Signal;
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => {
      stoppedBy = CancelMethod.Terminated;
      killGroup(pid, 'SIGKILL');
    }, node.graceSeconds * 1000);
  });
  const code = await exited;
  watchdog.stop();
  if (killTimer) clearTimeout(killTimer);
  killGroup(pid, 'SIGKILL');
  if (stoppedBy) return { status: NodeStatus.CANCELLED, cancelledBy: stoppedBy };
  if (code === 0) return { status: NodeStatus.COMPLETED, output: await ctx.payloads.getValue(payloadKeys.nodeOutput(dispatch.dispatchId, node.id), ctx.signal) };
  return { status: NodeStatus.FAILED, error: await jobError(run, code) };
}

/**
 * Why a local job failed: the error the electron threw, which the job runner stored before it
 * exited non-zero (as the Batch driver reads it), or ProcessExited when the process died
 * without writing one (killed, out of memory, a crash before the electron ran).
 */
async function jobError(run: NodeRun, code: number | null): Promise<SerializedError> {
  const { ctx, node, dispatch } = run;
  try {
    return await ctx.payloads.getValue<SerializedError>(payloadKeys.nodeError(dispatch.dispatchId, node.id), ctx.signal);
  } catch (error) {
    if (!(error instanceof PayloadNotFoundError)) throw error;
    return { name: 'ProcessExited', message: `Local job for node ${node.id} exited with code ${code}` };
  }
}

/** The local-process driver. */
export const localDriver: ExecutorDriver = {
  kind: DriverKind.Local,
  ...DRIVER_TRAITS[DriverKind.Local],
  cancelMethod: CancelMethod.Signal,
  start,
  // The handler that owns the process group stops it when its watchdog fires.
  stop: (_ctx, nodes) => stopEach(nodes, () => Promise.resolve('pending' as const)),
  stopJob(_ctx, job, mode) {
    const pid = pidOf(job.jobHandle);
    return Promise.resolve(pid !== undefined && killGroup(pid, mode === 'graceful' ? 'SIGTERM' : 'SIGKILL'));
  },
  ...NO_SERVICE_JOB,
};
