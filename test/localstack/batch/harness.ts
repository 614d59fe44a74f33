/**
 * A stand-in for the local cloud's router, for testing one service alone: the service behind
 * a real HTTP server on a free loopback port, counting hooks, and an event sink that records.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudEvent, EventSink, InjectedFault, LocalService, RequestContext, ServiceHooks } from '../../../localstack/core/service.ts';

/** Hooks that count operations and inject the faults a test queues. */
export interface RecordingHooks extends ServiceHooks {
  readonly counts: Map<string, number>;
  /** Faults answered, one per call, for the named operation. */
  readonly faults: Map<string, InjectedFault[]>;
}

/** Creates {@link RecordingHooks}. */
export function recordingHooks(): RecordingHooks {
  const counts = new Map<string, number>();
  const faults = new Map<string, InjectedFault[]>();
  return {
    counts,
    faults,
    count(op) {
      counts.set(op, (counts.get(op) ?? 0) + 1);
    },
    fault(op) {
      return Promise.resolve(faults.get(op)?.shift());
    },
    crashInvocation: () => false,
  };
}

/** An event sink that keeps every event. */
export interface RecordingEvents extends EventSink {
  readonly events: CloudEvent[];
}

/** Creates {@link RecordingEvents}. */
export function recordingEvents(): RecordingEvents {
  const events: CloudEvent[] = [];
  return { events, emit: (event) => void events.push(event) };
}

/** A service listening on loopback. */
export interface ServedService {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** Serves `service` on a free loopback port, as the router would. */
export async function serve(service: LocalService, hooks: ServiceHooks): Promise<ServedService> {
  const server: Server = createServer((req, res) => {
    const ctx: RequestContext = {
      region: 'us-east-1',
      accessKeyId: 'test',
      accountId: '000000000000',
      count: (op) => hooks.count(op),
      fault: (op) => hooks.fault(op),
    };
    void Promise.resolve(service.handle(req, res, ctx)).catch((e: unknown) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Static credentials and region for SDK clients pointed at a local endpoint. */
export function clientConfig(endpoint: string) {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
