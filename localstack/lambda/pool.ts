/**
 * The warm sandboxes of one function and its concurrency limit: at most `limit` invocations
 * hold a slot at once, each in its own sandbox; a finished sandbox stays warm for the next
 * invocation; further invocations wait in arrival order.
 */
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

/** Sandboxes of one function. */
export class SandboxPool {
  readonly #limit: number;
  readonly #idleMs: number;
  readonly #spawn: () => SandboxOptions;
  readonly #idle: { sandbox: Sandbox; timer: NodeJS.Timeout }[] = [];
  readonly #all = new Set<Sandbox>();
  readonly #waiters: Waiter[] = [];
  #active = 0;
  #closed = false;

  constructor(options: { limit: number; idleMs: number; spawn: () => SandboxOptions }) {
    this.#limit = Math.max(1, options.limit);
    this.#idleMs = options.idleMs;
    this.#spawn = options.spawn;
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
   * Takes a slot and a sandbox for it (warm if one is idle). Waits while the limit is reached;
   * an aborted signal gives up the wait (rejects with the signal's reason).
   */
  acquire(signal?: AbortSignal): Promise<Sandbox> {
    if (this.#closed) return Promise.reject(new PoolClosedError());
    signal?.throwIfAborted();
    if (this.#active < this.#limit) {
      this.#active++;
      return Promise.resolve(this.#take());
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
    if (!sandbox.alive || this.#closed) {
      // close() already terminated every sandbox it knew; a dead one is simply forgotten.
      this.#all.delete(sandbox);
    } else {
      const timer = setTimeout(() => this.#expire(sandbox), this.#idleMs);
      timer.unref();
      this.#idle.push({ sandbox, timer });
    }
    const next = this.#waiters.shift();
    if (next) {
      // The slot passes straight to the next waiter.
      next.resolve(this.#take());
    } else {
      this.#active--;
    }
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

  #take(): Sandbox {
    while (this.#idle.length > 0) {
      const warm = this.#idle.pop()!;
      clearTimeout(warm.timer);
      if (warm.sandbox.alive) return warm.sandbox;
      this.#all.delete(warm.sandbox);
    }
    const sandbox = new Sandbox(this.#spawn());
    this.#all.add(sandbox);
    return sandbox;
  }

  #expire(sandbox: Sandbox): void {
    const index = this.#idle.findIndex((entry) => entry.sandbox === sandbox);
    if (index < 0) return;
    this.#idle.splice(index, 1);
    this.#all.delete(sandbox);
    void sandbox.terminate();
  }
}
