/**
 * Local AWS Batch: the REST-JSON API `@aws-sdk/client-batch` speaks, with jobs that really run.
 *
 * Each job attempt is a local process group (the job definition's command, with the
 * container's environment plus the local cloud's endpoint and credentials, as a job role would
 * give). Jobs move SUBMITTED → PENDING → RUNNABLE → STARTING → RUNNING → SUCCEEDED/FAILED with
 * configurable delays, and every transition emits a "Batch Job State Change" event.
 *
 * Cancellation behaves as on AWS, because valence's cancel path depends on it:
 * - `CancelJob` fails jobs that have not reached STARTING (they never start) and is a silent
 *   no-op on STARTING/RUNNING jobs;
 * - `TerminateJob` also stops running jobs: SIGTERM to the whole process group, a grace
 *   period, then SIGKILL; the job ends FAILED with the given reason.
 *
 * Local liberties: `timeout.attemptDurationSeconds` may be below AWS's 60 s minimum; the grace
 * period is `terminateGraceMs` (AWS: 30 s), overridable per job with the container
 * environment variable `VALENCE_TERMINATE_GRACE_MS`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventSink, LocalService, RequestContext, ServiceHooks } from '../core/service.ts';
import { ProcessGroup, type ProcessExit, waitForExits } from '../core/process-group.ts';
import { workloadEnvironment } from '../core/credentials.ts';
import {
  decodeToken,
  encodeToken,
  optString,
  optStringMap,
  reqString,
  serveJsonOperation,
} from '../wire/json.ts';
import { AwsServiceError } from '../wire/errors.ts';

export { ProcessGroup, ProcessStartError, isProcessAlive } from '../core/process-group.ts';
export type { ProcessExit } from '../core/process-group.ts';

/** Batch job statuses, in lifecycle order. */
export const BatchJobStatus = {
  SUBMITTED: 'SUBMITTED',
  PENDING: 'PENDING',
  RUNNABLE: 'RUNNABLE',
  STARTING: 'STARTING',
  RUNNING: 'RUNNING',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
} as const;
/** One Batch job status. */
export type BatchJobStatus = (typeof BatchJobStatus)[keyof typeof BatchJobStatus];

const STATUS_ORDER: readonly BatchJobStatus[] = Object.values(BatchJobStatus);
const TERMINAL: ReadonlySet<BatchJobStatus> = new Set([BatchJobStatus.SUCCEEDED, BatchJobStatus.FAILED]);

/** The statusReason AWS gives when the job's essential container exits on its own. */
export const ESSENTIAL_CONTAINER_EXITED = 'Essential container in task exited';
/** The statusReason of an attempt stopped by `timeout.attemptDurationSeconds`. */
export const ATTEMPT_TIMEOUT_REASON = 'Job attempt duration exceeded timeout';

/** Time spent in each non-terminal status before the next one. */
export interface BatchDelays {
  /** @default 50 */
  readonly submittedMs?: number;
  /** @default 50 */
  readonly pendingMs?: number;
  /** @default 50 */
  readonly runnableMs?: number;
  /** @default 50 */
  readonly startingMs?: number;
}

/** Options of {@link createBatchService}. */
export interface BatchServiceOptions {
  readonly hooks: ServiceHooks;
  readonly events: EventSink;
  readonly region: string;
  readonly accountId: string;
  /** Extra environment for every job (endpoint and credentials of the local cloud). */
  readonly environment: () => Record<string, string>;
  readonly delays?: BatchDelays;
  /** Between SIGTERM and SIGKILL when a running job is terminated. @default 2000 */
  readonly terminateGraceMs?: number;
  /** Most job attempts in STARTING/RUNNING at once; further jobs wait in RUNNABLE. @default 32 */
  readonly maxRunningJobs?: number;
  /** Bytes of stdout and of stderr kept per job. @default 65536 */
  readonly outputTailBytes?: number;
}

/** In-process view of one job, for tests and the local cloud's own tooling. */
export interface BatchJobView {
  readonly jobId: string;
  readonly jobArn: string;
  readonly jobName: string;
  readonly status: BatchJobStatus;
  readonly statusReason: string | undefined;
  /** Exit code of the last attempt's container, once it ended. */
  readonly exitCode: number | undefined;
  /** Pid of the current (or last) attempt's process group leader; also its process group id. */
  readonly pid: number | undefined;
  readonly pgid: number | undefined;
  /** True while the current attempt's process group leader is running. */
  readonly processRunning: boolean;
  /** How many processes were ever spawned for this job (0 proves it never started). */
  readonly spawnCount: number;
  /** Tail of the current (or last) attempt's stdout and stderr. */
  readonly stdout: string;
  readonly stderr: string;
  readonly arrayIndex: number | undefined;
  readonly parentJobId: string | undefined;
  /** Child job ids of an array parent. */
  readonly childJobIds: readonly string[];
}

/** The local Batch service plus an in-process view of its jobs. */
export interface LocalBatchService extends LocalService {
  /** Every job, parents and array children alike, in submission order. */
  jobs(): BatchJobView[];
  /** One job by id, or undefined. */
  job(jobId: string): BatchJobView | undefined;
}

type Json = Record<string, unknown>;

interface ComputeEnvironmentRecord {
  readonly name: string;
  readonly arn: string;
  readonly detail: Json;
}

interface JobQueueRecord {
  readonly name: string;
  readonly arn: string;
  readonly detail: Json;
  readonly computeEnvironmentNames: readonly string[];
}

interface JobDefinitionRecord {
  readonly name: string;
  readonly revision: number;
  readonly arn: string;
  status: 'ACTIVE' | 'INACTIVE';
  readonly detail: Json;
}

interface EnvVar {
  readonly name: string;
  readonly value: string;
}

interface JobRecord {
  readonly jobId: string;
  readonly jobArn: string;
  readonly jobName: string;
  readonly queue: JobQueueRecord;
  readonly definition: JobDefinitionRecord;
  readonly parameters: Record<string, string>;
  readonly command: readonly string[];
  readonly environment: readonly EnvVar[];
  /** containerProperties of the definition with resource overrides applied (no command/env). */
  readonly containerBase: Json;
  readonly retryAttempts: number;
  readonly timeoutSeconds: number | undefined;
  readonly dependsOn: readonly { jobId: string; type?: string }[];
  readonly tags: Record<string, string> | undefined;
  readonly propagateTags: boolean | undefined;
  readonly createdAt: number;
  status: BatchJobStatus;
  statusReason: string | undefined;
  startedAt: number | undefined;
  stoppedAt: number | undefined;
  /** Attempts started so far. */
  attempt: number;
  readonly attempts: Json[];
  exitCode: number | undefined;
  containerReason: string | undefined;
  process: ProcessGroup | undefined;
  lastProcess: ProcessGroup | undefined;
  spawnCount: number;
  /** True between the decision to spawn and the spawn's outcome. */
  spawning: boolean;
  holdsSlot: boolean;
  timer: NodeJS.Timeout | undefined;
  attemptTimer: NodeJS.Timeout | undefined;
  /** Set when TerminateJob or the attempt timeout is stopping the running attempt. */
  stopping: { reason: string } | undefined;
  waitingForDependencies: boolean;
  readonly arraySize: number | undefined;
  readonly children: JobRecord[];
  readonly arrayIndex: number | undefined;
  readonly parent: JobRecord | undefined;
  /** For an array parent: the reason it was cancelled or terminated; it ends FAILED with it. */
  parentStopReason: string | undefined;
  statusSummaryUpdatedAt: number | undefined;
}

const CLIENT = 'ClientException';

function clientError(message: string): AwsServiceError {
  return new AwsServiceError(CLIENT, 400, message);
}

const ROUTES: Readonly<Record<string, string>> = {
  '/v1/createcomputeenvironment': 'CreateComputeEnvironment',
  '/v1/describecomputeenvironments': 'DescribeComputeEnvironments',
  '/v1/createjobqueue': 'CreateJobQueue',
  '/v1/describejobqueues': 'DescribeJobQueues',
  '/v1/registerjobdefinition': 'RegisterJobDefinition',
  '/v1/describejobdefinitions': 'DescribeJobDefinitions',
  '/v1/deregisterjobdefinition': 'DeregisterJobDefinition',
  '/v1/submitjob': 'SubmitJob',
  '/v1/describejobs': 'DescribeJobs',
  '/v1/listjobs': 'ListJobs',
  '/v1/canceljob': 'CancelJob',
  '/v1/terminatejob': 'TerminateJob',
};

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function asArray(value: unknown, key: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw clientError(`${key} must be a list`);
  return value;
}

function asObject(value: unknown, key: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw clientError(`${key} must be an object`);
  return value as Json;
}

function stringList(value: unknown, key: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = asArray(value, key);
  for (const item of list) if (typeof item !== 'string') throw clientError(`${key} must be a list of strings`);
  return list as string[];
}

function envList(value: unknown, key: string): EnvVar[] {
  return asArray(value, key).map((item, i) => {
    const entry = asObject(item, `${key}[${i}]`) ?? {};
    if (typeof entry.name !== 'string') throw clientError(`${key}[${i}].name must be a string`);
    return { name: entry.name, value: typeof entry.value === 'string' ? entry.value : '' };
  });
}

/** Replaces `Ref::name` with the job's parameter values, as Batch does; unknown refs stay. */
function substituteParameters(arg: string, parameters: Record<string, string>): string {
  return arg.replace(/Ref::([A-Za-z0-9_.-]+)/g, (whole, name: string) => parameters[name] ?? whole);
}

/** Merges environment lists; later entries win, order of first appearance kept. */
function mergeEnv(...lists: readonly (readonly EnvVar[])[]): EnvVar[] {
  const merged = new Map<string, string>();
  for (const list of lists) for (const { name, value } of list) merged.set(name, value);
  return [...merged].map(([name, value]) => ({ name, value }));
}

function nonNegative(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * Creates the local Batch service.
 *
 * @example
 * const batch = createBatchService({ hooks, events, region: 'us-east-1', accountId: '000000000000',
 *   environment: () => ({ AWS_ENDPOINT_URL: endpoint }) });
 */
export function createBatchService(opts: BatchServiceOptions): LocalBatchService {
  const { region, accountId } = opts;
  const delays = {
    submittedMs: nonNegative(opts.delays?.submittedMs, 50),
    pendingMs: nonNegative(opts.delays?.pendingMs, 50),
    runnableMs: nonNegative(opts.delays?.runnableMs, 50),
    startingMs: nonNegative(opts.delays?.startingMs, 50),
  };
  const defaultGraceMs = nonNegative(opts.terminateGraceMs, 2000);
  const maxRunning = Math.max(1, opts.maxRunningJobs ?? 32);
  const tailBytes = opts.outputTailBytes ?? 65536;

  const computeEnvironments = new Map<string, ComputeEnvironmentRecord>();
  const jobQueues = new Map<string, JobQueueRecord>();
  const jobDefinitions = new Map<string, JobDefinitionRecord[]>();
  const jobs = new Map<string, JobRecord>();
  /** Top-level jobs (not array children) in submission order, for ListJobs. */
  const topLevelJobs: JobRecord[] = [];
  /** Jobs in RUNNABLE waiting for a free slot. */
  const waitingForSlot: JobRecord[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const exits = new Set<Promise<unknown>>();
  let running = 0;
  let stopped = false;

  const arnPrefix = `arn:aws:batch:${region}:${accountId}`;

  // ---- scheduling -------------------------------------------------------------------------

  function later(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopped) fn();
    }, ms);
    timers.add(timer);
    return timer;
  }

  function schedule(job: JobRecord, ms: number, fn: () => void): void {
    clearJobTimer(job);
    job.timer = later(ms, () => {
      job.timer = undefined;
      fn();
    });
  }

  function clearJobTimer(job: JobRecord): void {
    if (job.timer !== undefined) {
      clearTimeout(job.timer);
      timers.delete(job.timer);
      job.timer = undefined;
    }
  }

  function clearAttemptTimer(job: JobRecord): void {
    if (job.attemptTimer !== undefined) {
      clearTimeout(job.attemptTimer);
      timers.delete(job.attemptTimer);
      job.attemptTimer = undefined;
    }
  }

  function setStatus(job: JobRecord, status: BatchJobStatus, reason?: string): void {
    const now = Date.now();
    job.status = status;
    if (reason !== undefined) job.statusReason = reason;
    if (status === BatchJobStatus.RUNNING && job.startedAt === undefined) job.startedAt = now;
    if (TERMINAL.has(status)) {
      job.stoppedAt = now;
      clearJobTimer(job);
      clearAttemptTimer(job);
      releaseSlot(job);
      const queued = waitingForSlot.indexOf(job);
      if (queued >= 0) waitingForSlot.splice(queued, 1);
    }
    if (!stopped) {
      opts.events.emit({
        source: 'aws.batch',
        'detail-type': 'Batch Job State Change',
        detail: describeJob(job),
        resources: [job.jobArn],
      });
    }
    if (job.parent !== undefined) {
      job.parent.statusSummaryUpdatedAt = now;
      if (TERMINAL.has(status)) settleParent(job.parent);
    }
    if (TERMINAL.has(status)) recheckDependents();
  }

  function releaseSlot(job: JobRecord): void {
    if (!job.holdsSlot) return;
    job.holdsSlot = false;
    running--;
    while (running < maxRunning && waitingForSlot.length > 0) {
      const next = waitingForSlot.shift()!;
      if (next.status === BatchJobStatus.RUNNABLE) toStarting(next);
    }
  }

  function toPending(job: JobRecord): void {
    setStatus(job, BatchJobStatus.PENDING);
    schedule(job, delays.pendingMs, () => afterPending(job));
  }

  /** Outcome of a job's dependencies: wait, proceed, or fail. */
  function dependencyState(job: JobRecord): 'wait' | 'ready' | 'failed' {
    for (const dep of job.dependsOn) {
      const other = jobs.get(dep.jobId);
      if (other === undefined) continue;
      if (other.status === BatchJobStatus.FAILED) return 'failed';
      if (other.status !== BatchJobStatus.SUCCEEDED) return 'wait';
    }
    return 'ready';
  }

  function afterPending(job: JobRecord): void {
    if (job.status !== BatchJobStatus.PENDING) return;
    const deps = dependencyState(job);
    if (deps === 'wait') {
      job.waitingForDependencies = true;
      return;
    }
    job.waitingForDependencies = false;
    if (deps === 'failed') {
      if (job.arraySize !== undefined) job.parentStopReason = 'Dependent Job failed';
      setStatus(job, BatchJobStatus.FAILED, 'Dependent Job failed');
      return;
    }
    if (job.arraySize !== undefined) {
      spawnChildren(job);
      return;
    }
    toRunnable(job);
  }

  function recheckDependents(): void {
    for (const job of jobs.values()) {
      if (job.waitingForDependencies && job.status === BatchJobStatus.PENDING) afterPending(job);
    }
  }

  function toRunnable(job: JobRecord, reason?: string): void {
    setStatus(job, BatchJobStatus.RUNNABLE, reason);
    schedule(job, delays.runnableMs, () => {
      if (job.status !== BatchJobStatus.RUNNABLE) return;
      if (running < maxRunning) toStarting(job);
      else waitingForSlot.push(job);
    });
  }

  function toStarting(job: JobRecord): void {
    job.holdsSlot = true;
    running++;
    setStatus(job, BatchJobStatus.STARTING);
    schedule(job, delays.startingMs, () => {
      void startAttempt(job);
    });
  }

  function graceMsFor(job: JobRecord): number {
    const fromEnv = job.environment.find((e) => e.name === 'VALENCE_TERMINATE_GRACE_MS')?.value;
    const parsed = fromEnv === undefined ? NaN : Number(fromEnv);
    return Number.isFinite(parsed) && parsed >= 0 ? parsed : defaultGraceMs;
  }

  function jobEnvironment(job: JobRecord): Record<string, string> {
    const env = workloadEnvironment(opts.environment());
    for (const { name, value } of job.environment) env[name] = value;
    env.AWS_BATCH_JOB_ID = job.jobId;
    env.AWS_BATCH_JQ_NAME = job.queue.name;
    env.AWS_BATCH_JOB_ATTEMPT = String(job.attempt);
    const ce = job.queue.computeEnvironmentNames[0];
    if (ce !== undefined) env.AWS_BATCH_CE_NAME = ce;
    if (job.arrayIndex !== undefined) env.AWS_BATCH_JOB_ARRAY_INDEX = String(job.arrayIndex);
    return env;
  }

  async function startAttempt(job: JobRecord): Promise<void> {
    if (job.status !== BatchJobStatus.STARTING) return;
    job.attempt++;
    job.spawning = true;
    const attemptStartedAt = Date.now();
    let group: ProcessGroup;
    try {
      group = await ProcessGroup.start({ command: job.command, env: jobEnvironment(job), tailBytes });
    } catch (e) {
      job.spawning = false;
      const reason = `CannotStartContainerError: ${(e as Error).message}`;
      job.exitCode = undefined;
      job.containerReason = reason;
      job.attempts.push({
        container: { reason, logStreamName: logStreamName(job) },
        startedAt: attemptStartedAt,
        stoppedAt: Date.now(),
        statusReason: 'Task failed to start',
      });
      if (stopped) return;
      if (job.stopping !== undefined) setStatus(job, BatchJobStatus.FAILED, job.stopping.reason);
      else if (job.attempt < job.retryAttempts) {
        releaseSlot(job);
        toRunnable(job);
      } else setStatus(job, BatchJobStatus.FAILED, 'Task failed to start');
      return;
    }
    job.spawning = false;
    job.spawnCount++;
    job.process = group;
    job.lastProcess = group;
    job.exitCode = undefined;
    job.containerReason = undefined;
    const exited = group.exited
      .then((exit) => onAttemptExit(job, group, exit, attemptStartedAt))
      .catch(() => undefined);
    exits.add(exited);
    void exited.finally(() => exits.delete(exited));
    if (stopped) {
      group.signalGroup('SIGKILL');
      return;
    }
    if (job.stopping !== undefined) {
      // TerminateJob arrived while the container was being created.
      void group.terminate(graceMsFor(job));
      return;
    }
    setStatus(job, BatchJobStatus.RUNNING);
    if (job.timeoutSeconds !== undefined) {
      const timer = later(job.timeoutSeconds * 1000, () => {
        job.attemptTimer = undefined;
        if (job.process !== group || job.stopping !== undefined) return;
        job.stopping = { reason: ATTEMPT_TIMEOUT_REASON };
        void group.terminate(graceMsFor(job));
      });
      job.attemptTimer = timer;
    }
  }

  function onAttemptExit(job: JobRecord, group: ProcessGroup, exit: ProcessExit, startedAt: number): void {
    if (job.process === group) job.process = undefined;
    clearAttemptTimer(job);
    job.exitCode = exit.exitCode;
    const stopping = job.stopping;
    const statusReason = stopping?.reason ?? ESSENTIAL_CONTAINER_EXITED;
    job.attempts.push({
      container: {
        exitCode: exit.exitCode,
        ...(exit.signal ? { reason: `Process killed by ${exit.signal}` } : {}),
        logStreamName: logStreamName(job),
      },
      startedAt,
      stoppedAt: Date.now(),
      statusReason,
    });
    if (exit.signal) job.containerReason = `Process killed by ${exit.signal}`;
    if (stopped || TERMINAL.has(job.status)) return;
    if (stopping !== undefined) {
      setStatus(job, BatchJobStatus.FAILED, stopping.reason);
    } else if (exit.exitCode === 0) {
      setStatus(job, BatchJobStatus.SUCCEEDED, ESSENTIAL_CONTAINER_EXITED);
    } else if (job.attempt < job.retryAttempts) {
      releaseSlot(job);
      toRunnable(job, ESSENTIAL_CONTAINER_EXITED);
    } else {
      setStatus(job, BatchJobStatus.FAILED, ESSENTIAL_CONTAINER_EXITED);
    }
  }

  // ---- array jobs -------------------------------------------------------------------------

  function spawnChildren(parent: JobRecord): void {
    const size = parent.arraySize!;
    for (let index = 0; index < size; index++) {
      const child = newJob({
        jobId: `${parent.jobId}:${index}`,
        jobName: parent.jobName,
        queue: parent.queue,
        definition: parent.definition,
        parameters: parent.parameters,
        command: parent.command,
        environment: parent.environment,
        containerBase: parent.containerBase,
        retryAttempts: parent.retryAttempts,
        timeoutSeconds: parent.timeoutSeconds,
        dependsOn: [],
        tags: parent.tags,
        propagateTags: parent.propagateTags,
        arraySize: undefined,
        arrayIndex: index,
        parent,
      });
      parent.children.push(child);
      jobs.set(child.jobId, child);
    }
    parent.statusSummaryUpdatedAt = Date.now();
    for (const child of parent.children) toPending(child);
  }

  function settleParent(parent: JobRecord): void {
    if (TERMINAL.has(parent.status)) return;
    if (!parent.children.every((c) => TERMINAL.has(c.status))) return;
    if (parent.parentStopReason !== undefined) {
      setStatus(parent, BatchJobStatus.FAILED, parent.parentStopReason);
    } else if (parent.children.every((c) => c.status === BatchJobStatus.SUCCEEDED)) {
      setStatus(parent, BatchJobStatus.SUCCEEDED, 'All child jobs succeeded');
    } else {
      setStatus(parent, BatchJobStatus.FAILED, 'Array Child Job failed');
    }
  }

  // ---- cancel / terminate -----------------------------------------------------------------

  const NOT_STARTED: ReadonlySet<BatchJobStatus> = new Set([
    BatchJobStatus.SUBMITTED,
    BatchJobStatus.PENDING,
    BatchJobStatus.RUNNABLE,
  ]);

  function failBeforeStart(job: JobRecord, reason: string): void {
    clearJobTimer(job);
    job.waitingForDependencies = false;
    setStatus(job, BatchJobStatus.FAILED, reason);
  }

  /** Stops an array parent by stopping each child with `stopChild`; false for a plain job. */
  function stopArrayParent(job: JobRecord, reason: string, stopChild: (child: JobRecord, reason: string) => void): boolean {
    if (job.arraySize === undefined) return false;
    job.parentStopReason ??= reason;
    if (job.children.length === 0) failBeforeStart(job, reason);
    else {
      for (const child of job.children) stopChild(child, reason);
      settleParent(job);
    }
    return true;
  }

  function cancelJob(job: JobRecord, reason: string): void {
    if (TERMINAL.has(job.status)) return;
    // As on AWS: children not yet STARTING are cancelled, running ones carry on, and the
    // parent ends when the last child does.
    if (stopArrayParent(job, reason, cancelJob)) return;
    if (NOT_STARTED.has(job.status)) failBeforeStart(job, reason);
  }

  function terminateJob(job: JobRecord, reason: string): void {
    if (TERMINAL.has(job.status)) return;
    if (stopArrayParent(job, reason, terminateJob)) return;
    if (NOT_STARTED.has(job.status)) {
      failBeforeStart(job, reason);
      return;
    }
    if (job.stopping !== undefined) return;
    job.stopping = { reason };
    if (job.process !== undefined) {
      void job.process.terminate(graceMsFor(job));
    } else if (!job.spawning) {
      // STARTING, container not created yet: nothing to kill.
      setStatus(job, BatchJobStatus.FAILED, reason);
    }
    // else: startAttempt sees `stopping` as soon as the spawn settles.
  }

  // ---- rendering --------------------------------------------------------------------------

  function logStreamName(job: JobRecord): string {
    return `${job.definition.name}/default/${job.jobId.replace(':', '-')}`;
  }

  function statusSummary(parent: JobRecord): Record<string, number> {
    const summary: Record<string, number> = {};
    for (const status of STATUS_ORDER) summary[status] = 0;
    for (const child of parent.children) summary[child.status] = (summary[child.status] ?? 0) + 1;
    return summary;
  }

  function describeJob(job: JobRecord): Json {
    const container: Json = {
      ...job.containerBase,
      command: [...job.command],
      environment: job.environment.map((e) => ({ ...e })),
      logStreamName: job.spawnCount > 0 ? logStreamName(job) : undefined,
      exitCode: job.exitCode,
      reason: job.containerReason,
    };
    const detail: Json = {
      jobArn: job.jobArn,
      jobName: job.jobName,
      jobId: job.jobId,
      jobQueue: job.queue.arn,
      status: job.status,
      attempts: job.attempts.map((a) => structuredClone(a)),
      statusReason: job.statusReason,
      createdAt: job.createdAt,
      retryStrategy: { attempts: job.retryAttempts },
      startedAt: job.startedAt,
      stoppedAt: job.stoppedAt,
      dependsOn: job.dependsOn.map((d) => ({ ...d })),
      jobDefinition: job.definition.arn,
      parameters: { ...job.parameters },
      container,
      timeout: job.timeoutSeconds !== undefined ? { attemptDurationSeconds: job.timeoutSeconds } : undefined,
      tags: job.tags,
      propagateTags: job.propagateTags,
      platformCapabilities: job.definition.detail.platformCapabilities,
    };
    if (job.arraySize !== undefined) {
      detail.arrayProperties = {
        size: job.arraySize,
        statusSummary: statusSummary(job),
        ...(job.statusSummaryUpdatedAt !== undefined ? { statusSummaryLastUpdatedAt: job.statusSummaryUpdatedAt } : {}),
      };
    } else if (job.arrayIndex !== undefined) {
      detail.arrayProperties = { index: job.arrayIndex };
    }
    return JSON.parse(JSON.stringify(detail)) as Json;
  }

  function summarizeJob(job: JobRecord): Json {
    return JSON.parse(
      JSON.stringify({
        jobArn: job.jobArn,
        jobId: job.jobId,
        jobName: job.jobName,
        createdAt: job.createdAt,
        status: job.status,
        statusReason: job.statusReason,
        startedAt: job.startedAt,
        stoppedAt: job.stoppedAt,
        container: job.spawnCount > 0 ? { exitCode: job.exitCode, reason: job.containerReason } : undefined,
        arrayProperties:
          job.arraySize !== undefined
            ? { size: job.arraySize }
            : job.arrayIndex !== undefined
              ? { index: job.arrayIndex }
              : undefined,
        jobDefinition: job.definition.arn,
      }),
    ) as Json;
  }

  function view(job: JobRecord): BatchJobView {
    const group = job.process ?? job.lastProcess;
    return {
      jobId: job.jobId,
      jobArn: job.jobArn,
      jobName: job.jobName,
      status: job.status,
      statusReason: job.statusReason,
      exitCode: job.exitCode,
      pid: group?.pid,
      pgid: group?.pid,
      processRunning: job.process !== undefined && job.process.exitStatus === undefined,
      spawnCount: job.spawnCount,
      stdout: group?.stdoutTail() ?? '',
      stderr: group?.stderrTail() ?? '',
      arrayIndex: job.arrayIndex,
      parentJobId: job.parent?.jobId,
      childJobIds: job.children.map((c) => c.jobId),
    };
  }

  // ---- lookups ----------------------------------------------------------------------------

  function findComputeEnvironment(ref: string): ComputeEnvironmentRecord | undefined {
    return computeEnvironments.get(ref) ?? [...computeEnvironments.values()].find((ce) => ce.arn === ref);
  }

  function findQueue(ref: string): JobQueueRecord | undefined {
    return jobQueues.get(ref) ?? [...jobQueues.values()].find((q) => q.arn === ref);
  }

  function findDefinition(ref: string): JobDefinitionRecord | undefined {
    let nameAndRevision = ref;
    if (ref.startsWith('arn:')) {
      const marker = ':job-definition/';
      const at = ref.indexOf(marker);
      if (at < 0) return undefined;
      nameAndRevision = ref.slice(at + marker.length);
    }
    const [name, revisionText] = nameAndRevision.split(':');
    const revisions = jobDefinitions.get(name ?? '');
    if (revisions === undefined) return undefined;
    if (revisionText === undefined) return revisions.filter((r) => r.status === 'ACTIVE').at(-1);
    return revisions.find((r) => r.revision === Number(revisionText));
  }

  function findJob(ref: string): JobRecord | undefined {
    const marker = ':job/';
    const at = ref.indexOf(marker);
    return jobs.get(ref.startsWith('arn:') && at >= 0 ? ref.slice(at + marker.length) : ref);
  }

  function newJob(init: {
    jobId: string;
    jobName: string;
    queue: JobQueueRecord;
    definition: JobDefinitionRecord;
    parameters: Record<string, string>;
    command: readonly string[];
    environment: readonly EnvVar[];
    containerBase: Json;
    retryAttempts: number;
    timeoutSeconds: number | undefined;
    dependsOn: readonly { jobId: string; type?: string }[];
    tags: Record<string, string> | undefined;
    propagateTags: boolean | undefined;
    arraySize: number | undefined;
    arrayIndex: number | undefined;
    parent: JobRecord | undefined;
  }): JobRecord {
    return {
      ...init,
      jobArn: `${arnPrefix}:job/${init.jobId}`,
      createdAt: Date.now(),
      status: BatchJobStatus.SUBMITTED,
      statusReason: undefined,
      startedAt: undefined,
      stoppedAt: undefined,
      attempt: 0,
      attempts: [],
      exitCode: undefined,
      containerReason: undefined,
      process: undefined,
      lastProcess: undefined,
      spawnCount: 0,
      spawning: false,
      holdsSlot: false,
      timer: undefined,
      attemptTimer: undefined,
      stopping: undefined,
      waitingForDependencies: false,
      children: [],
      parentStopReason: undefined,
      statusSummaryUpdatedAt: undefined,
    };
  }

  function paginate<T>(items: readonly T[], body: Json, defaultMax: number): { page: T[]; nextToken?: string } {
    const offset = decodeToken(optString(body, 'nextToken', CLIENT), CLIENT);
    const max = typeof body.maxResults === 'number' && body.maxResults > 0 ? body.maxResults : defaultMax;
    const page = items.slice(offset, offset + max);
    return offset + max < items.length ? { page, nextToken: encodeToken(offset + max) } : { page };
  }

  // ---- operations -------------------------------------------------------------------------

  const operations: Record<string, (body: Json) => Json> = {
    CreateComputeEnvironment(body) {
      const name = reqString(body, 'computeEnvironmentName', CLIENT);
      if (!NAME_PATTERN.test(name)) throw clientError(`invalid computeEnvironmentName: ${name}`);
      if (computeEnvironments.has(name)) throw clientError('Object already exists');
      const type = optString(body, 'type', CLIENT) ?? 'MANAGED';
      if (type !== 'MANAGED' && type !== 'UNMANAGED') throw clientError(`invalid type: ${type}`);
      const arn = `${arnPrefix}:compute-environment/${name}`;
      const detail: Json = {
        computeEnvironmentName: name,
        computeEnvironmentArn: arn,
        ecsClusterArn: `arn:aws:ecs:${region}:${accountId}:cluster/${name}`,
        tags: optStringMap(body, 'tags', CLIENT),
        type,
        state: optString(body, 'state', CLIENT) ?? 'ENABLED',
        status: 'VALID',
        statusReason: 'ComputeEnvironment Healthy',
        computeResources: asObject(body.computeResources, 'computeResources'),
        serviceRole: optString(body, 'serviceRole', CLIENT),
        containerOrchestrationType: 'ECS',
        uuid: crypto.randomUUID(),
      };
      computeEnvironments.set(name, { name, arn, detail });
      return { computeEnvironmentName: name, computeEnvironmentArn: arn };
    },

    DescribeComputeEnvironments(body) {
      const refs = stringList(body.computeEnvironments, 'computeEnvironments');
      const found =
        refs === undefined
          ? [...computeEnvironments.values()]
          : refs.map(findComputeEnvironment).filter((ce) => ce !== undefined);
      const { page, nextToken } = paginate(found, body, 100);
      return { computeEnvironments: page.map((ce) => ce.detail), nextToken };
    },

    CreateJobQueue(body) {
      const name = reqString(body, 'jobQueueName', CLIENT);
      if (!NAME_PATTERN.test(name)) throw clientError(`invalid jobQueueName: ${name}`);
      if (jobQueues.has(name)) throw clientError('Object already exists');
      const order = asArray(body.computeEnvironmentOrder, 'computeEnvironmentOrder').map((item, i) => {
        const entry = asObject(item, `computeEnvironmentOrder[${i}]`) ?? {};
        const ref = typeof entry.computeEnvironment === 'string' ? entry.computeEnvironment : '';
        const ce = findComputeEnvironment(ref);
        if (ce === undefined) throw clientError(`computeEnvironment ${ref} does not exist`);
        return { order: typeof entry.order === 'number' ? entry.order : i + 1, ce };
      });
      if (order.length === 0) throw clientError('computeEnvironmentOrder is required');
      order.sort((a, b) => a.order - b.order);
      const arn = `${arnPrefix}:job-queue/${name}`;
      const detail: Json = {
        jobQueueName: name,
        jobQueueArn: arn,
        state: optString(body, 'state', CLIENT) ?? 'ENABLED',
        status: 'VALID',
        statusReason: 'JobQueue Healthy',
        priority: typeof body.priority === 'number' ? body.priority : 1,
        computeEnvironmentOrder: order.map((o) => ({ order: o.order, computeEnvironment: o.ce.arn })),
        tags: optStringMap(body, 'tags', CLIENT),
        schedulingPolicyArn: optString(body, 'schedulingPolicyArn', CLIENT),
        jobQueueType: 'ECS',
      };
      jobQueues.set(name, { name, arn, detail, computeEnvironmentNames: order.map((o) => o.ce.name) });
      return { jobQueueName: name, jobQueueArn: arn };
    },

    DescribeJobQueues(body) {
      const refs = stringList(body.jobQueues, 'jobQueues');
      const found = refs === undefined ? [...jobQueues.values()] : refs.map(findQueue).filter((q) => q !== undefined);
      const { page, nextToken } = paginate(found, body, 100);
      return { jobQueues: page.map((q) => q.detail), nextToken };
    },

    RegisterJobDefinition(body) {
      const name = reqString(body, 'jobDefinitionName', CLIENT);
      if (!NAME_PATTERN.test(name)) throw clientError(`invalid jobDefinitionName: ${name}`);
      const type = reqString(body, 'type', CLIENT);
      if (type !== 'container') throw clientError(`job definition type ${type} is not supported locally`);
      const containerProperties = asObject(body.containerProperties, 'containerProperties');
      if (containerProperties === undefined) throw clientError('containerProperties is required');
      const command = stringList(containerProperties.command, 'containerProperties.command');
      envList(containerProperties.environment, 'containerProperties.environment');
      const retryStrategy = asObject(body.retryStrategy, 'retryStrategy');
      const timeout = asObject(body.timeout, 'timeout');
      const revisions = jobDefinitions.get(name) ?? [];
      const revision = (revisions.at(-1)?.revision ?? 0) + 1;
      const arn = `${arnPrefix}:job-definition/${name}:${revision}`;
      const detail: Json = {
        jobDefinitionName: name,
        jobDefinitionArn: arn,
        revision,
        status: 'ACTIVE',
        type,
        parameters: optStringMap(body, 'parameters', CLIENT) ?? {},
        containerProperties: { ...containerProperties, ...(command ? { command } : {}) },
        retryStrategy,
        timeout,
        tags: optStringMap(body, 'tags', CLIENT),
        propagateTags: typeof body.propagateTags === 'boolean' ? body.propagateTags : undefined,
        platformCapabilities: stringList(body.platformCapabilities, 'platformCapabilities'),
        schedulingPriority: typeof body.schedulingPriority === 'number' ? body.schedulingPriority : undefined,
        containerOrchestrationType: 'ECS',
      };
      revisions.push({ name, revision, arn, status: 'ACTIVE', detail });
      jobDefinitions.set(name, revisions);
      return { jobDefinitionName: name, jobDefinitionArn: arn, revision };
    },

    DescribeJobDefinitions(body) {
      const refs = stringList(body.jobDefinitions, 'jobDefinitions');
      const byName = optString(body, 'jobDefinitionName', CLIENT);
      const status = optString(body, 'status', CLIENT);
      let found: JobDefinitionRecord[];
      if (refs !== undefined) {
        found = refs.flatMap((ref) => {
          // A bare name lists every revision, as DescribeJobDefinitions does.
          if (!ref.startsWith('arn:') && !ref.includes(':')) return jobDefinitions.get(ref) ?? [];
          const d = findDefinition(ref);
          return d === undefined ? [] : [d];
        });
      } else if (byName !== undefined) {
        found = [...(jobDefinitions.get(byName) ?? [])];
      } else {
        found = [...jobDefinitions.values()].flat();
      }
      if (status !== undefined) found = found.filter((d) => d.status === status);
      const { page, nextToken } = paginate(found, body, 100);
      return { jobDefinitions: page.map((d) => ({ ...d.detail, status: d.status })), nextToken };
    },

    DeregisterJobDefinition(body) {
      const ref = reqString(body, 'jobDefinition', CLIENT);
      const definition = findDefinition(ref);
      if (definition === undefined) throw clientError(`job definition ${ref} does not exist`);
      definition.status = 'INACTIVE';
      return {};
    },

    SubmitJob(body) {
      const jobName = reqString(body, 'jobName', CLIENT);
      if (!NAME_PATTERN.test(jobName)) throw clientError(`invalid jobName: ${jobName}`);
      const queueRef = reqString(body, 'jobQueue', CLIENT);
      const queue = findQueue(queueRef);
      if (queue === undefined) throw clientError(`Job Queue ${queueRef} does not exist`);
      if (queue.detail.state === 'DISABLED') throw clientError(`Job Queue ${queueRef} is DISABLED`);
      const definitionRef = reqString(body, 'jobDefinition', CLIENT);
      const definition = findDefinition(definitionRef);
      if (definition === undefined || definition.status !== 'ACTIVE') {
        throw clientError(`Job definition ${definitionRef} does not exist or is not ACTIVE`);
      }
      const defDetail = definition.detail;
      const defContainer = (defDetail.containerProperties ?? {}) as Json;
      const overrides = asObject(body.containerOverrides, 'containerOverrides') ?? {};

      const parameters = {
        ...((defDetail.parameters as Record<string, string> | undefined) ?? {}),
        ...(optStringMap(body, 'parameters', CLIENT) ?? {}),
      };
      const rawCommand =
        stringList(overrides.command, 'containerOverrides.command') ??
        (defContainer.command as string[] | undefined) ??
        [];
      if (rawCommand.length === 0) throw clientError('the job has no command (containerProperties.command)');
      const command = rawCommand.map((arg) => substituteParameters(arg, parameters));
      const environment = mergeEnv(
        envList(defContainer.environment, 'containerProperties.environment'),
        envList(overrides.environment, 'containerOverrides.environment'),
      );
      const containerBase: Json = { ...defContainer };
      delete containerBase.command;
      delete containerBase.environment;
      for (const key of ['vcpus', 'memory', 'resourceRequirements', 'instanceType'] as const) {
        if (overrides[key] !== undefined) containerBase[key] = overrides[key];
      }

      const retry =
        asObject(body.retryStrategy, 'retryStrategy') ?? (defDetail.retryStrategy as Json | undefined) ?? {};
      const retryAttempts = typeof retry.attempts === 'number' ? retry.attempts : 1;
      if (!Number.isInteger(retryAttempts) || retryAttempts < 1 || retryAttempts > 10) {
        throw clientError('retryStrategy.attempts must be between 1 and 10');
      }
      const timeout = asObject(body.timeout, 'timeout') ?? (defDetail.timeout as Json | undefined);
      const timeoutSeconds =
        typeof timeout?.attemptDurationSeconds === 'number' ? timeout.attemptDurationSeconds : undefined;
      if (timeoutSeconds !== undefined && !(timeoutSeconds > 0)) {
        throw clientError('timeout.attemptDurationSeconds must be positive');
      }

      const arrayProperties = asObject(body.arrayProperties, 'arrayProperties');
      let arraySize: number | undefined;
      if (arrayProperties?.size !== undefined) {
        const size = arrayProperties.size;
        if (typeof size !== 'number' || !Number.isInteger(size) || size < 2 || size > 10_000) {
          throw clientError('arrayProperties.size must be between 2 and 10000');
        }
        arraySize = size;
      }
      const dependsOn = asArray(body.dependsOn, 'dependsOn').map((item, i) => {
        const dep = asObject(item, `dependsOn[${i}]`) ?? {};
        if (typeof dep.jobId !== 'string') throw clientError(`dependsOn[${i}].jobId is required`);
        if (!jobs.has(dep.jobId)) throw clientError(`dependsOn job ${dep.jobId} does not exist`);
        return typeof dep.type === 'string' ? { jobId: dep.jobId, type: dep.type } : { jobId: dep.jobId };
      });

      const job = newJob({
        jobId: crypto.randomUUID(),
        jobName,
        queue,
        definition,
        parameters,
        command,
        environment,
        containerBase,
        retryAttempts,
        timeoutSeconds,
        dependsOn,
        tags: optStringMap(body, 'tags', CLIENT) ?? (defDetail.tags as Record<string, string> | undefined),
        propagateTags:
          typeof body.propagateTags === 'boolean' ? body.propagateTags : (defDetail.propagateTags as boolean | undefined),
        arraySize,
        arrayIndex: undefined,
        parent: undefined,
      });
      jobs.set(job.jobId, job);
      topLevelJobs.push(job);
      setStatus(job, BatchJobStatus.SUBMITTED);
      schedule(job, delays.submittedMs, () => toPending(job));
      return { jobArn: job.jobArn, jobName: job.jobName, jobId: job.jobId };
    },

    DescribeJobs(body) {
      const ids = stringList(body.jobs, 'jobs');
      if (ids === undefined) throw clientError('jobs is required');
      if (ids.length > 100) throw clientError('at most 100 jobs can be described at once');
      const found = ids.map(findJob).filter((j) => j !== undefined);
      return { jobs: found.map(describeJob) };
    },

    ListJobs(body) {
      const queueRef = optString(body, 'jobQueue', CLIENT);
      const arrayJobId = optString(body, 'arrayJobId', CLIENT);
      const filters = asArray(body.filters, 'filters').map((item, i) => {
        const f = asObject(item, `filters[${i}]`) ?? {};
        return { name: typeof f.name === 'string' ? f.name : '', values: stringList(f.values, `filters[${i}].values`) ?? [] };
      });
      let candidates: JobRecord[];
      if (arrayJobId !== undefined) {
        const parent = jobs.get(arrayJobId);
        candidates = parent?.children ?? [];
      } else if (queueRef !== undefined) {
        const queue = findQueue(queueRef);
        if (queue === undefined) throw clientError(`Job Queue ${queueRef} does not exist`);
        candidates = topLevelJobs.filter((j) => j.queue === queue);
      } else {
        throw clientError('one of jobQueue, arrayJobId or multiNodeJobId is required');
      }
      const jobStatus = optString(body, 'jobStatus', CLIENT);
      // As on AWS: without filters, jobStatus defaults to RUNNING; with filters it is ignored.
      if (filters.length === 0) {
        const wanted = jobStatus ?? BatchJobStatus.RUNNING;
        candidates = candidates.filter((j) => j.status === wanted);
      }
      for (const { name, values } of filters) {
        const value = values[0] ?? '';
        if (name === 'JOB_NAME') {
          const matcher = value.endsWith('*')
            ? (n: string) => n.startsWith(value.slice(0, -1))
            : (n: string) => n === value;
          candidates = candidates.filter((j) => matcher(j.jobName));
        } else if (name === 'JOB_DEFINITION') {
          candidates = candidates.filter(
            (j) => j.definition.arn === value || j.definition.name === value || `${j.definition.name}:${j.definition.revision}` === value,
          );
        } else if (name === 'BEFORE_CREATED_AT') {
          candidates = candidates.filter((j) => j.createdAt < Number(value));
        } else if (name === 'AFTER_CREATED_AT') {
          candidates = candidates.filter((j) => j.createdAt > Number(value));
        } else {
          throw clientError(`unsupported filter ${name}`);
        }
      }
      const { page, nextToken } = paginate(candidates, body, 100);
      return { jobSummaryList: page.map(summarizeJob), nextToken };
    },

    CancelJob(body) {
      const ref = reqString(body, 'jobId', CLIENT);
      const reason = reqString(body, 'reason', CLIENT);
      const job = findJob(ref);
      if (job === undefined) throw clientError(`Job ${ref} not found`);
      cancelJob(job, reason);
      return {};
    },

    TerminateJob(body) {
      const ref = reqString(body, 'jobId', CLIENT);
      const reason = reqString(body, 'reason', CLIENT);
      const job = findJob(ref);
      if (job === undefined) throw clientError(`Job ${ref} not found`);
      terminateJob(job, reason);
      return {};
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse, _ctx: RequestContext): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '');
    const operation = req.method === 'POST' ? ROUTES[path] : undefined;
    await serveJsonOperation(req, res, {
      operation,
      described: `Batch ${req.method} ${path}`,
      hooks: opts.hooks,
      badRequestCode: CLIENT,
      internalCode: 'ServerException',
      run: (body) => JSON.parse(JSON.stringify(operations[operation!]!(body))) as unknown,
    });
  }

  async function stop(): Promise<void> {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    for (const job of jobs.values()) {
      job.timer = undefined;
      job.attemptTimer = undefined;
      job.process?.signalGroup('SIGKILL');
    }
    // A spawn in flight is killed by startAttempt as soon as it settles; wait for every exit.
    await waitForExits(
      () => [...exits],
      () => [...jobs.values()].some((j) => j.spawning),
    );
  }

  return {
    signingName: 'batch',
    handle,
    stop,
    jobs: () => [...jobs.values()].map(view),
    job: (jobId) => {
      const job = jobs.get(jobId);
      return job === undefined ? undefined : view(job);
    },
  };
}
