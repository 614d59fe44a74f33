/**
 * Batch: upload the inputs, submit a job whose command is valence's job runner, record the
 * job ARN, return; the "Batch Job State Change" event (or the sweeper's poll) ends the node.
 * Checks the flag before the upload and before the submit; after recording the handle it looks
 * once more, so a cancel that landed during the submit still stops the job.
 *
 * Task packing: sibling nodes that call the same Batch electron with the same options and the
 * same parents run as one array job; each member's handle is its child (`…:job/<id>:<index>`).
 *
 * @module
 */
import { CancelJobCommand, DescribeJobsCommand, SubmitJobCommand, TerminateJobCommand } from '@aws-sdk/client-batch';
import { NodeStatus } from '../../status.ts';
import { PayloadNotFoundError, payloadKeys } from '../payloads.ts';
import type { SerializedError } from '../serialization.ts';
import type { RuntimeContext } from '../context.ts';
import { CancelMethod } from '../../status.ts';
import type { NodeItem } from '../store.ts';
import type { RuntimeGraph, RuntimeNode } from '../workflows.ts';
import type { ExecutorDriver, JobEnd, NodeOutcome, NodeRun, StopJobContext, StopMode, StopRequest, StopResult } from './driver.ts';
import { stopEach, textOf } from './driver.ts';
import { JOB_ENV } from '../../contract.ts';
import { jobEnvironment, uploadInputs } from './job-inputs.ts';
import { DRIVER_TRAITS, DriverKind, driverKindOf } from './kinds.ts';
import { assertOwnedJob, jobTags, type ExpectedOwner } from './ownership.ts';

type BatchOptions = { jobQueue?: string; jobDefinition?: string; vcpus?: number; memoryMiB?: number; gpus?: number };

/** How long a pack member waits for its leader to submit the array job. */
const PACK_SUBMIT_WAIT_MS = 60_000;

/** Batch job statuses in which `CancelJob` still works (it is a no-op from STARTING on). */
const QUEUED = new Set(['SUBMITTED', 'PENDING', 'RUNNABLE']);

function submitRequest(run: NodeRun, extra: { environment?: { name: string; value: string }[]; arraySize?: number } = {}): SubmitJobCommand {
  const { ctx, node, dispatch } = run;
  const options = node.executor.options as BatchOptions;
  const jobQueue = options.jobQueue ?? ctx.config.jobQueue;
  const jobDefinition = options.jobDefinition ?? ctx.config.jobDefinition;
  if (!jobQueue || !jobDefinition) throw new Error(`Batch node ${node.id} has no job queue or job definition (set them on BatchExecutor or deploy a stack with Batch)`);
  return new SubmitJobCommand({
    jobName: `valence-${dispatch.dispatchId}-${node.id}`.slice(0, 128).replace(/[^A-Za-z0-9_-]/g, '-'),
    jobQueue,
    jobDefinition,
    ...(extra.arraySize ? { arrayProperties: { size: extra.arraySize } } : {}),
    containerOverrides: {
      environment: [...jobEnvironment(run), ...(extra.environment ?? [])],
      resourceRequirements: [
        { type: 'VCPU', value: String(options.vcpus ?? 1) },
        { type: 'MEMORY', value: String(options.memoryMiB ?? 2048) },
        ...(options.gpus ? [{ type: 'GPU' as const, value: String(options.gpus) }] : []),
      ],
    },
    // Batch enforces the node's retries and per-attempt time limit itself (60 s is its minimum).
    ...(node.retries > 0 ? { retryStrategy: { attempts: Math.min(10, node.retries + 1) } } : {}),
    ...(node.timeoutSeconds ? { timeout: { attemptDurationSeconds: Math.max(60, node.timeoutSeconds) } } : {}),
    tags: jobTags(ctx.config.stackName, dispatch.dispatchId, node.id),
  });
}

/** The job id of a handle (an ARN `…:job/<id>`, an array child `…:job/<id>:<index>`, or a bare id). */
function jobIdOf(jobHandle: string): string {
  return jobHandle.slice(jobHandle.lastIndexOf('/') + 1);
}

/** The parent job id of an array child's handle (`…:job/<id>:<index>`), or undefined. */
function arrayParentOf(jobHandle: string): string | undefined {
  const match = /^(.+):(\d+)$/.exec(jobIdOf(jobHandle));
  return match?.[1];
}

/**
 * Records the job handle; when the cancel landed after the submit and before the handle was
 * stored, stops the job here, since the cancel handler could not know about it.
 */
async function recordOrStop(run: NodeRun, jobHandle: string): Promise<NodeOutcome> {
  const { ctx, node, dispatch } = run;
  const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle, jobKind: DriverKind.Batch, taskToken: run.taskToken! }, ctx.signal);
  if (!recorded || recorded.cancelRequested) {
    if (recorded?.cancelForce) await markForced(ctx, recorded);
    await terminate(ctx, jobIdOf(jobHandle), recorded?.cancelReason ?? 'cancelled by valence');
  }
  return { status: NodeStatus.RUNNING };
}

/**
 * A forced cancel: Batch's `TerminateJob` always sends SIGTERM and waits the container's stop
 * timeout (30 s on AWS) before SIGKILL, and has no option to skip it. So the job runner is
 * told instead: on SIGTERM it looks for this marker and, when it is there, exits at once
 * rather than giving the electron its grace period. Written before the terminate call.
 */
async function markForced(ctx: RuntimeContext, node: Pick<NodeItem, 'dispatchId' | 'nodeId' | 'cancelReason'>): Promise<void> {
  await ctx.payloads.putText(payloadKeys.forceStop(node.dispatchId, node.nodeId), node.cancelReason ?? 'forced cancel', ctx.signal);
}

function terminate(ctx: Pick<StopJobContext, 'aws' | 'signal'>, jobId: string, reason: string): Promise<unknown> {
  return ctx.aws.batch.send(new TerminateJobCommand({ jobId, reason }), { abortSignal: ctx.signal });
}

/** One node, one job. */
async function runSingle(run: NodeRun): Promise<NodeOutcome> {
  const { ctx } = run;
  await uploadInputs(run);
  const submitted = await ctx.aws.batch.send(submitRequest(run), { abortSignal: ctx.signal });
  return recordOrStop(run, submitted.jobArn ?? submitted.jobId!);
}

/**
 * Task packing: sibling nodes that call the same Batch electron with the same options and the
 * same parents (a fan-out over a list) run as one Batch array job, child index i for the
 * i-th node of the pack. Returns the pack's node ids, or undefined for a lone node.
 */
export function packOf(graph: RuntimeGraph, node: RuntimeNode): number[] | undefined {
  const isBatch = (n: RuntimeNode): boolean => driverKindOf(n) === DriverKind.Batch;
  if (!isBatch(node)) return undefined;
  const key = (n: RuntimeNode): string =>
    JSON.stringify([n.electron, n.executor, n.retries, n.timeoutSeconds ?? null, n.graceSeconds, graph.parents[n.id] ?? []]);
  const mine = key(node);
  const members = graph.nodes.filter((n) => isBatch(n) && key(n) === mine).map((n) => n.id);
  return members.length >= 2 && members.length <= 10_000 ? members : undefined;
}

/**
 * One node of a pack. The first member to arrive uploads the inputs of every member not yet
 * cancelled and submits the array job; every member records its own child index as its job
 * handle, so a cancel of one node terminates only its child.
 */
async function runPacked(run: NodeRun, pack: number[]): Promise<NodeOutcome> {
  const { ctx, node, dispatch } = run;
  const leader = pack[0]!;
  await run.checkCancelled();
  const jobArn = (await ctx.store.claimPack(dispatch.dispatchId, leader, run.runId, ctx.signal))
    ? await submitPack(run, pack)
    : await awaitPackJob(run, leader);
  const handle = `${jobArn}:${pack.indexOf(node.id)}`;
  const outcome = await recordOrStop(run, handle);
  return (await endedBeforeRecorded(run, handle)) ?? outcome;
}

/**
 * A member's child job runs as soon as the leader submits the array job, while the member's
 * own invocation may not have recorded its handle yet (it polls for the array job's ARN, and
 * on a loaded machine it may not even have started). A child that ends in that window sends
 * its state-change event for a handle no node has, and the completion handler drops it: the
 * node would stay RUNNING until the sweeper's poll (test/cancel/packed-before-submit.test.ts
 * hung past its ceiling so under load). So, once the handle is recorded (later events find
 * the node), the member looks once: a child that already ended ends the node here, through
 * the step handler's ordinary conditional write (a completion that got there first wins).
 */
async function endedBeforeRecorded(run: NodeRun, jobHandle: string): Promise<NodeOutcome | undefined> {
  const { ctx, dispatch, node } = run;
  const job = (await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [jobIdOf(jobHandle)] }), { abortSignal: ctx.signal })).jobs?.[0];
  // Not there yet is not gone: Batch creates an array job's children after the parent is submitted.
  if (job?.status !== 'SUCCEEDED' && job?.status !== 'FAILED') return undefined;
  const now = await ctx.store.getNode(dispatch.dispatchId, node.id, { signal: ctx.signal });
  if (!now || now.runId !== run.runId) return { status: 'LOST' };
  if (job.status === 'SUCCEEDED') return { status: NodeStatus.COMPLETED, output: await ctx.payloads.getNodeOutput(now, ctx.signal) };
  if (now.cancelRequested) return { status: NodeStatus.CANCELLED, cancelledBy: now.cancelAction ?? CancelMethod.TerminateJob };
  return { status: NodeStatus.FAILED, error: await jobError(ctx, dispatch.dispatchId, node.id, job.statusReason ?? 'Batch job failed') };
}

/** The error the job runner wrote for a failed node, or the job's own reason when it wrote none. */
async function jobError(ctx: RuntimeContext, dispatchId: string, nodeId: number, reason: string): Promise<SerializedError> {
  try {
    return await ctx.payloads.getValue<SerializedError>(payloadKeys.nodeError(dispatchId, nodeId), ctx.signal);
  } catch (error) {
    if (!(error instanceof PayloadNotFoundError)) throw error;
    return { name: 'JobFailed', message: reason };
  }
}

/** The leader's part: every live member's inputs, then the array job. Returns its ARN. */
async function submitPack(run: NodeRun, pack: number[]): Promise<string> {
  const { ctx, dispatch } = run;
  const members = await ctx.store.getNodes(dispatch.dispatchId, pack, ctx.signal);
  for (const member of members) {
    // A member cancelled before the submit gets no inputs: its child index exits at once.
    if (member.cancelRequested || member.status === NodeStatus.CANCELLED) continue;
    await ctx.payloads.putValue(payloadKeys.nodeInputs(dispatch.dispatchId, member.nodeId), { args: await run.loadInputsOf(member.nodeId, ctx.signal) }, ctx.signal);
  }
  const submitted = await ctx.aws.batch.send(
    submitRequest(run, { arraySize: pack.length, environment: [{ name: JOB_ENV.packNodes, value: pack.join(',') }] }),
    { abortSignal: ctx.signal },
  );
  const jobArn = submitted.jobArn ?? submitted.jobId!;
  await ctx.store.setPackJob(dispatch.dispatchId, pack[0]!, jobArn, ctx.signal);
  return jobArn;
}

/** The other members' part: wait for the leader's array job. */
async function awaitPackJob(run: NodeRun, leader: number): Promise<string> {
  const { ctx, dispatch } = run;
  const deadline = ctx.now().getTime() + PACK_SUBMIT_WAIT_MS;
  let jobArn: string | undefined;
  while (!(jobArn = await ctx.store.getPackJob(dispatch.dispatchId, leader, ctx.signal))) {
    if (ctx.now().getTime() > deadline) throw new Error(`The array job of pack ${leader} was not submitted within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return jobArn;
}

/** Stops one job: `CancelJob` while queued (plus `TerminateJob` for the race into STARTING), else `TerminateJob`. */
async function stopOne(ctx: RuntimeContext, node: NodeItem & { jobHandle: string }, reason: string): Promise<CancelMethod | 'pending'> {
  const jobId = jobIdOf(node.jobHandle);
  const described = await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [jobId] }), { abortSignal: ctx.signal });
  const job = described.jobs?.[0];
  // A handle from the table is trusted only once the job's own tags say this dispatch started it.
  assertOwnedJob(node.jobHandle, job?.tags, { dispatchId: node.dispatchId, stackName: ctx.config.stackName });
  const status = job?.status;
  if (status === 'SUCCEEDED' || status === 'FAILED') return 'pending';
  if (status !== undefined && QUEUED.has(status)) {
    await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.CancelJob, ctx.signal);
    await ctx.aws.batch.send(new CancelJobCommand({ jobId, reason }), { abortSignal: ctx.signal });
    // CancelJob is a no-op once the job reached STARTING; TerminateJob covers that race.
    await terminate(ctx, jobId, reason);
    return CancelMethod.CancelJob;
  }
  await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.TerminateJob, ctx.signal);
  await terminate(ctx, jobId, reason);
  return CancelMethod.TerminateJob;
}

/**
 * Array jobs every child of which is among `nodes` (so the parent itself can be terminated),
 * and only those whose tags say the nodes' dispatch submitted them; a foreign parent is left
 * to {@link stopOne}, which refuses it per node.
 */
async function wholeArrayJobs(ctx: RuntimeContext, nodes: readonly NodeItem[]): Promise<Set<string>> {
  const byParent = new Map<string, { count: number; dispatchId: string }>();
  for (const node of nodes) {
    const parent = node.jobHandle ? arrayParentOf(node.jobHandle) : undefined;
    if (parent) byParent.set(parent, { count: (byParent.get(parent)?.count ?? 0) + 1, dispatchId: node.dispatchId });
  }
  const whole = new Set<string>();
  for (const [parent, { count, dispatchId }] of byParent) {
    const job = (await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [parent] }), { abortSignal: ctx.signal })).jobs?.[0];
    if (job?.arrayProperties?.size !== count || !ownedBy(parent, job.tags, { dispatchId, stackName: ctx.config.stackName })) continue;
    whole.add(parent);
  }
  return whole;
}

function ownedBy(handle: string, tags: Record<string, string> | undefined, owner: ExpectedOwner): boolean {
  try {
    assertOwnedJob(handle, tags, owner);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops flagged Batch nodes. When every child of an array job is among them, the parent job is
 * terminated once; otherwise each node's own child index is stopped and its siblings run on.
 * A forced request marks each node first (see {@link markForced}): its process exits on
 * SIGTERM without a grace period.
 */
async function stop(ctx: RuntimeContext, nodes: readonly NodeItem[], request: StopRequest): Promise<StopResult[]> {
  const whole = await wholeArrayJobs(ctx, nodes);
  const terminated = new Set<string>();
  return stopEach(nodes, async (node) => {
    if (!node.jobHandle) return 'pending';
    if (request.force) await markForced(ctx, node);
    const parentJob = arrayParentOf(node.jobHandle);
    if (parentJob === undefined || !whole.has(parentJob)) return stopOne(ctx, { ...node, jobHandle: node.jobHandle }, request.reason);
    await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.TerminateJob, ctx.signal);
    if (!terminated.has(parentJob)) {
      terminated.add(parentJob);
      await terminate(ctx, parentJob, request.reason);
    }
    return CancelMethod.TerminateJob;
  });
}

/** Stops the job behind a handle once its tags say the handle's dispatch started it. */
async function stopJob(ctx: StopJobContext, job: { jobHandle: string; dispatchId: string }, mode: StopMode): Promise<boolean> {
  const jobId = jobIdOf(job.jobHandle);
  const described = (await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [jobId] }), { abortSignal: ctx.signal })).jobs?.[0];
  const status = described?.status;
  if (described) assertOwnedJob(job.jobHandle, described.tags, { dispatchId: job.dispatchId });
  if (status === undefined || status === 'SUCCEEDED' || status === 'FAILED') return false;
  if (mode === 'graceful' && QUEUED.has(status)) {
    await ctx.aws.batch.send(new CancelJobCommand({ jobId, reason: 'cancelled by valence' }), { abortSignal: ctx.signal });
  }
  await terminate(ctx, jobId, 'cancelled by valence');
  return true;
}

async function poll(ctx: RuntimeContext, node: NodeItem): Promise<JobEnd | undefined> {
  const jobId = jobIdOf(node.jobHandle!);
  const job = (await ctx.aws.batch.send(new DescribeJobsCommand({ jobs: [jobId] }), { abortSignal: ctx.signal })).jobs?.[0];
  if (!job) return { kind: 'failed', reason: `Batch job ${jobId} no longer exists` };
  if (job.status === 'SUCCEEDED') return { kind: 'succeeded' };
  if (job.status === 'FAILED') return { kind: 'failed', reason: job.statusReason ?? 'Batch job failed' };
  return undefined;
}

function batchReason(detail: Record<string, unknown>): string {
  const container = detail['container'] as { exitCode?: number; reason?: string } | undefined;
  const reason = textOf(detail['statusReason'], 'Batch job failed');
  return container?.exitCode !== undefined ? `${reason} (exit code ${container.exitCode})` : reason;
}

/** The Batch driver. */
export const batchDriver: ExecutorDriver = {
  kind: DriverKind.Batch,
  ...DRIVER_TRAITS[DriverKind.Batch],
  cancelMethod: CancelMethod.TerminateJob,
  async start(run) {
    if (!run.taskToken) throw new Error(`Batch node ${run.node.id} must run in a waitForTaskToken state`);
    const pack = packOf(run.graph, run.node);
    return pack ? runPacked(run, pack) : runSingle(run);
  },
  stop,
  stopJob,
  poll,
  endFromEvent(event) {
    if (event.source !== 'aws.batch' || event['detail-type'] !== 'Batch Job State Change') return undefined;
    const detail = event.detail ?? {};
    const handle = textOf(detail['jobArn']);
    const status = textOf(detail['status']);
    if (status === 'SUCCEEDED') return { handle, end: { kind: 'succeeded' } };
    if (status === 'FAILED') return { handle, end: { kind: 'failed', reason: batchReason(detail) } };
    return undefined;
  },
  // The job runner wrote the output itself.
  storeOutput: () => Promise.resolve(),
};
