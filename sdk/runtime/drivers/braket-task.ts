/**
 * Braket quantum task: run the electron (in a thread, like a Lambda node) to get its
 * OpenQASM 3 program, create the quantum task and record its ARN; the "Braket Task State
 * Change" event ends the node with the measurement counts. A cancel is `CancelQuantumTask`.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { CancelQuantumTaskCommand, CreateQuantumTaskCommand, GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { NodeStatus } from '../../status.ts';
import type { RuntimeContext } from '../context.ts';
import { payloadKeys } from '../payloads.ts';
import { CancelMethod } from '../../status.ts';
import { stopEach, textOf, type ExecutorDriver, type NodeOutcome, type NodeRun, type StopJobContext } from './driver.ts';
import { braketEnd, buildInThread, clientTokenOf, isConflict, tagsOf } from './braket.ts';
import { DRIVER_TRAITS, DriverKind } from './kinds.ts';
import { assertOwnedJob, type ExpectedOwner } from './ownership.ts';

async function start(run: NodeRun): Promise<NodeOutcome> {
  const { ctx, node, dispatch } = run;
  const built = await buildInThread(run, 'Braket');
  if ('ended' in built) return built.ended;
  const program = built.output;
  if (typeof program !== 'string' || !/OPENQASM\s+3/.test(program)) {
    return {
      status: NodeStatus.FAILED,
      error: { name: 'TypeError', message: `Braket electron ${node.name} must return an OpenQASM 3 program as a string` },
    };
  }
  await run.checkCancelled();
  const options = node.executor.options as { deviceArn: string; shots: number };
  const created = await ctx.aws.braket.send(
    new CreateQuantumTaskCommand({
      clientToken: clientTokenOf(run),
      deviceArn: options.deviceArn,
      shots: options.shots,
      outputS3Bucket: ctx.config.bucket,
      outputS3KeyPrefix: payloadKeys.braketOutputPrefix(dispatch.dispatchId, node.id),
      action: JSON.stringify({ braketSchemaHeader: { name: 'braket.ir.openqasm.program', version: '1' }, source: program }),
      tags: tagsOf(run),
    }),
    { abortSignal: ctx.signal },
  );
  const taskArn = created.quantumTaskArn!;
  const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle: taskArn, jobKind: DriverKind.BraketTask, taskToken: run.taskToken! }, ctx.signal);
  if (!recorded || recorded.cancelRequested) await stopJob(ctx, { jobHandle: taskArn });
  return { status: NodeStatus.RUNNING };
}

/**
 * Stops the work behind a handle. With an owner (a handle read from the table, or a job ref)
 * the resource's tags are read back first and a foreign one is refused; without (the handle
 * this invocation's own create call just returned) it is stopped at once.
 */
async function stopJob(ctx: StopJobContext, job: { jobHandle: string; dispatchId?: string }, owner?: ExpectedOwner): Promise<boolean> {
  const expected = owner ?? (job.dispatchId === undefined ? undefined : { dispatchId: job.dispatchId });
  if (expected) {
    const described = await ctx.aws.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: job.jobHandle }), { abortSignal: ctx.signal });
    assertOwnedJob(job.jobHandle, described.tags, expected);
  }
  try {
    await ctx.aws.braket.send(new CancelQuantumTaskCommand({ quantumTaskArn: job.jobHandle, clientToken: randomUUID() }), { abortSignal: ctx.signal });
    return true;
  } catch (error) {
    // Already terminal: the completion handler records what it ended as.
    if (isConflict(error)) return false;
    throw error;
  }
}

/**
 * Reads a Braket result (`results.json` in the task's output directory) and turns its
 * measurements into counts per bitstring, e.g. `{ "00": 503, "11": 497 }`.
 */
export async function readBraketCounts(ctx: RuntimeContext, location: { bucket: string; directory: string }): Promise<Record<string, number>> {
  const key = `${location.directory.replace(/^s3:\/\/[^/]+\//, '').replace(/\/$/, '')}/results.json`;
  const out = await ctx.aws.s3.send(new GetObjectCommand({ Bucket: location.bucket || ctx.config.bucket, Key: key }), { abortSignal: ctx.signal });
  const result = JSON.parse((await out.Body?.transformToString('utf8')) ?? '{}') as {
    measurements?: number[][];
    measurementCounts?: Record<string, number>;
  };
  if (result.measurementCounts) return result.measurementCounts;
  const counts: Record<string, number> = {};
  for (const shot of result.measurements ?? []) {
    const bits = shot.join('');
    counts[bits] = (counts[bits] ?? 0) + 1;
  }
  return counts;
}

/** The Braket quantum-task driver. */
export const braketTaskDriver: ExecutorDriver = {
  kind: DriverKind.BraketTask,
  ...DRIVER_TRAITS[DriverKind.BraketTask],
  cancelMethod: CancelMethod.CancelQuantumTask,
  start,
  stop: (ctx, nodes) =>
    stopEach(nodes, async (node) => {
      if (!node.jobHandle) return 'pending';
      await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.CancelQuantumTask, ctx.signal);
      await stopJob(ctx, { jobHandle: node.jobHandle }, { dispatchId: node.dispatchId, stackName: ctx.config.stackName });
      return CancelMethod.CancelQuantumTask;
    }),
  stopJob: (ctx, job) => stopJob(ctx, job),
  async poll(ctx, node) {
    const task = await ctx.aws.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: node.jobHandle! }), { abortSignal: ctx.signal });
    return braketEnd(task.status ?? '', task);
  },
  endFromEvent(event) {
    if (event.source !== 'aws.braket' || event['detail-type'] !== 'Braket Task State Change') return undefined;
    const detail = event.detail ?? {};
    const end = braketEnd(textOf(detail['status']), detail);
    return end ? { handle: textOf(detail['quantumTaskArn']), end } : undefined;
  },
  async storeOutput(ctx, node, end) {
    if (!end.braketResult) return;
    const counts = await readBraketCounts(ctx, end.braketResult);
    await ctx.payloads.putValue(payloadKeys.nodeOutput(node.dispatchId, node.nodeId), counts, ctx.signal);
  },
};
