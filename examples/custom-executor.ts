/**
 * A custom executor: the plugin contract of valence's cancellation, in TypeScript.
 *
 * `ShellExecutor` runs an electron's returned shell command as a local process group — a
 * stand-in for a scheduler such as Slurm or a remote HPC queue. It shows both halves of the
 * contract:
 * - `run(task)` checks the node's cancel flag before each of its own steps with
 *   `task.checkCancelled()` (which throws `TaskCancelledError`), and records its job handle
 *   with `task.recordJobHandle()` before it waits;
 * - `cancel(taskMetadata, jobHandle)` receives that stored handle and stops the work.
 */
import { spawn } from 'node:child_process';
import { CustomExecutor, electron, lattice, type CustomTask, type TaskMetadata } from '../sdk/index.ts';

/** Options of {@link ShellExecutor}. */
export type ShellExecutorOptions = {
  /** Seconds between SIGTERM and SIGKILL when the job is cancelled. @default 1 */
  readonly graceSeconds?: number;
};

/** Runs the shell command an electron returns as its own process group. */
export class ShellExecutor extends CustomExecutor<ShellExecutorOptions> {
  static override readonly executorName = 'shell';

  constructor(options: ShellExecutorOptions = {}) {
    super(options);
  }

  /** The work: ask the electron for a command, then run it and wait. */
  override async run(task: CustomTask): Promise<{ exitCode: number | null }> {
    await task.checkCancelled(); // before "provisioning" (building the command)
    const command = String(await task.electron(...task.args));
    await task.checkCancelled(); // before "submitting"
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await task.recordJobHandle(`pid:${child.pid}`);
    return { exitCode: await exited };
  }

  /** Stops the process group named by the job handle `pid:<pid>`. */
  override cancel(_task: TaskMetadata, jobHandle: string): Promise<boolean> {
    const pid = Number(jobHandle.replace(/^pid:/, ''));
    if (!Number.isInteger(pid) || pid <= 0) return Promise.resolve(false);
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      return Promise.resolve(false); // already gone
    }
    const graceMs = (this.options.graceSeconds ?? 1) * 1000;
    setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // it stopped within its grace period
      }
    }, graceMs).unref();
    return Promise.resolve(true);
  }
}

const shell = new ShellExecutor();

/** Builds a shell command that appends a heartbeat line to `file` every 50 ms, for `seconds`. */
const heartbeat = electron({ executor: shell }, function heartbeat(file: string, seconds: number) {
  return `end=$(( $(date +%s) + ${Math.ceil(seconds)} )); while [ $(date +%s) -lt $end ]; do date +%s%N >> '${file}'; sleep 0.05; done`;
});

/** One node on the custom executor. */
export const shellJob = lattice({ name: 'shellJob' }, (file: string, seconds: number) => heartbeat(file, seconds));
