/**
 * Braket hybrid job: run the electron (in a thread) to get the job's algorithm, then
 * `CreateJob` and record the job ARN; the "Braket Job State Change" event ends the node, whose
 * output is the job's final status. A cancel is Braket's hybrid-job `CancelJob` (not
 * `CancelQuantumTask`, which does not apply to jobs).
 *
 * @module
 */
import { ENV } from '../../contract.ts';
import { CancelJobCommand, CreateJobCommand, GetJobCommand } from '@aws-sdk/client-braket';
import { NodeStatus } from '../../status.ts';
import { payloadKeys } from '../payloads.ts';
import { CancelMethod } from '../../status.ts';
import { stopEach, textOf, type ExecutorDriver, type NodeOutcome, type NodeRun, type StopJobContext } from './driver.ts';
import { braketEnd, buildInThread, clientTokenOf, isConflict, tagsOf } from './braket.ts';
import { DRIVER_TRAITS, DriverKind } from './kinds.ts';
import { assertOwnedJob, type ExpectedOwner } from './ownership.ts';

async function start(run: NodeRun): Promise<NodeOutcome> {
  const { ctx, node, dispatch } = run;
  const built = await buildInThread(run, 'Braket hybrid-job');
  if ('ended' in built) return built.ended;
  const spec = built.output as { entryPoint?: unknown; sourceS3Uri?: unknown; hyperParameters?: Record<string, string> } | null;
  if (!spec || typeof spec.entryPoint !== 'string') {
    return { status: NodeStatus.FAILED, error: { name: 'TypeError', message: `Hybrid-job electron ${node.name} must return { entryPoint, sourceS3Uri?, hyperParameters? }` } };
  }
  await run.checkCancelled();
  const options = node.executor.options as { deviceArn: string; roleArn?: string; instanceType?: string };
  const prefix = `s3://${ctx.config.bucket}/${payloadKeys.braketOutputPrefix(dispatch.dispatchId, node.id)}`;
  const roleArn = options.roleArn ?? process.env[ENV.braketJobRoleArn] ?? `arn:aws:iam::000000000000:role/valence-braket-job`;
  const created = await ctx.aws.braket.send(
    new CreateJobCommand({
      clientToken: clientTokenOf(run),
      jobName: `v-${dispatch.dispatchId.slice(0, 36)}-${node.id}`.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 50).replace(/-+$/, ''),
      roleArn,
      algorithmSpecification: { scriptModeConfig: { entryPoint: spec.entryPoint, s3Uri: typeof spec.sourceS3Uri === 'string' ? spec.sourceS3Uri : `${prefix}/source.tar.gz` } },
      deviceConfig: { device: options.deviceArn },
      instanceConfig: { instanceType: (options.instanceType ?? 'ml.m5.large') as never, volumeSizeInGb: 30 },
      outputDataConfig: { s3Path: `${prefix}/job` },
      ...(spec.hyperParameters ? { hyperParameters: spec.hyperParameters } : {}),
      tags: tagsOf(run),
    }),
    { abortSignal: ctx.signal },
  );
  const jobArn = created.jobArn!;
  const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle: jobArn, jobKind: DriverKind.BraketJob, taskToken: run.taskToken! }, ctx.signal);
  if (!recorded || recorded.cancelRequested) await stopJob(ctx, { jobHandle: jobArn });
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
    const described = await ctx.aws.braket.send(new GetJobCommand({ jobArn: job.jobHandle }), { abortSignal: ctx.signal });
    assertOwnedJob(job.jobHandle, described.tags, expected);
  }
  try {
    await ctx.aws.braket.send(new CancelJobCommand({ jobArn: job.jobHandle }), { abortSignal: ctx.signal });
    return true;
  } catch (error) {
    if (isConflict(error)) return false;
    throw error;
  }
}

/** The Braket hybrid-job driver. */
export const braketJobDriver: ExecutorDriver = {
  kind: DriverKind.BraketJob,
  ...DRIVER_TRAITS[DriverKind.BraketJob],
  cancelMethod: CancelMethod.CancelHybridJob,
  start,
  stop: (ctx, nodes) =>
    stopEach(nodes, async (node) => {
      if (!node.jobHandle) return 'pending';
      await ctx.store.setCancelAction(node.dispatchId, node.nodeId, CancelMethod.CancelHybridJob, ctx.signal);
      await stopJob(ctx, { jobHandle: node.jobHandle }, { dispatchId: node.dispatchId, stackName: ctx.config.stackName });
      return CancelMethod.CancelHybridJob;
    }),
  stopJob: (ctx, job) => stopJob(ctx, job),
  async poll(ctx, node) {
    const job = await ctx.aws.braket.send(new GetJobCommand({ jobArn: node.jobHandle! }), { abortSignal: ctx.signal });
    return braketEnd(job.status ?? '', { failureReason: job.failureReason });
  },
  endFromEvent(event) {
    if (event.source !== 'aws.braket' || event['detail-type'] !== 'Braket Job State Change') return undefined;
    const detail = event.detail ?? {};
    const end = braketEnd(textOf(detail['status']), detail);
    return end ? { handle: textOf(detail['jobArn']), end } : undefined;
  },
  async storeOutput(ctx, node) {
    await ctx.payloads.putValue(payloadKeys.nodeOutput(node.dispatchId, node.nodeId), { jobArn: node.jobHandle, status: 'COMPLETED' }, ctx.signal);
  },
};
