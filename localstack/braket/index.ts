/**
 * Local Amazon Braket: the REST-JSON API `@aws-sdk/client-braket` speaks.
 *
 * Quantum tasks carrying an OpenQASM 3 program run on the local state-vector simulator
 * (`simulator.ts`), whatever the device ARN; the result is written where Braket writes it,
 * `s3://{outputS3Bucket}/{outputS3KeyPrefix}/{taskId}/results.json`, in the
 * GateModelTaskResult shape. Tasks move CREATED → QUEUED → RUNNING → COMPLETED/FAILED with a
 * configurable queue delay and run time, so cancellation can be tested in each state:
 * CancelQuantumTask moves a task to CANCELLING and then CANCELLED, and is a ConflictException on
 * a task that already ended.
 *
 * Hybrid jobs run a real local process group: `algorithmSpecification.scriptModeConfig.entryPoint`
 * is taken as a shell command (a local convention; on AWS it names a Python entry point).
 * CancelJob stops the whole group (SIGTERM, a grace period, SIGKILL) and the job ends CANCELLED.
 *
 * Every transition emits "Braket Task State Change" / "Braket Job State Change" events.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { AwsServiceError, sendFailure } from '../wire/errors.ts';
import { OpenQasmError, parseOpenQasm, simulateCircuit, type Circuit } from './simulator.ts';

export { OpenQasmError, parseOpenQasm, runOpenQasm, simulateCircuit, stateProbabilities } from './simulator.ts';
export type { Circuit, SimulationResult } from './simulator.ts';

/** Quantum-task and hybrid-job statuses. */
export const BraketStatus = {
  CREATED: 'CREATED',
  QUEUED: 'QUEUED',
  RUNNING: 'RUNNING',
  COMPLETED: 'COMPLETED',
  FAILED: 'FAILED',
  CANCELLING: 'CANCELLING',
  CANCELLED: 'CANCELLED',
} as const;
/** One Braket status. */
export type BraketStatus = (typeof BraketStatus)[keyof typeof BraketStatus];

const TERMINAL: ReadonlySet<BraketStatus> = new Set([BraketStatus.COMPLETED, BraketStatus.FAILED, BraketStatus.CANCELLED]);

/** Options of {@link createBraketService}. */
export interface BraketServiceOptions {
  readonly hooks: ServiceHooks;
  readonly events: EventSink;
  readonly region: string;
  readonly accountId: string;
  /** Stores a result object (the local S3). */
  writeObject(bucket: string, key: string, body: string): Promise<void>;
  /** Time a task or hybrid job spends QUEUED. @default 50 */
  readonly queueDelayMs?: number;
  /** Time a quantum task spends RUNNING before its result is written. @default 50 */
  readonly runMs?: number;
  /** Time between CANCELLING and CANCELLED for a task or a job that has no process. @default 10 */
  readonly cancelMs?: number;
  /** Extra environment for hybrid-job processes (endpoint and credentials of the local cloud). */
  readonly environment?: () => Record<string, string>;
  /** Between SIGTERM and SIGKILL when a running hybrid job is cancelled. @default 2000 */
  readonly cancelGraceMs?: number;
  /** Uniform [0, 1) source for measurement sampling. @default Math.random */
  readonly random?: () => number;
}

/** In-process view of one quantum task. */
export interface QuantumTaskView {
  readonly quantumTaskArn: string;
  readonly taskId: string;
  readonly status: BraketStatus;
  readonly failureReason: string | undefined;
  /** Key of results.json once written. */
  readonly resultKey: string | undefined;
  readonly shots: number;
}

/** In-process view of one hybrid job. */
export interface HybridJobView {
  readonly jobArn: string;
  readonly jobName: string;
  readonly status: BraketStatus;
  readonly failureReason: string | undefined;
  /** Pid (and process group id) of the job's process, once spawned. */
  readonly pid: number | undefined;
  readonly processRunning: boolean;
  /** How many processes were ever spawned (0 proves the job never started). */
  readonly spawnCount: number;
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

/** The local Braket service plus an in-process view of its work. */
export interface LocalBraketService extends LocalService {
  quantumTasks(): QuantumTaskView[];
  hybridJobs(): HybridJobView[];
}

type Json = Record<string, unknown>;

interface QuantumTaskRecord {
  readonly arn: string;
  readonly id: string;
  status: BraketStatus;
  readonly deviceArn: string;
  readonly deviceParameters: string;
  readonly shots: number;
  readonly outputS3Bucket: string;
  readonly outputS3Directory: string;
  readonly source: string;
  readonly action: unknown;
  readonly createdAt: Date;
  endedAt: Date | undefined;
  failureReason: string | undefined;
  readonly tags: Record<string, string> | undefined;
  readonly jobToken: string | undefined;
  timer: NodeJS.Timeout | undefined;
  resultKey: string | undefined;
  numSuccessfulShots: number | undefined;
}

interface JobEvent {
  readonly eventType: string;
  readonly timeOfEvent: Date;
  readonly message?: string;
}

interface HybridJobRecord {
  readonly arn: string;
  readonly name: string;
  readonly request: Json;
  status: BraketStatus;
  readonly createdAt: Date;
  startedAt: Date | undefined;
  endedAt: Date | undefined;
  failureReason: string | undefined;
  readonly events: JobEvent[];
  timer: NodeJS.Timeout | undefined;
  runtimeTimer: NodeJS.Timeout | undefined;
  process: ProcessGroup | undefined;
  lastProcess: ProcessGroup | undefined;
  spawnCount: number;
  spawning: boolean;
  exitCode: number | undefined;
  /** Why the running process is being stopped: cancel or max runtime. */
  stopping: 'cancel' | 'max-runtime' | undefined;
  workDir: string | undefined;
}

const VALIDATION = 'ValidationException';
const NOT_FOUND = 'ResourceNotFoundException';
const CONFLICT = 'ConflictException';

function validation(message: string): AwsServiceError {
  return new AwsServiceError(VALIDATION, 400, message);
}

function iso(date: Date | undefined): string | undefined {
  return date?.toISOString();
}

/** Drops undefined fields so the wire shape has only what is set. */
function clean<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function nonNegative(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * Creates the local Braket service.
 *
 * @example
 * const braket = createBraketService({ hooks, events, region: 'us-east-1', accountId: '000000000000',
 *   writeObject: (bucket, key, body) => s3.putObject(bucket, key, body) });
 */
export function createBraketService(opts: BraketServiceOptions): LocalBraketService {
  const { region, accountId } = opts;
  const queueDelayMs = nonNegative(opts.queueDelayMs, 50);
  const runMs = nonNegative(opts.runMs, 50);
  const cancelMs = nonNegative(opts.cancelMs, 10);
  const graceMs = nonNegative(opts.cancelGraceMs, 2000);
  const tasks = new Map<string, QuantumTaskRecord>();
  const tasksByToken = new Map<string, QuantumTaskRecord>();
  const hybridJobs = new Map<string, HybridJobRecord>();
  const jobsByToken = new Map<string, HybridJobRecord>();
  const timers = new Set<NodeJS.Timeout>();
  const pending = new Set<Promise<unknown>>();
  let stopped = false;

  function later(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopped) fn();
    }, ms);
    timers.add(timer);
    return timer;
  }

  function cancelTimer(timer: NodeJS.Timeout | undefined): undefined {
    if (timer !== undefined) {
      clearTimeout(timer);
      timers.delete(timer);
    }
    return undefined;
  }

  function track(promise: Promise<unknown>): void {
    const settled = promise.catch(() => undefined);
    pending.add(settled);
    void settled.finally(() => pending.delete(settled));
  }

  // ---- quantum tasks ----------------------------------------------------------------------

  function taskDetail(task: QuantumTaskRecord): Json {
    return clean({
      quantumTaskArn: task.arn,
      status: task.status,
      deviceArn: task.deviceArn,
      shots: task.shots,
      outputS3Bucket: task.outputS3Bucket,
      outputS3Directory: task.outputS3Directory,
      createdAt: iso(task.createdAt),
      endedAt: iso(task.endedAt),
      failureReason: task.failureReason,
      tags: task.tags,
    });
  }

  function setTaskStatus(task: QuantumTaskRecord, status: BraketStatus, failureReason?: string): void {
    task.status = status;
    if (failureReason !== undefined) task.failureReason = failureReason;
    if (TERMINAL.has(status)) {
      task.endedAt = new Date();
      task.timer = cancelTimer(task.timer);
    }
    if (stopped) return;
    opts.events.emit({
      source: 'aws.braket',
      'detail-type': 'Braket Task State Change',
      detail: { ...taskDetail(task), eventName: 'MODIFY' },
      resources: [task.arn],
    });
  }

  function startTask(task: QuantumTaskRecord): void {
    if (task.status !== BraketStatus.QUEUED) return;
    setTaskStatus(task, BraketStatus.RUNNING);
    let circuit: Circuit;
    try {
      circuit = parseOpenQasm(task.source);
    } catch (e) {
      const message = e instanceof OpenQasmError ? e.message : String(e);
      setTaskStatus(task, BraketStatus.FAILED, `Program failed validation: ${message}`);
      return;
    }
    const result = simulateCircuit(circuit, { shots: task.shots, ...(opts.random === undefined ? {} : { random: opts.random }) });
    task.timer = later(runMs, () => {
      task.timer = undefined;
      if (task.status !== BraketStatus.RUNNING) return;
      const key = `${task.outputS3Directory}/results.json`;
      const endedAt = new Date();
      const body = {
        braketSchemaHeader: { name: 'braket.task_result.gate_model_task_result', version: '1' },
        measurements: result.measurements,
        measuredQubits: result.measuredQubits,
        measurementProbabilities: result.measurementProbabilities,
        taskMetadata: {
          braketSchemaHeader: { name: 'braket.task_result.task_metadata', version: '1' },
          id: task.arn,
          shots: task.shots,
          deviceId: task.deviceArn,
          deviceParameters: safeJson(task.deviceParameters),
          createdAt: iso(task.createdAt),
          endedAt: iso(endedAt),
          status: BraketStatus.COMPLETED,
        },
        additionalMetadata: { action: task.action, simulatorMetadata: { executionDuration: runMs } },
      };
      track(
        opts.writeObject(task.outputS3Bucket, key, JSON.stringify(body)).then(
          () => {
            // A cancel that raced the upload wins: the task stays CANCELLING/CANCELLED.
            if (task.status !== BraketStatus.RUNNING || stopped) return;
            task.resultKey = key;
            task.numSuccessfulShots = task.shots;
            setTaskStatus(task, BraketStatus.COMPLETED);
          },
          (e: unknown) => {
            if (task.status !== BraketStatus.RUNNING || stopped) return;
            setTaskStatus(task, BraketStatus.FAILED, `Could not write results to s3://${task.outputS3Bucket}/${key}: ${(e as Error).message}`);
          },
        ),
      );
    });
  }

  function findTask(arn: string): QuantumTaskRecord {
    const task = tasks.get(arn);
    if (task === undefined) throw new AwsServiceError(NOT_FOUND, 404, `Quantum task ${arn} not found`);
    return task;
  }

  function createQuantumTask(body: Json): Json {
    const clientToken = optString(body, 'clientToken', VALIDATION);
    if (clientToken !== undefined) {
      const existing = tasksByToken.get(clientToken);
      if (existing !== undefined) return { quantumTaskArn: existing.arn };
    }
    const deviceArn = reqString(body, 'deviceArn', VALIDATION);
    if (!/^arn:aws:braket:[^:]*:[^:]*:device\/.+/.test(deviceArn)) throw validation(`Device ${deviceArn} is not a Braket device ARN`);
    const shots = body.shots;
    if (typeof shots !== 'number' || !Number.isInteger(shots) || shots < 0 || shots > 100_000) {
      throw validation('shots must be an integer between 0 and 100000');
    }
    const outputS3Bucket = reqString(body, 'outputS3Bucket', VALIDATION);
    const prefix = reqString(body, 'outputS3KeyPrefix', VALIDATION).replace(/\/+$/, '');
    const rawAction = body.action;
    let action: unknown;
    try {
      action = typeof rawAction === 'string' ? JSON.parse(rawAction) : rawAction;
    } catch {
      throw validation('action is not valid JSON');
    }
    const header = (action as { braketSchemaHeader?: { name?: unknown } } | undefined)?.braketSchemaHeader;
    if (header?.name !== 'braket.ir.openqasm.program') {
      throw validation(`unsupported action type ${String(header?.name)}: the local simulator runs braket.ir.openqasm.program`);
    }
    const source = (action as { source?: unknown }).source;
    if (typeof source !== 'string') throw validation('action.source must be an OpenQASM 3 program');
    const deviceParameters = body.deviceParameters;
    const id = crypto.randomUUID();
    const task: QuantumTaskRecord = {
      arn: `arn:aws:braket:${region}:${accountId}:quantum-task/${id}`,
      id,
      status: BraketStatus.CREATED,
      deviceArn,
      deviceParameters:
        typeof deviceParameters === 'string' ? deviceParameters : JSON.stringify(deviceParameters ?? {}),
      shots,
      outputS3Bucket,
      outputS3Directory: prefix === '' ? id : `${prefix}/${id}`,
      source,
      action,
      createdAt: new Date(),
      endedAt: undefined,
      failureReason: undefined,
      tags: optStringMap(body, 'tags', VALIDATION),
      jobToken: optString(body, 'jobToken', VALIDATION),
      timer: undefined,
      resultKey: undefined,
      numSuccessfulShots: undefined,
    };
    tasks.set(task.arn, task);
    if (clientToken !== undefined) tasksByToken.set(clientToken, task);
    setTaskStatus(task, BraketStatus.CREATED);
    task.timer = later(0, () => {
      setTaskStatus(task, BraketStatus.QUEUED);
      task.timer = later(queueDelayMs, () => {
        task.timer = undefined;
        startTask(task);
      });
    });
    return { quantumTaskArn: task.arn };
  }

  function getQuantumTask(arn: string, query: URLSearchParams): Json {
    const task = findTask(arn);
    const detail: Json = {
      ...taskDetail(task),
      deviceParameters: task.deviceParameters,
      jobArn: undefined,
      numSuccessfulShots: task.numSuccessfulShots,
    };
    if (query.getAll('additionalAttributeNames').includes('QueueInfo') && task.status === BraketStatus.QUEUED) {
      detail.queueInfo = { queue: 'QUANTUM_TASKS_QUEUE', position: '1', queuePriority: task.jobToken ? 'Priority' : 'Normal' };
    }
    return clean(detail);
  }

  function cancelQuantumTask(arn: string): Json {
    const task = findTask(arn);
    if (TERMINAL.has(task.status)) {
      throw new AwsServiceError(CONFLICT, 409, `Quantum task ${arn} is already ${task.status} and cannot be cancelled`);
    }
    if (task.status !== BraketStatus.CANCELLING) {
      task.timer = cancelTimer(task.timer);
      setTaskStatus(task, BraketStatus.CANCELLING);
      task.timer = later(cancelMs, () => {
        task.timer = undefined;
        if (task.status === BraketStatus.CANCELLING) setTaskStatus(task, BraketStatus.CANCELLED);
      });
    }
    return { quantumTaskArn: task.arn, cancellationStatus: BraketStatus.CANCELLING };
  }

  // ---- search -----------------------------------------------------------------------------

  interface Filter {
    readonly name: string;
    readonly values: readonly string[];
    readonly operator: string;
  }

  function parseFilters(body: Json, allowed: readonly string[]): Filter[] {
    const raw = body.filters;
    if (!Array.isArray(raw)) throw validation('filters is required');
    return raw.map((item: unknown, i) => {
      const f = (item ?? {}) as Json;
      const name = typeof f.name === 'string' ? f.name : '';
      if (!allowed.includes(name)) throw validation(`filters[${i}].name must be one of ${allowed.join(', ')}`);
      const values = Array.isArray(f.values) ? f.values.filter((v): v is string => typeof v === 'string') : [];
      const operator = typeof f.operator === 'string' ? f.operator : 'EQUAL';
      if (!['EQUAL', 'LT', 'LTE', 'GT', 'GTE', 'BETWEEN'].includes(operator)) {
        throw validation(`filters[${i}].operator ${operator} is not valid`);
      }
      return { name, values, operator };
    });
  }

  function matches(filter: Filter, value: string | Date | undefined): boolean {
    if (value === undefined) return false;
    if (value instanceof Date) {
      const t = value.getTime();
      const [a, b] = filter.values.map((v) => Date.parse(v));
      switch (filter.operator) {
        case 'LT': return a !== undefined && t < a;
        case 'LTE': return a !== undefined && t <= a;
        case 'GT': return a !== undefined && t > a;
        case 'GTE': return a !== undefined && t >= a;
        case 'BETWEEN': return a !== undefined && b !== undefined && t >= a && t <= b;
        default: return filter.values.some((v) => Date.parse(v) === t);
      }
    }
    if (filter.operator !== 'EQUAL') throw validation(`operator ${filter.operator} applies only to createdAt`);
    return filter.values.includes(value);
  }

  function page<T>(items: readonly T[], body: Json): { items: T[]; nextToken?: string } {
    const offset = decodeToken(optString(body, 'nextToken', VALIDATION), VALIDATION);
    const max = typeof body.maxResults === 'number' && body.maxResults > 0 ? Math.min(body.maxResults, 100) : 100;
    const slice = items.slice(offset, offset + max);
    return offset + max < items.length ? { items: slice, nextToken: encodeToken(offset + max) } : { items: slice };
  }

  function searchQuantumTasks(body: Json): Json {
    const filters = parseFilters(body, ['status', 'deviceArn', 'createdAt', 'quantumTaskArn', 'jobArn']);
    const found = [...tasks.values()].filter((task) =>
      filters.every((f) => {
        const field: Record<string, string | Date | undefined> = {
          status: task.status,
          deviceArn: task.deviceArn,
          createdAt: task.createdAt,
          quantumTaskArn: task.arn,
          jobArn: undefined,
        };
        return matches(f, field[f.name]);
      }),
    );
    const { items, nextToken } = page(found, body);
    return clean({ quantumTasks: items.map(taskDetail), nextToken });
  }

  // ---- hybrid jobs ------------------------------------------------------------------------

  function jobSummary(job: HybridJobRecord): Json {
    return clean({
      status: job.status,
      jobArn: job.arn,
      jobName: job.name,
      device: (job.request.deviceConfig as Json | undefined)?.device,
      createdAt: iso(job.createdAt),
      startedAt: iso(job.startedAt),
      endedAt: iso(job.endedAt),
      tags: job.request.tags,
    });
  }

  function setJobStatus(job: HybridJobRecord, status: BraketStatus, eventType: string, message?: string): void {
    job.status = status;
    const now = new Date();
    job.events.push(message === undefined ? { eventType, timeOfEvent: now } : { eventType, timeOfEvent: now, message });
    if (status === BraketStatus.RUNNING) job.startedAt = now;
    if (TERMINAL.has(status)) {
      job.endedAt = now;
      job.timer = cancelTimer(job.timer);
      job.runtimeTimer = cancelTimer(job.runtimeTimer);
      if (job.workDir !== undefined) {
        rmSync(job.workDir, { recursive: true, force: true });
        job.workDir = undefined;
      }
    }
    if (stopped) return;
    opts.events.emit({
      source: 'aws.braket',
      'detail-type': 'Braket Job State Change',
      detail: { ...jobSummary(job), failureReason: job.failureReason },
      resources: [job.arn],
    });
  }

  function jobCommand(job: HybridJobRecord): string | undefined {
    const spec = job.request.algorithmSpecification as Json | undefined;
    const script = spec?.scriptModeConfig as Json | undefined;
    return typeof script?.entryPoint === 'string' ? script.entryPoint : undefined;
  }

  async function startHybridJob(job: HybridJobRecord): Promise<void> {
    if (job.status !== BraketStatus.QUEUED) return;
    const command = jobCommand(job);
    if (command === undefined) {
      job.failureReason = 'The local cloud runs hybrid jobs from algorithmSpecification.scriptModeConfig.entryPoint (a shell command); container images are not supported';
      setJobStatus(job, BraketStatus.FAILED, 'FAILED', job.failureReason);
      return;
    }
    const request = job.request;
    const script = (request.algorithmSpecification as Json).scriptModeConfig as Json;
    const output = request.outputDataConfig as Json;
    const workDir = mkdtempSync(join(tmpdir(), 'valence-braket-job-'));
    job.workDir = workDir;
    const hpFile = join(workDir, 'hyperparameters.json');
    writeFileSync(hpFile, JSON.stringify(request.hyperParameters ?? {}));
    const env = workloadEnvironment(opts.environment?.(), {
      AMZN_BRAKET_JOB_NAME: job.name,
      AMZN_BRAKET_JOB_ARN: job.arn,
      AMZN_BRAKET_DEVICE_ARN: String((request.deviceConfig as Json).device),
      AMZN_BRAKET_JOB_RESULTS_S3_PATH: String(output.s3Path),
      AMZN_BRAKET_SCRIPT_ENTRY_POINT: command,
      AMZN_BRAKET_SCRIPT_S3_URI: typeof script.s3Uri === 'string' ? script.s3Uri : '',
      AMZN_BRAKET_HP_FILE: hpFile,
      AMZN_BRAKET_JOB_RESULTS_DIR: workDir,
    });
    job.spawning = true;
    let group: ProcessGroup;
    try {
      group = await ProcessGroup.start({ command: ['/bin/sh', '-c', command], env, cwd: workDir });
    } catch (e) {
      job.spawning = false;
      if (stopped) return;
      // Re-read: CancelJob may have run while the spawn was in flight.
      if ((job.status as BraketStatus) === BraketStatus.CANCELLING) {
        setJobStatus(job, BraketStatus.CANCELLED, 'CANCELLED');
        return;
      }
      job.failureReason = `Could not start the job: ${(e as Error).message}`;
      setJobStatus(job, BraketStatus.FAILED, 'FAILED', job.failureReason);
      return;
    }
    job.spawning = false;
    job.spawnCount++;
    job.process = group;
    job.lastProcess = group;
    track(group.exited.then((exit) => onJobExit(job, group, exit)));
    if (stopped) {
      group.signalGroup('SIGKILL');
      return;
    }
    if ((job.status as BraketStatus) === BraketStatus.CANCELLING) {
      void group.terminate(graceMs);
      return;
    }
    setJobStatus(job, BraketStatus.RUNNING, 'RUNNING');
    const maxRuntime = (request.stoppingCondition as Json | undefined)?.maxRuntimeInSeconds;
    if (typeof maxRuntime === 'number' && maxRuntime > 0) {
      job.runtimeTimer = later(maxRuntime * 1000, () => {
        job.runtimeTimer = undefined;
        if (job.process !== group || job.stopping !== undefined) return;
        job.stopping = 'max-runtime';
        void group.terminate(graceMs);
      });
    }
  }

  function onJobExit(job: HybridJobRecord, group: ProcessGroup, exit: ProcessExit): void {
    if (job.process === group) job.process = undefined;
    job.exitCode = exit.exitCode;
    job.runtimeTimer = cancelTimer(job.runtimeTimer);
    if (stopped || TERMINAL.has(job.status)) return;
    if (job.status === BraketStatus.CANCELLING) {
      setJobStatus(job, BraketStatus.CANCELLED, 'CANCELLED');
    } else if (job.stopping === 'max-runtime') {
      const seconds = (job.request.stoppingCondition as Json).maxRuntimeInSeconds;
      job.failureReason = `The job exceeded its maximum runtime of ${String(seconds)} seconds`;
      job.events.push({ eventType: 'MAX_RUNTIME_EXCEEDED', timeOfEvent: new Date() });
      setJobStatus(job, BraketStatus.FAILED, 'FAILED', job.failureReason);
    } else if (exit.exitCode === 0) {
      setJobStatus(job, BraketStatus.COMPLETED, 'COMPLETED');
    } else {
      const lastLine = group.stderrTail().trim().split('\n').at(-1) ?? '';
      job.failureReason = `AlgorithmError: the job exited with code ${exit.exitCode}${lastLine ? `: ${lastLine}` : ''}`;
      setJobStatus(job, BraketStatus.FAILED, 'FAILED', job.failureReason);
    }
  }

  function findJob(arn: string): HybridJobRecord {
    const job = hybridJobs.get(arn);
    if (job === undefined) throw new AwsServiceError(NOT_FOUND, 404, `Job ${arn} not found`);
    return job;
  }

  function createJob(body: Json): Json {
    const clientToken = optString(body, 'clientToken', VALIDATION);
    if (clientToken !== undefined) {
      const existing = jobsByToken.get(clientToken);
      if (existing !== undefined) return { jobArn: existing.arn };
    }
    const name = reqString(body, 'jobName', VALIDATION);
    if (!/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,50}$/.test(name)) throw validation(`invalid jobName ${name}`);
    reqString(body, 'roleArn', VALIDATION);
    for (const key of ['algorithmSpecification', 'outputDataConfig', 'instanceConfig', 'deviceConfig']) {
      const value = body[key];
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw validation(`${key} is required`);
    }
    reqString(body.outputDataConfig as Json, 's3Path', VALIDATION);
    reqString(body.deviceConfig as Json, 'device', VALIDATION);
    const arn = `arn:aws:braket:${region}:${accountId}:job/${name}`;
    if (hybridJobs.has(arn)) throw new AwsServiceError(CONFLICT, 409, `A job named ${name} already exists`);
    const job: HybridJobRecord = {
      arn,
      name,
      request: structuredClone(body),
      status: BraketStatus.QUEUED,
      createdAt: new Date(),
      startedAt: undefined,
      endedAt: undefined,
      failureReason: undefined,
      events: [],
      timer: undefined,
      runtimeTimer: undefined,
      process: undefined,
      lastProcess: undefined,
      spawnCount: 0,
      spawning: false,
      exitCode: undefined,
      stopping: undefined,
      workDir: undefined,
    };
    hybridJobs.set(arn, job);
    if (clientToken !== undefined) jobsByToken.set(clientToken, job);
    setJobStatus(job, BraketStatus.QUEUED, 'QUEUED_FOR_EXECUTION');
    job.timer = later(queueDelayMs, () => {
      job.timer = undefined;
      track(startHybridJob(job));
    });
    return { jobArn: arn };
  }

  function getJob(arn: string, query: URLSearchParams): Json {
    const job = findJob(arn);
    const r = job.request;
    const detail: Json = {
      status: job.status,
      jobArn: job.arn,
      roleArn: r.roleArn,
      jobName: job.name,
      outputDataConfig: r.outputDataConfig,
      algorithmSpecification: r.algorithmSpecification,
      instanceConfig: r.instanceConfig,
      createdAt: iso(job.createdAt),
      startedAt: iso(job.startedAt),
      endedAt: iso(job.endedAt),
      failureReason: job.failureReason,
      hyperParameters: r.hyperParameters,
      inputDataConfig: r.inputDataConfig,
      stoppingCondition: r.stoppingCondition,
      checkpointConfig: r.checkpointConfig,
      deviceConfig: r.deviceConfig,
      events: job.events.map((e) => ({ ...e, timeOfEvent: iso(e.timeOfEvent) })),
      tags: r.tags,
      billableDuration:
        job.startedAt !== undefined ? (job.endedAt ?? new Date()).getTime() - job.startedAt.getTime() : undefined,
    };
    if (query.getAll('additionalAttributeNames').includes('QueueInfo') && job.status === BraketStatus.QUEUED) {
      detail.queueInfo = { queue: 'JOBS_QUEUE', position: '1' };
    }
    return clean(detail);
  }

  function cancelHybridJob(arn: string): Json {
    const job = findJob(arn);
    if (TERMINAL.has(job.status)) {
      throw new AwsServiceError(CONFLICT, 409, `Job ${arn} is already ${job.status} and cannot be cancelled`);
    }
    if (job.status !== BraketStatus.CANCELLING) {
      job.timer = cancelTimer(job.timer);
      job.stopping = 'cancel';
      setJobStatus(job, BraketStatus.CANCELLING, 'CANCELLING');
      if (job.process !== undefined) {
        void job.process.terminate(graceMs);
      } else if (!job.spawning) {
        // Still queued: nothing was started, and nothing will be.
        job.timer = later(cancelMs, () => {
          job.timer = undefined;
          if (job.status === BraketStatus.CANCELLING) setJobStatus(job, BraketStatus.CANCELLED, 'CANCELLED');
        });
      }
      // else: startHybridJob sees CANCELLING as soon as the spawn settles.
    }
    return { jobArn: job.arn, cancellationStatus: BraketStatus.CANCELLING };
  }

  function searchJobs(body: Json): Json {
    const filters = parseFilters(body, ['status', 'device', 'jobName', 'jobArn', 'createdAt']);
    const found = [...hybridJobs.values()].filter((job) =>
      filters.every((f) => {
        const field: Record<string, string | Date | undefined> = {
          status: job.status,
          device: (job.request.deviceConfig as Json).device as string,
          jobName: job.name,
          jobArn: job.arn,
          createdAt: job.createdAt,
        };
        return matches(f, field[f.name]);
      }),
    );
    const { items, nextToken } = page(found, body);
    return clean({ jobs: items.map(jobSummary), nextToken });
  }

  function getDevice(arn: string): Json {
    if (!/^arn:aws:braket:[^:]*:[^:]*:device\/.+/.test(arn)) throw new AwsServiceError(NOT_FOUND, 404, `Device ${arn} not found`);
    const simulator = arn.includes('/quantum-simulator/');
    const parts = arn.split('/');
    return {
      deviceArn: arn,
      deviceName: (parts.at(-1) ?? 'local').toUpperCase(),
      providerName: parts.at(-2) ?? 'local',
      deviceType: simulator ? 'SIMULATOR' : 'QPU',
      deviceStatus: 'ONLINE',
      deviceCapabilities: JSON.stringify({
        braketSchemaHeader: { name: 'braket.device_schema.simulators.gate_model_simulator_device_capabilities', version: '1' },
        action: { 'braket.ir.openqasm.program': { actionType: 'braket.ir.openqasm.program', version: ['1'] } },
        service: { shotsRange: [0, 100000] },
        paradigm: { qubitCount: 20 },
      }),
      deviceQueueInfo: [{ queue: 'QUANTUM_TASKS_QUEUE', queueSize: '0', queuePriority: 'Normal' }],
    };
  }

  // ---- routing ----------------------------------------------------------------------------

  interface Route {
    readonly operation: string;
    /** HTTP status of a success: 201 for the Create operations, as Braket answers. */
    readonly successStatus: number;
    run(body: Json, label: string, query: URLSearchParams): Json;
  }

  function route(method: string, segments: readonly string[]): { route: Route; label: string } | undefined {
    const [first, label, action] = segments;
    const ok = (operation: string, run: Route['run'], l = ''): { route: Route; label: string } => ({
      route: { operation, run, successStatus: operation.startsWith('Create') ? 201 : 200 },
      label: l,
    });
    if (segments.length === 1 && method === 'POST') {
      if (first === 'quantum-task') return ok('CreateQuantumTask', (b) => createQuantumTask(b));
      if (first === 'quantum-tasks') return ok('SearchQuantumTasks', (b) => searchQuantumTasks(b));
      if (first === 'job') return ok('CreateJob', (b) => createJob(b));
      if (first === 'jobs') return ok('SearchJobs', (b) => searchJobs(b));
    }
    if (segments.length === 2 && method === 'GET' && label !== undefined) {
      if (first === 'quantum-task') return ok('GetQuantumTask', (_b, l, q) => getQuantumTask(l, q), label);
      if (first === 'job') return ok('GetJob', (_b, l, q) => getJob(l, q), label);
      if (first === 'device') return ok('GetDevice', (_b, l) => getDevice(l), label);
    }
    if (segments.length === 3 && method === 'PUT' && action === 'cancel' && label !== undefined) {
      if (first === 'quantum-task') return ok('CancelQuantumTask', (_b, l) => cancelQuantumTask(l), label);
      if (first === 'job') return ok('CancelJob', (_b, l) => cancelHybridJob(l), label);
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, _ctx: RequestContext): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let found: ReturnType<typeof route>;
    try {
      // Labels are percent-encoded ARNs (their '/' as %2F): split first, then decode.
      found = route(req.method ?? 'GET', url.pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s)));
    } catch (e) {
      sendFailure(res, e, 'InternalServiceException');
      return;
    }
    await serveJsonOperation(req, res, {
      operation: found?.route.operation,
      described: `Braket ${req.method} ${url.pathname}`,
      hooks: opts.hooks,
      badRequestCode: VALIDATION,
      internalCode: 'InternalServiceException',
      ...(found ? { successStatus: found.route.successStatus } : {}),
      run: (body) => found!.route.run(body, found!.label, url.searchParams),
    });
  }

  async function stop(): Promise<void> {
    stopped = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    for (const job of hybridJobs.values()) job.process?.signalGroup('SIGKILL');
    await waitForExits(
      () => [...pending],
      () => [...hybridJobs.values()].some((j) => j.spawning),
    );
    for (const job of hybridJobs.values()) {
      if (job.workDir !== undefined) rmSync(job.workDir, { recursive: true, force: true });
      job.workDir = undefined;
    }
  }

  return {
    signingName: 'braket',
    handle,
    stop,
    quantumTasks: () =>
      [...tasks.values()].map((t) => ({
        quantumTaskArn: t.arn,
        taskId: t.id,
        status: t.status,
        failureReason: t.failureReason,
        resultKey: t.resultKey,
        shots: t.shots,
      })),
    hybridJobs: () =>
      [...hybridJobs.values()].map((j) => {
        const group = j.process ?? j.lastProcess;
        return {
          jobArn: j.arn,
          jobName: j.name,
          status: j.status,
          failureReason: j.failureReason,
          pid: group?.pid,
          processRunning: j.process !== undefined && j.process.exitStatus === undefined,
          spawnCount: j.spawnCount,
          exitCode: j.exitCode,
          stdout: group?.stdoutTail() ?? '',
          stderr: group?.stderrTail() ?? '',
        };
      }),
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
