/**
 * A job's container, played by a local process group.
 *
 * A container's processes live and die together: when the essential process exits, or the
 * container is stopped, every process in it goes. A plain `child.kill()` leaves grandchildren
 * alive, so each job is spawned with `detached: true` (its own session and process group,
 * pgid = pid) and signals go to the whole group with `process.kill(-pid, sig)`.
 *
 * Shared by the Batch service and Braket hybrid jobs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { readdirSync, readFileSync } from 'node:fs';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** How a process group ended. */
export interface ProcessExit {
  /** Exit code of the group leader; for a signal death, 128 + signal number as Docker reports it. */
  readonly exitCode: number;
  /** The signal that killed the group leader, if any. */
  readonly signal: NodeJS.Signals | null;
}

/** What to run. */
export interface ProcessGroupOptions {
  /** argv; the first element is the executable, looked up on PATH. */
  readonly command: readonly string[];
  /** The full environment of the process (nothing is inherited implicitly). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Bytes of stdout and of stderr kept (the tail). @default 65536 */
  readonly tailBytes?: number;
}

/** Thrown when the command cannot be started at all (e.g. the executable does not exist). */
export class ProcessStartError extends ValenceError {
  override readonly name = 'ProcessStartError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.LOCAL_PROCESS_START_FAILED, message, options);
  }
}

/** Keeps the last `limit` bytes written to it. */
class BoundedTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** One running (or finished) process group. */
export class ProcessGroup {
  /** Pid of the group leader, which is also the process group id. */
  readonly pid: number;
  /** Resolves once the leader exited, the rest of the group was killed and output was drained. */
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;
  private readonly stdout: BoundedTail;
  private readonly stderr: BoundedTail;

  private constructor(child: ChildProcess, tailBytes: number) {
    if (child.pid === undefined) throw new ProcessStartError('process has no pid');
    this.pid = child.pid;
    this.stdout = new BoundedTail(tailBytes);
    this.stderr = new BoundedTail(tailBytes);
    child.stdout?.on('data', (chunk: Buffer) => this.stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    this.exited = new Promise<ProcessExit>((resolve) => {
      child.once('exit', (code, signal) => {
        const exit: ProcessExit = {
          exitCode: code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0),
          signal,
        };
        this.exit = exit;
        // The container ends with its essential process: nothing of the group survives it.
        this.signalGroup('SIGKILL');
        // Output pipes close when every holder is gone; a process that escaped the group
        // (setsid) could hold them forever, so stop waiting after a moment.
        let settled = false;
        const finish = (): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          child.stdout?.destroy();
          child.stderr?.destroy();
          // A killed process closes its files before it becomes a zombie: the pipes can close
          // while a member is still on its way out. A container is stopped only once nothing of
          // it runs, so wait (briefly) for every member to be gone.
          void groupGone(this.pid, GROUP_GONE_MS).then(() => resolve(exit));
        };
        const timer = setTimeout(finish, 1000);
        if (child.stdout === null && child.stderr === null) finish();
        else child.once('close', finish);
      });
    });
  }

  /** Spawns `command` as the leader of a new process group; rejects if it cannot start. */
  static start(options: ProcessGroupOptions): Promise<ProcessGroup> {
    const [file, ...args] = options.command;
    if (file === undefined || file === '') {
      return Promise.reject(new ProcessStartError('the command is empty'));
    }
    return new Promise<ProcessGroup>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          detached: true,
          env: { ...options.env },
          cwd: options.cwd,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (e) {
        reject(new ProcessStartError(`cannot start ${file}: ${(e as Error).message}`, { cause: e }));
        return;
      }
      child.once('error', (e) => {
        reject(new ProcessStartError(`cannot start ${file}: ${e.message}`, { cause: e }));
      });
      child.once('spawn', () => {
        resolve(new ProcessGroup(child, options.tailBytes ?? 65536));
      });
    });
  }

  /** The exit, once the leader has exited. */
  get exitStatus(): ProcessExit | undefined {
    return this.exit;
  }

  /** Last bytes the group wrote to stdout. */
  stdoutTail(): string {
    return this.stdout.text();
  }

  /** Last bytes the group wrote to stderr. */
  stderrTail(): string {
    return this.stderr.text();
  }

  /** Sends `signal` to every process of the group; false when the group is already gone. */
  signalGroup(signal: NodeJS.Signals): boolean {
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stops the group as `docker stop` stops a container: SIGTERM to the whole group, then
   * SIGKILL once the leader exits or `graceMs` passes, whichever is first.
   */
  async terminate(graceMs: number): Promise<ProcessExit> {
    if (this.exit === undefined) {
      this.signalGroup('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.exited,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    this.signalGroup('SIGKILL');
    return this.exited;
  }

  /** SIGKILL to the whole group at once. */
  kill(): Promise<ProcessExit> {
    this.signalGroup('SIGKILL');
    return this.exited;
  }
}

/** Longest wait for SIGKILLed members of a group to leave the process table. */
const GROUP_GONE_MS = 2000;

/**
 * Resolves once no live (non-zombie) process is left in group `pgid`, or after `timeoutMs`.
 * `kill(-pgid, 0)` answers for zombies too (pid 1 in a container may never reap them), so a
 * group that still answers is checked member by member in /proc.
 */
async function groupGone(pgid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (groupHasLiveMember(pgid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function groupHasLiveMember(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return false;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the command's closing parenthesis: state ppid pgrp …
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

/**
 * True while a process with this pid exists and is not a zombie. Orphans are re-parented to
 * pid 1, which in a container may never reap them; a zombie has already exited and holds no
 * resources but still answers `kill(pid, 0)`.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // No /proc (macOS) or the process vanished between the two checks.
    return process.platform !== 'linux';
  }
}

/**
 * Waits (at most `timeoutMs`) until every exit in `exits()` settled and `spawning()` is false:
 * how a service that runs processes knows its stop left none behind.
 */
export async function waitForExits(exits: () => readonly Promise<unknown>[], spawning: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pending = exits();
    if (pending.length === 0 && !spawning()) return;
    await Promise.race([Promise.allSettled(pending), new Promise((resolve) => setTimeout(resolve, 20))]);
  }
}
