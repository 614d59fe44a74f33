/**
 * Ending nodes that wait on long-running work: the completion handler (Batch and Braket
 * state-change events from EventBridge) and the sweeper (a schedule that polls the same
 * services, for events that were lost, and that re-cancels work a cancel did not stop).
 *
 * A job that ends after its node's cancel was requested ends the node `CANCELLED` with the
 * method the cancel handler used — never `FAILED`.
 */
import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { GetJobCommand, GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { SendTaskHeartbeatCommand } from '@aws-sdk/client-sfn';
import { DispatchStatus, NodeStatus, isTerminalNodeStatus } from '../status.ts';
import type { RuntimeContext } from './context.ts';
import { payloadKeys, PayloadNotFoundError } from './payloads.ts';
import type { SerializedError } from './serialization.ts';
import { releaseDependents } from './settle.ts';
import { CancelMethod } from '../status.ts';
import type { NodeItem } from './store.ts';
import { stopRunningWork } from './cancel.ts';

/** An EventBridge event as delivered to the completion handler. */
export interface ServiceEvent {
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: Record<string, unknown>;
}

/** A terminal state of a job, whatever service ran it. */
export type JobEnd =
  | { readonly kind: 'succeeded'; readonly braketResult?: { bucket: string; directory: string } }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'cancelled'; readonly reason: string };

/** Handles one state-change event; ignores events of jobs valence did not start. */
export async function handleServiceEvent(ctx: RuntimeContext, event: ServiceEvent): Promise<{ handled: number }> {
  const found = jobEndFromEvent(event);
  if (!found) return { handled: 0 };
  // The index is eventually consistent: it finds the nodes, the table says how they stand.
  const nodes = await ctx.store.nodesByJobHandle(found.handle);
  let handled = 0;
  for (const indexed of nodes) {
    const node = await ctx.store.getNode(indexed.dispatchId, indexed.nodeId);
    if (node && node.jobHandle === found.handle && (await endNodeForJob(ctx, node, found.end))) handled++;
  }
  return { handled };
}

function jobEndFromEvent(event: ServiceEvent): { handle: string; end: JobEnd } | undefined {
  const detail = event.detail ?? {};
  if (event.source === 'aws.batch' && event['detail-type'] === 'Batch Job State Change') {
    const handle = String(detail['jobArn'] ?? '');
    const status = String(detail['status'] ?? '');
    if (status === 'SUCCEEDED') return { handle, end: { kind: 'succeeded' } };
    if (status === 'FAILED') return { handle, end: { kind: 'failed', reason: batchReason(detail) } };
    return undefined;
  }
  if (event.source === 'aws.braket' && event['detail-type'] === 'Braket Task State Change') {
    return braketEnd(String(detail['quantumTaskArn'] ?? ''), String(detail['status'] ?? ''), detail);
  }
  if (event.source === 'aws.braket' && event['detail-type'] === 'Braket Job State Change') {
    return braketEnd(String(detail['jobArn'] ?? ''), String(detail['status'] ?? ''), detail);
  }
  return undefined;
}

function batchReason(detail: Record<string, unknown>): string {
  const container = detail['container'] as { exitCode?: number; reason?: string } | undefined;
  const reason = String(detail['statusReason'] ?? 'Batch job failed');
  return container?.exitCode !== undefined ? `${reason} (exit code ${container.exitCode})` : reason;
}

function braketEnd(handle: string, status: string, detail: Record<string, unknown>): { handle: string; end: JobEnd } | undefined {
  if (status === 'COMPLETED') {
    const bucket = String(detail['outputS3Bucket'] ?? '');
    const directory = String(detail['outputS3Directory'] ?? '');
    return { handle, end: { kind: 'succeeded', braketResult: { bucket, directory } } };
  }
  if (status === 'FAILED') return { handle, end: { kind: 'failed', reason: String(detail['failureReason'] ?? 'Braket task failed') } };
  if (status === 'CANCELLED') return { handle, end: { kind: 'cancelled', reason: 'Braket task cancelled' } };
  return undefined;
}

/**
 * Ends a node whose job ended. Returns false when the node had already ended (a duplicate
 * event, or the sweeper got there first).
 */
export async function endNodeForJob(ctx: RuntimeContext, node: NodeItem, end: JobEnd): Promise<boolean> {
  if (isTerminalNodeStatus(node.status)) return false;
  const endedAt = ctx.now().toISOString();
  let ended: NodeItem | undefined;
  if (node.cancelRequested && end.kind !== 'succeeded') {
    ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, {
      status: NodeStatus.CANCELLED,
      endedAt,
      cancelledBy: node.cancelAction ?? defaultCancelMethod(node),
    });
  } else if (end.kind === 'succeeded') {
    if (node.jobKind === 'braket-job') {
      await ctx.payloads.putValue(payloadKeys.nodeOutput(node.dispatchId, node.nodeId), { jobArn: node.jobHandle, status: 'COMPLETED' });
    } else if (end.braketResult) {
      const counts = await readBraketCounts(ctx, end.braketResult);
      await ctx.payloads.putValue(payloadKeys.nodeOutput(node.dispatchId, node.nodeId), counts);
    }
    ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, { status: NodeStatus.COMPLETED, endedAt, hasOutput: true });
  } else if (end.kind === 'cancelled') {
    // Cancelled outside valence (console, CLI): still a cancellation, never a failure.
    ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, {
      status: NodeStatus.CANCELLED,
      endedAt,
      cancelledBy: defaultCancelMethod(node),
      cancelReason: end.reason,
    });
  } else {
    const error = await jobError(ctx, node, end.reason);
    ended = await ctx.store.finishNode(node.dispatchId, node.nodeId, { status: NodeStatus.FAILED, endedAt, error });
  }
  if (!ended) return false;
  await releaseDependents(ctx, ended);
  return true;
}

function defaultCancelMethod(node: NodeItem): CancelMethod {
  switch (node.jobKind) {
    case 'braket-task':
      return CancelMethod.CancelQuantumTask;
    case 'braket-job':
      return CancelMethod.CancelHybridJob;
    case 'batch':
      return CancelMethod.TerminateJob;
    default:
      return CancelMethod.ExecutorCancel;
  }
}

async function jobError(ctx: RuntimeContext, node: NodeItem, reason: string): Promise<SerializedError> {
  try {
    const error = await ctx.payloads.getValue<SerializedError>(payloadKeys.nodeError(node.dispatchId, node.nodeId));
    return error;
  } catch (error) {
    if (!(error instanceof PayloadNotFoundError)) throw error;
    return { name: 'JobFailed', message: reason };
  }
}

/**
 * Reads a Braket result (`results.json` in the task's output directory) and turns its
 * measurements into counts per bitstring, e.g. `{ "00": 503, "11": 497 }`.
 */
export async function readBraketCounts(ctx: RuntimeContext, location: { bucket: string; directory: string }): Promise<Record<string, number>> {
  const key = `${location.directory.replace(/^s3:\/\/[^/]+\//, '').replace(/\/$/, '')}/results.json`;
  const out = await ctx.aws.s3.send(new GetObjectCommand({ Bucket: location.bucket || ctx.config.bucket, Key: key }));
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

/** What one sweep did. */
export interface SweepReport {
  readonly checked: number;
  /** Nodes ended because their job had ended without an event reaching valence. */
  readonly completed: number;
  /** Nodes whose cancel was requested and whose job was still alive: stopped again. */
  readonly recancelled: number;
  /** Waiting states kept alive with SendTaskHeartbeat. */
  readonly heartbeats: number;
  readonly errors: string[];
}

/**
 * One sweep over nodes that wait on live jobs: completes those whose job ended (a lost
 * event), stops again those whose cancel did not take (a failed API call), and heartbeats
 * the rest so their waiting states do not time out.
 */
export async function sweep(ctx: RuntimeContext, deps: { loadExecutors?: () => Promise<void> } = {}): Promise<SweepReport> {
  const report = { checked: 0, completed: 0, recancelled: 0, heartbeats: 0, errors: [] as string[] };
  for (const node of await ctx.store.listActiveNodes()) {
    report.checked++;
    try {
      const end = await pollJob(ctx, node);
      if (end) {
        if (await endNodeForJob(ctx, node, end)) report.completed++;
        continue;
      }
      if (node.cancelRequested) {
        await stopRunningWork(ctx, node, node.cancelReason ?? 'cancel requested', deps, 'valence-sweeper');
        report.recancelled++;
        continue;
      }
      if (node.taskToken) {
        try {
          await ctx.aws.sfn.send(new SendTaskHeartbeatCommand({ taskToken: node.taskToken }));
          report.heartbeats++;
        } catch {
          // The waiting state is gone (execution stopped); the node ends when its job does.
        }
      }
    } catch (error) {
      report.errors.push(`${node.dispatchId}/${node.nodeId}: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }
  return report;
}

/** Asks the service how a node's job stands; undefined while it still runs. */
export async function pollJob(ctx: RuntimeContext, node: NodeItem): Promise<JobEnd | undefined> {
  const handle = node.jobHandle!;
  switch (node.jobKind) {
    case 'batch': {
      const jobId = handle.slice(handle.lastIndexOf('/') + 1);
      const job = (await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [jobId] }))).jobs?.[0];
      if (!job) return { kind: 'failed', reason: `Batch job ${jobId} no longer exists` };
      if (job.status === 'SUCCEEDED') return { kind: 'succeeded' };
      if (job.status === 'FAILED') return { kind: 'failed', reason: job.statusReason ?? 'Batch job failed' };
      return undefined;
    }
    case 'braket-task': {
      const task = await ctx.aws.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: handle }));
      return braketEnd(handle, task.status ?? '', { outputS3Bucket: task.outputS3Bucket, outputS3Directory: task.outputS3Directory, failureReason: task.failureReason })?.end;
    }
    case 'braket-job': {
      const job = await ctx.aws.braket.send(new GetJobCommand({ jobArn: handle }));
      return braketEnd(handle, job.status ?? '', { failureReason: job.failureReason })?.end;
    }
    case 'child-dispatch': {
      const child = node.childDispatchId ? await ctx.store.getDispatch(node.childDispatchId) : undefined;
      if (!child || child.status === DispatchStatus.RUNNING) return undefined;
      return undefined; // the child's finalize ends this node; nothing to poll here
    }
    default:
      return undefined;
  }
}
