/**
 * The warm sandboxes of one function and its concurrency limit: at most `limit` invocations
 * hold a slot at once, each in its own sandbox; a finished sandbox stays warm for the next
 * invocation; further invocations wait in arrival order.
 *
 * Up to `eagerSandboxes` sandboxes start as soon as invocations need them. Past that, how fast
 * the pool grows is bounded, as Lambda bounds a function's scaling rate: at most `maxStarting` sandboxes are in their init phase at once, and none starts while the host
 * has less than `minFreeBytes` of free memory (a warning says so, once). An invocation that
 * finds no warm sandbox and may not start one waits for whichever comes first, a sandbox
 * released or an init finished. Nor does one start while the host's cores are busy (this
 * process's CPU, or the 1-minute load average, at or above the core count's 80 % / 100 %): a
 * cold start then only takes CPU from the invocations it would serve. So a
 * burst of short CPU-bound invocations is served by the warm sandboxes rather than one cold start
 * each, while invocations that wait (sleep, I/O) still get a sandbox each, up to `limit`.
 */
import { availableParallelism, freemem, loadavg } from 'node:os';
import { Sandbox } from './sandbox.ts';
import type { SandboxOptions } from './sandbox.ts';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

interface Waiter {
  readonly resolve: (sandbox: Sandbox) => void;
  readonly reject: (reason: unknown) => void;
}

/** Raised to waiters when the pool is closed while they wait for a slot. */
export class PoolClosedError extends ValenceError {
  override readonly name = 'PoolClosedError';
  constructor() {
    super(ErrorCode.LOCAL_SERVICE_STOPPED, 'the local Lambda service is stopping');
  }
}

/** Options of one function's pool. */
export interface SandboxPoolOptions {
  /** Invocations at once (the function's concurrency). */
  readonly limit: number;
  /** How long an idle warm sandbox is kept. */
  readonly idleMs: number;
  readonly spawn: () => SandboxOptions;
  /** Sandboxes started on demand before the growth limits below apply. @default 8 */
  readonly eagerSandboxes?: number;
  /** Sandboxes in their init phase at once, past `eagerSandboxes`. @default 2 */
  readonly maxStarting?: number;
  /** No sandbox starts while the host's free memory is below this. @default 512 MiB */
  readonly minFreeBytes?: number;
}

/** Sandboxes of one function. */
export class SandboxPool {
  readonly #limit: number;
  readonly #idleMs: number;
  readonly #spawn: () => SandboxOptions;
  readonly #maxStarting: number;
  readonly #eager: number;
  readonly #minFreeBytes: number;
  readonly #idle: { sandbox: Sandbox; timer: NodeJS.Timeout }[] = [];
  readonly #all = new Set<Sandbox>();
  readonly #waiters: Waiter[] = [];
  #active = 0;
  #starting = 0;
  #closed = false;
  #warnedMemory = false;

  constructor(options: SandboxPoolOptions) {
    this.#limit = Math.max(1, options.limit);
    this.#idleMs = options.idleMs;
    this.#spawn = options.spawn;
    this.#maxStarting = Math.max(1, options.maxStarting ?? 2);
    this.#eager = Math.max(1, options.eagerSandboxes ?? 8);
    this.#minFreeBytes = options.minFreeBytes ?? 512 * 1024 * 1024;
  }

  /** Invocations holding a slot right now. */
  get active(): number {
    return this.#active;
  }

  /** Sandboxes alive (busy or warm). */
  get size(): number {
    return this.#all.size;
  }

  /**
   * Takes a slot and a sandbox for it (warm if one is idle, else a new one when the pool may
   * grow). Waits while neither is possible; an aborted signal gives up the wait (rejects with
   * the signal's reason).
   */
  acquire(signal?: AbortSignal): Promise<Sandbox> {
    if (this.#closed) return Promise.reject(new PoolClosedError());
    signal?.throwIfAborted();
    if (this.#waiters.length === 0) {
      const sandbox = this.#tryTake();
      if (sandbox) return Promise.resolve(sandbox);
    }
    return new Promise<Sandbox>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        const reason: unknown = signal?.reason;
        reject(reason instanceof Error ? reason : new Error(String(reason), { cause: reason }));
      };
      const waiter: Waiter = {
        resolve: (sandbox) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(sandbox);
        },
        reject: (reason) => {
          signal?.removeEventListener('abort', onAbort);
          reject(reason instanceof Error ? reason : new Error(String(reason), { cause: reason }));
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Returns a slot; a live sandbox stays warm, a dead one is forgotten. */
  release(sandbox: Sandbox): void {
    this.#active--;
    if (!sandbox.alive || this.#closed) {
      // close() already terminated every sandbox it knew; a dead one is simply forgotten.
      this.#all.delete(sandbox);
    } else {
      const timer = setTimeout(() => this.#expire(sandbox), this.#idleMs);
      timer.unref();
      this.#idle.push({ sandbox, timer });
    }
    this.#pump();
  }

  /** Rejects waiters, terminates every sandbox and waits for the workers to exit. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new PoolClosedError());
    for (const { timer } of this.#idle.splice(0)) clearTimeout(timer);
    const all = [...this.#all];
    this.#all.clear();
    await Promise.all(all.map((sandbox) => sandbox.terminate()));
  }

  /** Hands sandboxes to waiters, in arrival order, while the pool can. */
  #pump(): void {
    while (this.#waiters.length > 0 && !this.#closed) {
      const sandbox = this.#tryTake();
      if (!sandbox) return;
      this.#waiters.shift()!.resolve(sandbox);
    }
  }

  /** A slot and a sandbox for it, or undefined when the invocation must wait. */
  #tryTake(): Sandbox | undefined {
    if (this.#active >= this.#limit) return undefined;
    while (this.#idle.length > 0) {
      const warm = this.#idle.pop()!;
      clearTimeout(warm.timer);
      if (warm.sandbox.alive) {
        this.#active++;
        return warm.sandbox;
      }
      this.#all.delete(warm.sandbox);
    }
    // A pool below its eager size always starts one (so an invocation never waits on nothing).
    if (this.#all.size >= this.#eager && (this.#starting >= this.#maxStarting || !this.#hostAllowsStart())) return undefined;
    const sandbox = new Sandbox(this.#spawn());
    this.#all.add(sandbox);
    this.#active++;
    this.#starting++;
    void sandbox.ready().finally(() => {
      this.#starting--;
      this.#pump();
    });
    return sandbox;
  }

  #hostAllowsStart(): boolean {
    return !processSaturatesCpu() && (loadavg()[0] ?? 0) < availableParallelism() && this.#memoryAllowsStart();
  }

  #memoryAllowsStart(): boolean {
    if (freemem() >= this.#minFreeBytes) return true;
    if (!this.#warnedMemory) {
      this.#warnedMemory = true;
      process.emitWarning(`local Lambda: free memory is below ${Math.round(this.#minFreeBytes / 2 ** 20)} MiB; invocations wait for a warm sandbox instead of starting new ones`);
    }
    return false;
  }

  #expire(sandbox: Sandbox): void {
    const index = this.#idle.findIndex((entry) => entry.sandbox === sandbox);
    if (index < 0) return;
    this.#idle.splice(index, 1);
    this.#all.delete(sandbox);
    void sandbox.terminate();
  }
}

/** How often, and over what window, this process's CPU use is sampled. */
const CPU_SAMPLE_MS = 250;
/** Busy share of the host's cores above which no sandbox starts. */
const CPU_SATURATED = 0.8;
let cpuSample: { at: number; usage: NodeJS.CpuUsage; busy: boolean } | undefined;

/**
 * Whether this process (every thread: the cloud and its sandboxes) used at least
 * {@link CPU_SATURATED} of the host's cores over the last sample window.
 */
function processSaturatesCpu(): boolean {
  const now = performance.now();
  if (!cpuSample) {
    cpuSample = { at: now, usage: process.cpuUsage(), busy: false };
    return false;
  }
  if (now - cpuSample.at >= CPU_SAMPLE_MS) {
    const used = process.cpuUsage(cpuSample.usage);
    const busyShare = (used.user + used.system) / 1000 / (now - cpuSample.at) / availableParallelism();
    cpuSample = { at: now, usage: process.cpuUsage(), busy: busyShare >= CPU_SATURATED };
  }
  return cpuSample.busy;
}
