/**
 * Executors: where a node runs.
 *
 * An executor here is configuration plus the cancel plugin contract. Its options travel in the
 * transport graph as JSON (`executor.toJSON()`), and the runtime rebuilds the instance from
 * that JSON with {@link Executor.fromJSON}, so every executor class is registered under a
 * stable name. How a built-in kind runs and stops is its driver in `sdk/runtime/drivers/`;
 * a user's executor extends {@link CustomExecutor} and is its own driver.
 *
 * @module
 */
import { ErrorCode, ValenceError, ValidationCode, ValidationError } from '../errors.ts';

/** The family an executor belongs to; it decides how the compiler wires its nodes. */
export type ExecutorKind = 'lambda' | 'batch' | 'braket' | 'local' | 'custom';

/** JSON-able option values. */
export type ExecutorOptionValue =
  | string
  | number
  | boolean
  | null
  | readonly ExecutorOptionValue[]
  | { readonly [key: string]: ExecutorOptionValue };

/** An executor's options as stored in graph metadata. */
export type ExecutorOptions = { readonly [key: string]: ExecutorOptionValue | undefined };

/** The serialized form of an executor, as stored on every node of a transport graph. */
export interface ExecutorJSON {
  /** The executor family. */
  readonly kind: ExecutorKind;
  /** The registry name of the class ({@link ExecutorClass.executorName}). */
  readonly name: string;
  /** The options the class is rebuilt from: `new Class(options)`. */
  readonly options: ExecutorOptions;
}

/** Identifies the node a cancel request is about. */
export interface TaskMetadata {
  readonly dispatchId: string;
  readonly nodeId: number;
}

/**
 * What a registrable executor class must look like: a constructor that accepts the options
 * its instances serialize, and a static, stable `executorName`.
 */
export interface ExecutorClass {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each executor class takes its own options type (parameter variance)
  new (options: any): Executor;
  /** Stable registry name, stored in graph metadata; `[A-Za-z0-9_.-]`, 1–64 characters. */
  readonly executorName: string;
}

const EXECUTOR_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const registry = new Map<string, ExecutorClass>();

/**
 * Base class of every executor.
 *
 * Subclasses keep their configuration in `options` (JSON-able, validated in the constructor)
 * and implement {@link Executor.cancel}. A subclass is registered under its static
 * `executorName` when its first instance is constructed (or explicitly with
 * {@link Executor.register}), which is what lets the runtime — loading the same workflows
 * module — rebuild it from graph metadata.
 *
 * Write your own executor by extending {@link CustomExecutor}, which adds `run(task)`.
 */
export abstract class Executor<O extends ExecutorOptions = ExecutorOptions> {
  /** Registry name of this class; subclasses must override it with their own. */
  static readonly executorName: string = '';

  /** Validated, JSON-able configuration; also what {@link Executor.fromJSON} passes back to the constructor. */
  readonly options: Readonly<O>;

  constructor(options: O) {
    assertJsonOptions(options, new.target.name);
    this.options = Object.freeze(structuredClone(options));
    Executor.register(new.target as unknown as ExecutorClass);
  }

  /** The executor family; user subclasses are `'custom'`. */
  get kind(): ExecutorKind {
    return 'custom';
  }

  /**
   * Cancel the work behind `jobHandle` (a Batch job ARN, a Braket task ARN, a process id, …)
   * for the node in `taskMetadata`. Resolves `true` when the work was stopped or is
   * stopping, `false` when there was nothing left to stop. Must be safe to call twice.
   * This is the plugin contract of Covalent's cancellation, in TypeScript.
   */
  abstract cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean>;

  /** The form stored in graph metadata. */
  toJSON(): ExecutorJSON {
    const ctor = this.constructor as unknown as ExecutorClass;
    return { kind: this.kind, name: ctor.executorName, options: this.options };
  }

  /**
   * Register an executor class under its static `executorName`. Idempotent for the same
   * class; a different class under a taken name is a `VALIDATION_DUPLICATE_EXECUTOR` error.
   */
  static register(executorClass: ExecutorClass): void {
    const name = executorClass.executorName;
    if (typeof name !== 'string' || !EXECUTOR_NAME.test(name)) {
      throw new ValidationError(
        ValidationCode.INVALID_NAME,
        `executor class ${executorClass.name} needs a static executorName of 1-64 characters [A-Za-z0-9_.-], got ${JSON.stringify(name)}`,
      );
    }
    const existing = registry.get(name);
    if (existing !== undefined && existing !== executorClass) {
      throw new ValidationError(
        ValidationCode.DUPLICATE_EXECUTOR,
        `executor name "${name}" is already registered by class ${existing.name}; give ${executorClass.name} its own static executorName`,
      );
    }
    registry.set(name, executorClass);
  }

  /** The class registered under `name`, if any. */
  static lookup(name: string): ExecutorClass | undefined {
    return registry.get(name);
  }

  /**
   * Rebuild an executor from graph metadata. Throws `VALIDATION_UNKNOWN_EXECUTOR` when the
   * class is not registered in this process (import the module that defines it first).
   */
  static fromJSON(json: ExecutorJSON): Executor {
    const executorClass = registry.get(json.name);
    if (executorClass === undefined) {
      throw new ValidationError(
        ValidationCode.UNKNOWN_EXECUTOR,
        `no executor class is registered as "${json.name}"; import the module that defines it before loading the graph`,
      );
    }
    return new executorClass(json.options);
  }
}

function assertJsonOptions(options: unknown, owner: string): void {
  const problem = jsonProblem(options, 'options');
  if (problem !== undefined) {
    throw new ValidationError(ValidationCode.INVALID_OPTION, `${owner}: ${problem}; executor options must be plain JSON data`);
  }
}

function jsonProblem(value: unknown, path: string): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${path} is not a finite number`;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const problem = jsonProblem(item, `${path}[${index}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return `${path} is not a plain object`;
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      const problem = jsonProblem(item, `${path}.${key}`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  return `${path} is a ${typeof value}`;
}

function invalidOption(executor: string, option: string, expected: string, got: unknown): ValidationError {
  return new ValidationError(
    ValidationCode.INVALID_OPTION,
    `${executor}: option "${option}" must be ${expected}, got ${describe(got)}`,
  );
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return typeof value;
}

function requireString(executor: string, option: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalidOption(executor, option, 'a non-empty string', value);
  return value;
}

function requireInteger(executor: string, option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(executor, option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** Code of the error a built-in executor's `cancel` raises when no runtime driver was provided (see {@link provideDriverCancel}). */
export const EXECUTOR_RUNTIME_MISSING = ErrorCode.EXECUTOR_RUNTIME_MISSING;

/**
 * Stops the work behind a job handle with the driver of the executor's kind. The runtime
 * provides it (`sdk/runtime/drivers`), since model code must not import the runtime.
 */
export type DriverCancel = (executor: ExecutorJSON, taskMetadata: TaskMetadata, jobHandle: string) => Promise<boolean>;

let driverCancel: DriverCancel | undefined;

/**
 * Installs how built-in executors stop work; called once by `sdk/runtime/drivers` when it loads
 * (the public entry `sdk/index.ts` loads it). Not for users.
 */
export function provideDriverCancel(cancel: DriverCancel): void {
  driverCancel = cancel;
}

function cancelWithDriver(executor: Executor, taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
  if (driverCancel === undefined) {
    return Promise.reject(
      new ValenceError(EXECUTOR_RUNTIME_MISSING, 'cancelling built-in executors needs the valence runtime: import valence (sdk/index.ts) or sdk/runtime/drivers first'),
    );
  }
  return driverCancel(executor.toJSON(), taskMetadata, jobHandle);
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
 * Base class of a user's executor: `run(task)` does the work inside the step handler and
 * `cancel(taskMetadata, jobHandle)` stops it. `run` must call `task.checkCancelled()` before
 * each of its steps and record its job handle with `task.recordJobHandle()` before it waits;
 * `cancel` receives that handle and must be safe to call twice. The node's Task state waits
 * for a callback, like Batch nodes.
 *
 * @example
 * ```ts
 * class SlurmExecutor extends CustomExecutor<{ partition: string }> {
 *   static override readonly executorName = 'slurm';
 *   async run(task: CustomTask): Promise<unknown> {
 *     await task.checkCancelled();
 *     const jobId = await sbatch(this.options.partition, String(await task.electron(...task.args)));
 *     await task.recordJobHandle(jobId);
 *     return waitForSlurmJob(jobId, task.signal);
 *   }
 *   async cancel(_task: TaskMetadata, jobHandle: string): Promise<boolean> {
 *     return scancel(jobHandle);
 *   }
 * }
 * ```
 */
export abstract class CustomExecutor<O extends ExecutorOptions = ExecutorOptions> extends Executor<O> {
  /** Runs the node's work; its value is the node's output. */
  abstract run(task: CustomTask): Promise<unknown>;
}

/** Options of {@link LambdaExecutor}: none today. */
export type LambdaExecutorOptions = Record<string, never>;

/**
 * Runs the electron inline in the step handler Lambda: the cheapest executor for work under
 * the Lambda time limit. Its nodes are plain `lambda:invoke` Task states; a cancel request
 * is honoured by the handler's watchdog, which aborts the electron's signal.
 */
export class LambdaExecutor extends Executor<LambdaExecutorOptions> {
  static override readonly executorName: string = 'lambda';

  constructor(options: LambdaExecutorOptions = {}) {
    super(options);
  }

  override get kind(): ExecutorKind {
    return 'lambda';
  }

  /** Stops the work behind `jobHandle` with this kind's runtime driver. */
  override cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
    return cancelWithDriver(this, taskMetadata, jobHandle);
  }
}

/** Options of {@link BatchExecutor}. */
export type BatchExecutorOptions = {
  /** Job queue name or ARN. */
  readonly jobQueue: string;
  /**
   * Job definition name or ARN.
   * @default the orchestrator's generic node-runner job definition
   */
  readonly jobDefinition?: string;
  /** vCPUs per job: a positive number (Fargate accepts 0.25, 0.5, 1, 2, 4, 8, 16). */
  readonly vcpus: number;
  /** Memory per job in MiB: an integer from 4. */
  readonly memoryMiB: number;
  /**
   * GPUs per job.
   * @default 0
   */
  readonly gpus?: number;
};

/**
 * Runs the electron as an AWS Batch job; the node's Task state waits for a callback released
 * on the "Batch Job State Change" event. Cancelling a running job uses `TerminateJob`
 * (`CancelJob` does nothing once a job is STARTING or RUNNING).
 */
export class BatchExecutor extends Executor<BatchExecutorOptions> {
  static override readonly executorName: string = 'batch';

  constructor(options: BatchExecutorOptions) {
    super(BatchExecutor.validate(options));
  }

  private static validate(options: BatchExecutorOptions): BatchExecutorOptions {
    const who = 'BatchExecutor';
    if (options === null || typeof options !== 'object') throw invalidOption(who, 'options', 'an object', options);
    const jobQueue = requireString(who, 'jobQueue', options.jobQueue);
    const jobDefinition = options.jobDefinition === undefined ? undefined : requireString(who, 'jobDefinition', options.jobDefinition);
    if (typeof options.vcpus !== 'number' || !Number.isFinite(options.vcpus) || options.vcpus <= 0 || options.vcpus > 256) {
      throw invalidOption(who, 'vcpus', 'a number above 0 and at most 256', options.vcpus);
    }
    const memoryMiB = requireInteger(who, 'memoryMiB', options.memoryMiB, 4, 4_194_304);
    const gpus = options.gpus === undefined ? undefined : requireInteger(who, 'gpus', options.gpus, 0, 64);
    return {
      jobQueue,
      ...(jobDefinition === undefined ? {} : { jobDefinition }),
      vcpus: options.vcpus,
      memoryMiB,
      ...(gpus === undefined ? {} : { gpus }),
    };
  }

  override get kind(): ExecutorKind {
    return 'batch';
  }

  /** Stops the work behind `jobHandle` with this kind's runtime driver. */
  override cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
    return cancelWithDriver(this, taskMetadata, jobHandle);
  }
}

/** Options of {@link BraketExecutor}. */
export type BraketExecutorOptions = {
  /** Device ARN, e.g. `arn:aws:braket:::device/quantum-simulator/amazon/sv1`. */
  readonly deviceArn: string;
  /** Measurement shots per quantum task: an integer from 0 (exact results on simulators) to 100,000. */
  readonly shots: number;
};

const BRAKET_DEVICE_ARN = /^arn:aws[a-z-]*:braket:[a-z0-9-]*:(\d{12})?:device\/[A-Za-z0-9._/-]+$/;

/**
 * Runs the circuit an electron returns (OpenQASM 3 source) as an Amazon Braket quantum task;
 * the node waits for a callback released on the "Braket Task State Change" event. Cancelling
 * uses `CancelQuantumTask` (or `CancelJob` for hybrid jobs).
 */
export class BraketExecutor extends Executor<BraketExecutorOptions> {
  static override readonly executorName: string = 'braket';
  // Makes the class nominal, so electron() can type Braket outputs as measurement counts.
  readonly #braket = true;

  constructor(options: BraketExecutorOptions) {
    super(BraketExecutor.validate(options));
  }

  private static validate(options: BraketExecutorOptions): BraketExecutorOptions {
    const who = 'BraketExecutor';
    if (options === null || typeof options !== 'object') throw invalidOption(who, 'options', 'an object', options);
    if (typeof options.deviceArn !== 'string' || !BRAKET_DEVICE_ARN.test(options.deviceArn)) {
      throw invalidOption(who, 'deviceArn', 'a Braket device ARN (arn:aws:braket:<region>:<account>:device/...)', options.deviceArn);
    }
    const shots = requireInteger(who, 'shots', options.shots, 0, 100_000);
    return { deviceArn: options.deviceArn, shots };
  }

  override get kind(): ExecutorKind {
    return 'braket';
  }

  /** Stops the work behind `jobHandle` with this kind's runtime driver. */
  override cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
    return cancelWithDriver(this, taskMetadata, jobHandle);
  }
}

/** Options of {@link BraketHybridJobExecutor}. */
export type BraketHybridJobExecutorOptions = {
  /** Device ARN the job's quantum tasks run on. */
  readonly deviceArn: string;
  /**
   * IAM role the job assumes (Braket's `roleArn`).
   * @default the stack's `VALENCE_BRAKET_JOB_ROLE_ARN`
   */
  readonly roleArn?: string;
  /**
   * Classical instance of the job.
   * @default 'ml.m5.large'
   */
  readonly instanceType?: string;
};

/**
 * Runs an Amazon Braket hybrid job. The electron returns the job's algorithm — a
 * {@link HybridJobSpec} — and the node's output is the job's final status. A cancel uses
 * Braket's hybrid-job `CancelJob` (not `CancelQuantumTask`, which does not apply to jobs).
 */
export class BraketHybridJobExecutor extends Executor<BraketHybridJobExecutorOptions> {
  static override readonly executorName: string = 'braket-hybrid';

  constructor(options: BraketHybridJobExecutorOptions) {
    const who = 'BraketHybridJobExecutor';
    if (options === null || typeof options !== 'object') throw invalidOption(who, 'options', 'an object', options);
    if (typeof options.deviceArn !== 'string' || !BRAKET_DEVICE_ARN.test(options.deviceArn)) {
      throw invalidOption(who, 'deviceArn', 'a Braket device ARN (arn:aws:braket:<region>:<account>:device/...)', options.deviceArn);
    }
    super({
      deviceArn: options.deviceArn,
      ...(options.roleArn === undefined ? {} : { roleArn: requireString(who, 'roleArn', options.roleArn) }),
      ...(options.instanceType === undefined ? {} : { instanceType: requireString(who, 'instanceType', options.instanceType) }),
    });
  }

  override get kind(): ExecutorKind {
    return 'braket';
  }

  /** Stops the work behind `jobHandle` with this kind's runtime driver. */
  override cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
    return cancelWithDriver(this, taskMetadata, jobHandle);
  }
}

/** What a {@link BraketHybridJobExecutor} electron returns: the hybrid job's algorithm. */
export interface HybridJobSpec {
  /** Script-mode entry point (on the local cloud: a shell command it runs). */
  readonly entryPoint: string;
  /** S3 URI of the source module, as Braket's `scriptModeConfig.s3Uri`. @default the dispatch's payload prefix */
  readonly sourceS3Uri?: string;
  /** Hyperparameters passed to the job. */
  readonly hyperParameters?: Readonly<Record<string, string>>;
}

/** Options of {@link LocalExecutor}: none today. */
export type LocalExecutorOptions = Record<string, never>;

/**
 * Runs the electron in a local process (its job handle is the process id): for development
 * and for the embedded local cloud. Its node waits for a callback like Batch nodes do.
 */
export class LocalExecutor extends Executor<LocalExecutorOptions> {
  static override readonly executorName: string = 'local';

  constructor(options: LocalExecutorOptions = {}) {
    super(options);
  }

  override get kind(): ExecutorKind {
    return 'local';
  }

  /** Stops the work behind `jobHandle` with this kind's runtime driver. */
  override cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
    return cancelWithDriver(this, taskMetadata, jobHandle);
  }
}

for (const builtIn of [LambdaExecutor, BatchExecutor, BraketExecutor, BraketHybridJobExecutor, LocalExecutor]) Executor.register(builtIn);
