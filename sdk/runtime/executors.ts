/**
 * How each executor kind runs a claimed node inside the step handler.
 *
 * Every runner checks the node's cancel flag before each of its steps — before serializing,
 * before uploading, before provisioning, before submitting — and a flag seen there ends the
 * node `CANCELLED` (never `FAILED`) with nothing further done. Long-running kinds record the
 * job handle before they return, so a cancel arriving at any later moment can find the work.
 */
import { spawn } from 'node:child_process';
import { SubmitJobCommand, TerminateJobCommand } from '@aws-sdk/client-batch';
import { CancelJobCommand as CancelHybridJobCommand, CancelQuantumTaskCommand, CreateJobCommand, CreateQuantumTaskCommand } from '@aws-sdk/client-braket';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import { randomUUID } from 'node:crypto';
import { NodeStatus } from '../status.ts';
import { TaskCancelledError, isCancellation } from '../errors.ts';
import { Executor } from '../model/executors.ts';
import { startElectronThread, type ThreadOutcome } from './electron-thread.ts';
import { payloadKeys } from './payloads.ts';
import { serialize, serializeError } from './serialization.ts';
import { CancelMethod } from '../status.ts';
import type { DispatchItem, NodeItem } from './store.ts';
import type { InvocationInfo, NodeOutcome } from './step.ts';
import type { RuntimeContext } from './context.ts';
import { startWatchdog } from './watchdog.ts';
import { createDispatchRecords } from './dispatch-records.ts';
import { cancelDispatch } from './cancel.ts';
import type { GraphCatalog, RuntimeGraph, RuntimeNode } from './workflows.ts';

/** Everything a runner needs about the node it runs. */
export interface NodeRun {
  readonly ctx: RuntimeContext;
  readonly dispatch: DispatchItem;
  readonly graph: RuntimeGraph;
  readonly node: RuntimeNode;
  /** The node item as claimed (status RUNNING, held by {@link runId}). */
  readonly item: NodeItem;
  readonly runId: string;
  /** The waiting state's token, for long-running kinds. */
  readonly taskToken: string | undefined;
  readonly info: InvocationInfo;
  /** Reads the node's inputs (parents' outputs, parameters, constants). */
  loadInputs(signal?: AbortSignal): Promise<unknown[]>;
  /** Reads another node's inputs (a packed job's submitter uploads its siblings' too). */
  loadInputsOf(nodeId: number, signal?: AbortSignal): Promise<unknown[]>;
  /** Throws TaskCancelledError when the node's cancel flag is set (or the claim was lost). */
  checkCancelled(): Promise<void>;
}

/** Runs a claimed node to an outcome. */
export interface NodeRunner {
  run(run: NodeRun): Promise<NodeOutcome>;
}

/** Leaves this much of the Lambda's time for writing the outcome. */
const REMAINING_TIME_BUFFER_MS = 3_000;

/** Picks the runner for a node's executor kind. Constructs no executor. */
export function executorRunnerFor(node: RuntimeNode, catalog: GraphCatalog): NodeRunner {
  if (node.kind === 'sublattice') return sublatticeRunner(catalog);
  switch (node.executor.kind) {
    case 'lambda':
      return inlineRunner(catalog);
    case 'batch':
      return batchRunner;
    case 'braket':
      return node.executor.name === 'braket-hybrid' ? hybridJobRunner(catalog) : braketRunner(catalog);
    case 'local':
      return localRunner(catalog);
    default:
      return customRunner(catalog);
  }
}

/** Runs the electron in a worker thread, with retries, timeout and the cancel watchdog. */
export async function runInThread(run: NodeRun, catalog: GraphCatalog): Promise<NodeOutcome> {
  const { ctx, node, dispatch } = run;
  const inputs = await run.loadInputs();
  let attempt = run.item.attempts > 0 ? run.item.attempts : 1;
  for (;;) {
    const outcome = await runAttempt(run, catalog, inputs, attempt);
    if (outcome.outcome === 'completed') return { status: NodeStatus.COMPLETED, output: catalog.deserializeOutput(outcome.output) };
    if (outcome.outcome === 'cancelled') {
      return { status: NodeStatus.CANCELLED, cancelledBy: outcome.method === 'signal' ? CancelMethod.Signal : CancelMethod.Terminated };
    }
    if (outcome.outcome === 'lost') return { status: 'LOST' };
    const error =
      outcome.outcome === 'timed-out'
        ? { name: 'TimeoutError', message: `Node ${node.id} (${node.name}) exceeded its timeout of ${node.timeoutSeconds}s`, code: 'NODE_TIMEOUT' }
        : outcome.error;
    if (error.name === 'TaskCancelledError') return { status: NodeStatus.CANCELLED, cancelledBy: CancelMethod.BetweenSteps };
    if (attempt > node.retries) return { status: NodeStatus.FAILED, error };
    attempt += 1;
    const kept = await ctx.store.recordAttempt(dispatch.dispatchId, node.id, run.runId, attempt, error);
    if (!kept) return { status: 'LOST' };
    if (kept.cancelRequested) return { status: NodeStatus.CANCELLED, cancelledBy: CancelMethod.BetweenSteps };
  }
}

type AttemptOutcome = ThreadOutcome | { readonly outcome: 'lost' };

async function runAttempt(run: NodeRun, catalog: GraphCatalog, inputs: unknown[], attempt: number): Promise<AttemptOutcome> {
  const { ctx, node, dispatch } = run;
  const thread = startElectronThread({
    ...catalog.worker,
    workflows: catalog.workflowsUrl,
    lattice: run.graph.lattice,
    electron: node.electron,
    inputs: serialize({ args: inputs }),
    ...(run.graph.buildArgs === undefined ? {} : { buildArgs: run.graph.buildArgs }),
    context: { dispatchId: dispatch.dispatchId, nodeId: node.id, attempt },
  });
  let lost = false;
  const graceMs = node.graceSeconds * 1000;
  const watchdog = startWatchdog(ctx.store, ctx.config, { dispatchId: dispatch.dispatchId, nodeId: node.id, runId: run.runId }, (alarm) => {
    if (alarm.kind === 'lost-claim') {
      lost = true;
      thread.stop('cancelled', 'claim lost', 0);
    } else {
      thread.stop('cancelled', alarm.reason, graceMs);
    }
  });
  // Stop at the node's timeout, or before Lambda would kill this invocation mid-write.
  const remaining = run.info.getRemainingTimeInMillis() - REMAINING_TIME_BUFFER_MS - graceMs;
  const timeoutMs = Math.min(node.timeoutSeconds ? node.timeoutSeconds * 1000 : Infinity, Math.max(1_000, remaining));
  const timer = Number.isFinite(timeoutMs)
    ? setTimeout(() => thread.stop('timed-out', `timed out after ${timeoutMs} ms`, Math.min(graceMs, 1_000)), timeoutMs)
    : undefined;
  try {
    const outcome = await thread.done;
    return lost ? { outcome: 'lost' } : outcome;
  } finally {
    watchdog.stop();
    if (timer) clearTimeout(timer);
  }
}

function inlineRunner(catalog: GraphCatalog): NodeRunner {
  return { run: (run) => runInThread(run, catalog) };
}

/**
 * Batch: upload the inputs, submit a job whose command is valence's job runner, record the
 * job ARN, return. Checks the flag before the upload and before the submit; after recording
 * the handle it looks once more, so a cancel that landed during the submit still stops the job.
 */
const batchRunner: NodeRunner = {
  async run(run) {
    const { node } = run;
    if (!run.taskToken) throw new Error(`Batch node ${node.id} must run in a waitForTaskToken state`);
    const pack = packOf(run.graph, node);
    return pack ? runPacked(run, pack) : runSingle(run);
  },
};

type BatchOptions = { jobQueue?: string; jobDefinition?: string; vcpus?: number; memoryMiB?: number; gpus?: number };

function submitRequest(run: NodeRun, extra: { environment?: { name: string; value: string }[]; arraySize?: number } = {}) {
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
    tags: { 'valence:dispatch': dispatch.dispatchId, 'valence:node': String(node.id) },
  });
}

/**
 * Uploads a node's inputs for a job process to read, checking the cancel flag before reading
 * (serializing), before uploading and after: a cancel landing in between stops it there.
 */
async function uploadInputs(run: NodeRun): Promise<void> {
  await run.checkCancelled();
  const inputs = await run.loadInputs();
  await run.checkCancelled();
  await run.ctx.payloads.putValue(payloadKeys.nodeInputs(run.dispatch.dispatchId, run.node.id), { args: inputs });
  await run.checkCancelled();
}

/** One node, one job. */
async function runSingle(run: NodeRun): Promise<NodeOutcome> {
  const { ctx, node, dispatch } = run;
  await uploadInputs(run);
  const submitted = await ctx.aws.batch.send(submitRequest(run));
  const jobArn = submitted.jobArn ?? submitted.jobId!;
  const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle: jobArn, jobKind: 'batch', taskToken: run.taskToken! });
  if (!recorded || recorded.cancelRequested) {
    // The cancel landed after the submit and before the handle was stored: stop the job
    // here, since the cancel handler could not know about it.
    await ctx.aws.batch.send(new TerminateJobCommand({ jobId: submitted.jobId!, reason: recorded?.cancelReason ?? 'cancelled by valence' }));
  }
  return { status: NodeStatus.RUNNING };
}

/**
 * Task packing: sibling nodes that call the same Batch electron with the same options and the
 * same parents (a fan-out over a list) run as one Batch array job, child index i for the
 * i-th node of the pack. Returns the pack's node ids, or undefined for a lone node.
 */
export function packOf(graph: RuntimeGraph, node: RuntimeNode): number[] | undefined {
  if (node.kind !== 'electron' || node.executor.kind !== 'batch') return undefined;
  const key = (n: RuntimeNode): string =>
    JSON.stringify([n.electron, n.executor, n.retries, n.timeoutSeconds ?? null, n.graceSeconds, graph.parents[n.id] ?? []]);
  const mine = key(node);
  const members = graph.nodes.filter((n) => n.kind === 'electron' && n.executor.kind === 'batch' && key(n) === mine).map((n) => n.id);
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
  const index = pack.indexOf(node.id);
  await run.checkCancelled();
  let jobArn: string | undefined;
  if (await ctx.store.claimPack(dispatch.dispatchId, leader, run.runId)) {
    const members = await ctx.store.getNodes(dispatch.dispatchId, pack);
    for (const member of members) {
      // A member cancelled before the submit gets no inputs: its child index exits at once.
      if (member.cancelRequested || member.status === NodeStatus.CANCELLED) continue;
      await ctx.payloads.putValue(payloadKeys.nodeInputs(dispatch.dispatchId, member.nodeId), { args: await run.loadInputsOf(member.nodeId) });
    }
    const submitted = await ctx.aws.batch.send(
      submitRequest(run, { arraySize: pack.length, environment: [{ name: 'VALENCE_PACK_NODES', value: pack.join(',') }] }),
    );
    jobArn = submitted.jobArn ?? submitted.jobId!;
    await ctx.store.setPackJob(dispatch.dispatchId, leader, jobArn);
  } else {
    const deadline = Date.now() + 60_000;
    while (!(jobArn = await ctx.store.getPackJob(dispatch.dispatchId, leader))) {
      if (Date.now() > deadline) throw new Error(`The array job of pack ${leader} was not submitted within 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const handle = `${jobArn}:${index}`;
  const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle: handle, jobKind: 'batch', taskToken: run.taskToken! });
  if (!recorded || recorded.cancelRequested) {
    await ctx.aws.batch.send(new TerminateJobCommand({ jobId: handle.slice(handle.lastIndexOf('/') + 1), reason: recorded?.cancelReason ?? 'cancelled by valence' }));
  }
  return { status: NodeStatus.RUNNING };
}

function jobEnvironment(run: NodeRun): { name: string; value: string }[] {
  return [
    { name: 'VALENCE_DISPATCH_ID', value: run.dispatch.dispatchId },
    { name: 'VALENCE_NODE_ID', value: String(run.node.id) },
    { name: 'VALENCE_LATTICE', value: run.graph.lattice },
    { name: 'VALENCE_ELECTRON', value: run.node.electron },
    { name: 'VALENCE_ATTEMPT', value: String(run.item.attempts || 1) },
    { name: 'VALENCE_GRACE_SECONDS', value: String(run.node.graceSeconds) },
    { name: 'VALENCE_BUCKET', value: run.ctx.config.bucket },
    { name: 'VALENCE_TABLE', value: run.ctx.config.table },
    ...(run.graph.buildArgs === undefined ? [] : [{ name: 'VALENCE_CHILD_DISPATCH', value: '1' }]),
  ];
}

/**
 * Braket: run the electron (in a thread, like a Lambda node) to get its OpenQASM 3 program,
 * then create the quantum task and record its ARN.
 */
function braketRunner(catalog: GraphCatalog): NodeRunner {
  return {
    async run(run) {
      const { ctx, node, dispatch } = run;
      if (!run.taskToken) throw new Error(`Braket node ${node.id} must run in a waitForTaskToken state`);
      const built = await runInThread(run, catalog);
      if (built.status !== NodeStatus.COMPLETED) return built;
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
          clientToken: `${dispatch.dispatchId}-${node.id}-${run.runId}`.slice(0, 64),
          deviceArn: options.deviceArn,
          shots: options.shots,
          outputS3Bucket: ctx.config.bucket,
          outputS3KeyPrefix: payloadKeys.braketOutputPrefix(dispatch.dispatchId, node.id),
          action: JSON.stringify({ braketSchemaHeader: { name: 'braket.ir.openqasm.program', version: '1' }, source: program }),
          tags: { 'valence:dispatch': dispatch.dispatchId, 'valence:node': String(node.id) },
        }),
      );
      const taskArn = created.quantumTaskArn!;
      const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle: taskArn, jobKind: 'braket-task', taskToken: run.taskToken });
      if (!recorded || recorded.cancelRequested) {
        await ctx.aws.braket.send(new CancelQuantumTaskCommand({ quantumTaskArn: taskArn, clientToken: randomUUID() }));
      }
      return { status: NodeStatus.RUNNING };
    },
  };
}

/**
 * Braket hybrid job: run the electron (in a thread) to get the job's algorithm, then
 * `CreateJob` and record the job ARN; the "Braket Job State Change" event ends the node.
 */
function hybridJobRunner(catalog: GraphCatalog): NodeRunner {
  return {
    async run(run) {
      const { ctx, node, dispatch } = run;
      if (!run.taskToken) throw new Error(`Braket hybrid-job node ${node.id} must run in a waitForTaskToken state`);
      const built = await runInThread(run, catalog);
      if (built.status !== NodeStatus.COMPLETED) return built;
      const spec = built.output as { entryPoint?: unknown; sourceS3Uri?: unknown; hyperParameters?: Record<string, string> } | null;
      if (!spec || typeof spec.entryPoint !== 'string') {
        return { status: NodeStatus.FAILED, error: { name: 'TypeError', message: `Hybrid-job electron ${node.name} must return { entryPoint, sourceS3Uri?, hyperParameters? }` } };
      }
      await run.checkCancelled();
      const options = node.executor.options as { deviceArn: string; roleArn?: string; instanceType?: string };
      const prefix = `s3://${ctx.config.bucket}/${payloadKeys.braketOutputPrefix(dispatch.dispatchId, node.id)}`;
      const roleArn = options.roleArn ?? process.env.VALENCE_BRAKET_JOB_ROLE_ARN ?? `arn:aws:iam::000000000000:role/valence-braket-job`;
      const created = await ctx.aws.braket.send(
        new CreateJobCommand({
          clientToken: `${dispatch.dispatchId}-${node.id}-${run.runId}`.slice(0, 64),
          jobName: `v-${dispatch.dispatchId.slice(0, 36)}-${node.id}`.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 50).replace(/-+$/, ''),
          roleArn,
          algorithmSpecification: { scriptModeConfig: { entryPoint: spec.entryPoint, s3Uri: typeof spec.sourceS3Uri === 'string' ? spec.sourceS3Uri : `${prefix}/source.tar.gz` } },
          deviceConfig: { device: options.deviceArn },
          instanceConfig: { instanceType: (options.instanceType ?? 'ml.m5.large') as never, volumeSizeInGb: 30 },
          outputDataConfig: { s3Path: `${prefix}/job` },
          ...(spec.hyperParameters ? { hyperParameters: spec.hyperParameters } : {}),
          tags: { 'valence:dispatch': dispatch.dispatchId, 'valence:node': String(node.id) },
        }),
      );
      const jobArn = created.jobArn!;
      const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle: jobArn, jobKind: 'braket-job', taskToken: run.taskToken });
      if (!recorded || recorded.cancelRequested) await ctx.aws.braket.send(new CancelHybridJobCommand({ jobArn }));
      return { status: NodeStatus.RUNNING };
    },
  };
}

/**
 * Local: the job runner in a child process group the handler owns (handle `pid:<pid>`).
 * A cancel sends SIGTERM to the group, then SIGKILL after the grace period.
 */
function localRunner(catalog: GraphCatalog): NodeRunner {
  return {
    async run(run) {
      const { ctx, node, dispatch } = run;
      await uploadInputs(run);
      const env = Object.fromEntries(jobEnvironment(run).map(({ name, value }) => [name, value]));
      const child = spawn(process.execPath, [...catalog.jobRunner.execArgv, catalog.jobRunner.path], {
        detached: true,
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, ...env, VALENCE_WORKFLOWS: catalog.workflowsUrl },
      });
      const pid = child.pid!;
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ? null : code)));
      await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle: `pid:${pid}`, jobKind: 'pid', ...(run.taskToken ? { taskToken: run.taskToken } : {}) });
      let stoppedBy: CancelMethod | undefined;
      const killGroup = (signal: NodeJS.Signals): void => {
        try {
          process.kill(-pid, signal);
        } catch {
          // already gone
        }
      };
      let killTimer: NodeJS.Timeout | undefined;
      const watchdog = startWatchdog(ctx.store, ctx.config, { dispatchId: dispatch.dispatchId, nodeId: node.id, runId: run.runId }, () => {
        stoppedBy = CancelMethod.Signal;
        killGroup('SIGTERM');
        killTimer = setTimeout(() => {
          stoppedBy = CancelMethod.Terminated;
          killGroup('SIGKILL');
        }, node.graceSeconds * 1000);
      });
      const code = await exited;
      watchdog.stop();
      if (killTimer) clearTimeout(killTimer);
      killGroup('SIGKILL');
      if (stoppedBy) return { status: NodeStatus.CANCELLED, cancelledBy: stoppedBy };
      if (code === 0) return { status: NodeStatus.COMPLETED, output: await ctx.payloads.getValue(payloadKeys.nodeOutput(dispatch.dispatchId, node.id)) };
      return { status: NodeStatus.FAILED, error: { name: 'ProcessExited', message: `Local job for node ${node.id} exited with code ${code}` } };
    },
  };
}

/**
 * A user's executor subclass: its `run(task)` does the work; it may record a job handle and
 * must call `task.checkCancelled()` before each of its steps.
 */
function customRunner(catalog: GraphCatalog): NodeRunner {
  return {
    async run(run) {
      const { ctx, node, dispatch } = run;
      const taskMetadata = { dispatchId: dispatch.dispatchId, nodeId: node.id };
      await run.checkCancelled();
      // Constructed only now: a node cancelled before it started never builds its executor.
      const executor = Executor.fromJSON(node.executor) as Executor & { run?: (task: CustomTask) => Promise<unknown> };
      if (typeof executor.run !== 'function') {
        throw new TypeError(`Executor "${node.executor.name}" has no run(task) method; custom executors must implement it`);
      }
      const inputs = await run.loadInputs();
      const controller = new AbortController();
      // The step handler stops the job itself when it sees the flag, in case the cancel
      // handler could not (executor.cancel must be safe to call twice).
      const stopJob = async (): Promise<void> => {
        const current = await ctx.store.getNode(dispatch.dispatchId, node.id);
        if (current?.jobHandle) await executor.cancel(taskMetadata, current.jobHandle).catch(() => false);
      };
      const watchdog = startWatchdog(ctx.store, ctx.config, { ...taskMetadata, runId: run.runId }, (alarm) => {
        controller.abort(new TaskCancelledError(alarm.kind === 'cancel' ? alarm.reason : 'claim lost', taskMetadata));
        if (alarm.kind === 'cancel') void stopJob();
      });
      let output: unknown;
      let failure: unknown;
      let failed = false;
      try {
        const fn = await catalog.electron(run.graph.lattice, node.electron, run.graph.buildArgs);
        output = await executor.run({
          ...taskMetadata,
          electron: fn,
          args: inputs,
          signal: controller.signal,
          checkCancelled: run.checkCancelled,
          recordJobHandle: async (jobHandle: string) => {
            const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, { jobHandle, jobKind: 'custom' });
            if (!recorded || recorded.cancelRequested) {
              await executor.cancel(taskMetadata, jobHandle);
              throw new TaskCancelledError(`Node ${node.id} was cancelled`, taskMetadata);
            }
          },
        });
      } catch (error) {
        failed = true;
        failure = error;
      } finally {
        watchdog.stop();
      }
      // A job that ended because it was cancelled is a cancellation, however it ended.
      const current = await ctx.store.getNode(dispatch.dispatchId, node.id);
      if (controller.signal.aborted || current?.cancelRequested || (failed && isCancellation(failure))) {
        return {
          status: NodeStatus.CANCELLED,
          cancelledBy: current?.cancelAction ?? (current?.jobHandle ? CancelMethod.ExecutorCancel : CancelMethod.BetweenSteps),
        };
      }
      return failed ? { status: NodeStatus.FAILED, error: serializeError(failure) } : { status: NodeStatus.COMPLETED, output };
    },
  };
}

/** What a custom executor's `run(task)` receives. */
export interface CustomTask {
  readonly dispatchId: string;
  readonly nodeId: number;
  /** The electron's function. */
  readonly electron: (...args: unknown[]) => unknown;
  readonly args: readonly unknown[];
  /** Aborts when the node's cancel is requested. */
  readonly signal: AbortSignal;
  /** Throws TaskCancelledError when the node's cancel flag is set: call it before each step. */
  checkCancelled(): Promise<void>;
  /** Stores the handle `cancel(taskMetadata, jobHandle)` will receive; throws if already cancelled. */
  recordJobHandle(jobHandle: string): Promise<void>;
}

/**
 * Sublattice: build the child graph from the real inputs, record the child dispatch, start it
 * on the graph-runner state machine, and return; the child's `finalize` ends this node.
 */
function sublatticeRunner(catalog: GraphCatalog): NodeRunner {
  return {
    async run(run) {
      const { ctx, node, dispatch } = run;
      if (!run.taskToken) throw new Error(`Sublattice node ${node.id} must run in a waitForTaskToken state`);
      await run.checkCancelled();
      const inputs = await run.loadInputs();
      const lattice = await catalog.lattice(node.sublattice!);
      const graph = lattice.build(...inputs);
      const childId = randomUUID();
      await run.checkCancelled();
      await createDispatchRecords(ctx, {
        dispatchId: childId,
        graph,
        serializedArgs: serialize(inputs),
        stateMachineArn: ctx.config.graphRunnerArn,
        // The graph runner waits on every node's parents in an `await` state.
        awaitingNodes: new Set(graph.nodes.map((n) => n.id)),
        parent: { dispatchId: dispatch.dispatchId, nodeId: node.id },
      });
      // Recorded before the start: a cancel arriving from now on finds the child dispatch.
      const recorded = await ctx.store.recordJobHandle(dispatch.dispatchId, node.id, {
        jobHandle: `${ctx.config.graphRunnerArn.replace(':stateMachine:', ':execution:')}:${childId}`,
        jobKind: 'child-dispatch',
        taskToken: run.taskToken,
        childDispatchId: childId,
      });
      if (!recorded || recorded.cancelRequested) {
        await cancelDispatch(ctx, childId, { reason: recorded?.cancelReason ?? 'parent node cancelled', requestedBy: 'valence' });
        return { status: NodeStatus.RUNNING };
      }
      const started = await ctx.aws.sfn.send(
        new StartExecutionCommand({ stateMachineArn: ctx.config.graphRunnerArn, name: childId, input: JSON.stringify({ dispatchId: childId }) }),
      );
      await ctx.store.setExecutionArn(childId, started.executionArn!);
      return { status: NodeStatus.RUNNING };
    },
  };
}
