/**
 * A CPU profiler for every thread of this process: the main thread and each worker thread
 * (Lambda sandboxes, and the electron threads they start), each written as a `.cpuprofile`.
 *
 * Why not `node --cpu-prof`: it profiles the main thread, and a worker only when the worker's
 * own `execArgv` carries the flag. The local Lambda service starts sandboxes with
 * `execArgv: []` (the host's flags are not the sandbox's business), so their electron threads
 * inherit nothing either, and Node refuses `--cpu-prof` in `NODE_OPTIONS`. The inspector sees
 * every worker of the process from the main thread (`NodeWorker.enable`, nested workers
 * included), so this attaches to each, starts its V8 profiler before it runs a line
 * (`waitForDebuggerOnStart`) and stops them all at once. Nothing outside bench/ changes, and
 * nothing happens unless a benchmark calls {@link startAllThreadsProfile}.
 *
 * A thread that exits before {@link AllThreadsProfile.stop} loses its profile (V8 keeps it in
 * the thread); in the no-op benchmarks sandboxes and electron threads stay warm, and the count
 * of lost threads is reported.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

/** What one stopped profile run produced. */
export interface ProfileFiles {
  readonly dir: string;
  /** One entry per profiled thread that was still alive at stop. */
  readonly threads: readonly { readonly file: string; readonly title: string; readonly url: string; readonly role: ThreadRole }[];
  /** Workers attached during the run that exited before stop (their samples are lost). */
  readonly exitedBeforeStop: number;
}

/** What a thread does, from its entry module: the rows the analyser groups by. */
export type ThreadRole = 'main (local cloud + client)' | 'Lambda sandbox (step handler)' | 'electron thread' | 'module loader hooks (tsx)' | 'other worker';

/** A running all-threads profile. */
export interface AllThreadsProfile {
  /** Stops every profiler and writes `{label}.{n}.{role}.cpuprofile` files into `dir`. */
  stop(dir: string, label: string): Promise<ProfileFiles>;
}

interface Attached {
  readonly sessionId: string;
  readonly title: string;
  readonly url: string;
  alive: boolean;
  started: Promise<void>;
}

/** Classifies a worker by the module it started from. */
export function threadRoleOf(url: string): ThreadRole {
  if (url.includes('/localstack/lambda/')) return 'Lambda sandbox (step handler)';
  // From source an electron thread boots through ts-worker-boot; with bundled handlers the step
  // handler's bundle is its own electron worker entry (localstack/handler-bundles.ts).
  if (url.includes('ts-worker-boot') || url.includes('electron-worker') || /\/valence-local-handlers\/step-[0-9a-f]+\.mjs$/.test(url)) return 'electron thread';
  // module.register() (tsx) runs loader hooks on a thread of their own, one per registering thread.
  if (url.includes('modules/esm/worker') || url === '' || url.startsWith('node:')) return 'module loader hooks (tsx)';
  return 'other worker';
}

const WORKER_REPLY_TIMEOUT_MS = 10_000;

/**
 * Starts V8's sampling profiler on the main thread and on every worker thread, present and
 * future. `intervalUs` is the sampling interval (V8's default is 1,000 µs).
 */
export async function startAllThreadsProfile(options: { intervalUs?: number } = {}): Promise<AllThreadsProfile> {
  const interval = options.intervalUs ?? 1000;
  const session = new Session();
  session.connect();
  const post = <T = unknown>(method: string, params: object = {}): Promise<T> =>
    new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));

  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  const attached = new Map<string, Attached>();
  const toWorker = <T = unknown>(sessionId: string, method: string, params: object = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`worker ${sessionId} did not answer ${method}`));
      }, WORKER_REPLY_TIMEOUT_MS);
      timer.unref();
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      session.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) });
    });

  session.on('NodeWorker.receivedMessageFromWorker', (message: { params: { sessionId: string; message: string } }) => {
    const reply = JSON.parse(message.params.message) as { id?: number; result?: unknown; error?: { message: string } };
    if (reply.id === undefined) return;
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    clearTimeout(waiter.timer);
    if (reply.error) waiter.reject(new Error(reply.error.message));
    else waiter.resolve(reply.result);
  });
  session.on('NodeWorker.attachedToWorker', (message: { params: { sessionId: string; workerInfo: { title: string; url: string }; waitingForDebugger: boolean } }) => {
    const { sessionId, workerInfo, waitingForDebugger } = message.params;
    const entry: Attached = { sessionId, title: workerInfo.title, url: workerInfo.url, alive: true, started: Promise.resolve() };
    entry.started = (async () => {
      try {
        await toWorker(sessionId, 'Profiler.enable');
        await toWorker(sessionId, 'Profiler.setSamplingInterval', { interval });
        await toWorker(sessionId, 'Profiler.start');
      } catch {
        entry.alive = false;
      } finally {
        if (waitingForDebugger) session.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id: nextId++, method: 'Runtime.runIfWaitingForDebugger' }) });
      }
    })();
    attached.set(sessionId, entry);
  });
  session.on('NodeWorker.detachedFromWorker', (message: { params: { sessionId: string } }) => {
    const entry = attached.get(message.params.sessionId);
    if (entry) entry.alive = false;
  });

  // The inspector answers some of these asynchronously; keep the loop alive until it has.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval });
    await post('Profiler.start');
    await post('NodeWorker.enable', { waitForDebuggerOnStart: true });
  } finally {
    clearInterval(keepAlive);
  }

  return {
    async stop(dir, label) {
      mkdirSync(dir, { recursive: true });
      const threads: { file: string; title: string; url: string; role: ThreadRole }[] = [];
      let n = 0;
      const write = (profile: unknown, title: string, url: string, role: ThreadRole): void => {
        const slug = role.split(' ')[0]!.toLowerCase();
        const file = join(dir, `${label}.${String(n++).padStart(2, '0')}.${slug}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        threads.push({ file, title, url, role });
      };
      const main = await post<{ profile: unknown }>('Profiler.stop');
      write(main.profile, 'main', 'main', 'main (local cloud + client)');
      let exited = 0;
      for (const entry of attached.values()) {
        await entry.started;
        if (!entry.alive) {
          exited++;
          continue;
        }
        try {
          const stopped = await toWorker<{ profile: unknown }>(entry.sessionId, 'Profiler.stop');
          write(stopped.profile, entry.title, entry.url, threadRoleOf(entry.url));
        } catch {
          exited++;
        }
      }
      await post('NodeWorker.disable').catch(() => undefined);
      await post('Profiler.disable').catch(() => undefined);
      session.disconnect();
      writeFileSync(join(dir, `${label}.threads.json`), JSON.stringify({ threads, exitedBeforeStop: exited }, null, 2));
      return { dir, threads, exitedBeforeStop: exited };
    },
  };
}
