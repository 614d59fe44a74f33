/**
 * valence's job runner: the command of every Batch job (and of LocalExecutor processes).
 *
 * It reads the node's inputs from S3, runs the electron with a task context, and writes the
 * output (or the error) back. SIGTERM — what Batch's `TerminateJob` sends first — aborts the
 * electron's signal; the process exits when the electron settles or when its grace period
 * ends, and Batch's SIGKILL follows anyway. A forced cancel (`force: true`) wrote a marker
 * (`payloadKeys.forceStop`) before its TerminateJob: seen on SIGTERM, the process exits at
 * once, without the grace period.
 *
 * Environment: the contract's `ENV.workflows` (module path or URL) and `ENV.bucket`, the
 * per-job `JOB_ENV` variables (dispatch, node, lattice, electron, attempt, grace, child
 * dispatch, pack), and the AWS SDK's own variables (see sdk/contract.ts).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAwsClients } from '../aws.ts';
import { TaskCancelledError } from '../errors.ts';
import { runWithTaskContext } from '../model/context.ts';
import { PayloadNotFoundError, PayloadStore, payloadKeys } from './payloads.ts';
import { serializeError } from './serialization.ts';
import { findElectron, importWorkflows, type WorkflowsModule } from './workflows.ts';
import { ENV, JOB_ENV } from '../contract.ts';

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`valence job runner: environment variable ${name} is not set\n`);
    process.exit(2);
  }
  return value;
}

/** Options of {@link runJob}. */
export interface RunJobOptions {
  /**
   * The workflows module, when it is bundled with the job runner (the Batch job image).
   * @default imported from the path in `ENV.workflows`
   */
  readonly workflows?: WorkflowsModule;
}

/** Runs one node; resolves with the process exit code. */
export async function runJob(options: RunJobOptions = {}): Promise<number> {
  const dispatchId = env(JOB_ENV.dispatchId);
  // A packed array job: child index i runs the i-th node of the pack.
  const pack = process.env[JOB_ENV.packNodes]?.split(',').map(Number);
  const nodeId = pack ? pack[Number(env('AWS_BATCH_JOB_ARRAY_INDEX'))]! : Number(env(JOB_ENV.nodeId));
  const aws = createAwsClients();
  const payloads = new PayloadStore(aws.s3, env(ENV.bucket));
  const controller = new AbortController();
  const graceMs = Number(process.env[JOB_ENV.graceSeconds] ?? '10') * 1000;
  process.once('SIGTERM', () => {
    controller.abort(new TaskCancelledError('terminated (SIGTERM)', { dispatchId, nodeId }));
    setTimeout(() => process.exit(143), graceMs).unref();
    // A forced cancel: no grace period (137, as SIGKILL would).
    payloads.getText(payloadKeys.forceStop(dispatchId, nodeId)).then(
      () => process.exit(137),
      () => undefined,
    );
  });
  try {
    const module = options.workflows ?? (await importWorkflows(env(ENV.workflows)));
    const buildArgs = process.env[JOB_ENV.childDispatch] ? await payloads.getText(payloadKeys.args(dispatchId)) : undefined;
    const fn = findElectron(module, env(JOB_ENV.lattice), env(JOB_ENV.electron), buildArgs);
    let inputs: { args: unknown[] };
    try {
      inputs = await payloads.getValue<{ args: unknown[] }>(payloadKeys.nodeInputs(dispatchId, nodeId));
    } catch (error) {
      // A packed node cancelled before the array job was submitted has no inputs: nothing runs.
      if (pack && error instanceof PayloadNotFoundError) return 0;
      throw error;
    }
    const { args } = inputs;
    const output = await runWithTaskContext(
      // Batch counts attempts itself when it retries a job (AWS_BATCH_JOB_ATTEMPT, from 1).
      { dispatchId, nodeId, attempt: Number(process.env.AWS_BATCH_JOB_ATTEMPT ?? process.env[JOB_ENV.attempt] ?? '1'), signal: controller.signal },
      () => fn(...args),
    );
    if (controller.signal.aborted) return 143;
    await payloads.putValue(payloadKeys.nodeOutput(dispatchId, nodeId), output);
    return 0;
  } catch (error) {
    if (controller.signal.aborted) return 143;
    await payloads.putValue(payloadKeys.nodeError(dispatchId, nodeId), serializeError(error)).catch(() => undefined);
    process.stderr.write(`valence job runner: node ${nodeId} failed: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  } finally {
    aws.destroy();
  }
}

// Run as a script (`node job-runner.js`); a bundle that imports this module calls runJob itself.
if (/[\\/]job-runner\.[jt]s$/.test(import.meta.url) && process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  void runJob().then((code) => process.exit(code));
}
