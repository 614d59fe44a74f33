// Observing that work really stopped: heartbeat files, process ids, polling helpers.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Number of beats in a heartbeat file (0 when absent). */
export function beats(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).length : 0;
}

/** True when the heartbeat file does not grow over `windowMs` (several beat periods). */
export async function heartbeatStopped(file: string, windowMs = 400): Promise<boolean> {
  const before = beats(file);
  await sleep(windowMs);
  return beats(file) === before;
}

/**
 * Waits until the heartbeat file is quiet over one `windowMs` window (it may take a few beats
 * for a stop to land); throws after `timeoutMs` if it keeps growing.
 */
export async function stopsBeating(file: string, timeoutMs = 10_000, windowMs = 400): Promise<void> {
  await waitFor(`${file} to stop growing`, () => heartbeatStopped(file, windowMs), timeoutMs);
}

/** Time of the last beat in a heartbeat file (epoch ms), or undefined when it has none. */
export function lastBeat(file: string): number | undefined {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  return lines.length === 0 ? undefined : Number(lines.at(-1));
}

/** True when a process with this id exists and is not a zombie (an exited, unreaped process). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." — state Z means it already exited.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
