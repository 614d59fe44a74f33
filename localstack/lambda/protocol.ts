/**
 * Messages between the local Lambda service (main thread) and one sandbox (a worker thread).
 *
 * Payloads cross the boundary as JSON text, as they cross Lambda's runtime API: the handler sees
 * exactly what a deployed handler would see after JSON round-tripping, never shared objects.
 */

/** What a sandbox needs to load its handler; sent as the worker's `workerData`. */
export interface SandboxData {
  /** File URL of the handler module. */
  readonly entryUrl: string;
  /** Exported handler name. */
  readonly exportName: string;
  /** The handler setting as Lambda shows it (`file.export`), for error messages. */
  readonly handlerSetting: string;
  /**
   * A JavaScript build of the sandbox runtime, for a JavaScript handler: the sandbox then
   * registers no TypeScript loader (see plain-runtime.ts). Absent: tsx is registered.
   */
  readonly runtimeUrl?: string;
}

/** The Lambda context fields that are plain data; the sandbox adds the methods. */
export interface InvocationContextData {
  readonly functionName: string;
  readonly functionVersion: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  readonly awsRequestId: string;
  readonly logGroupName: string;
  readonly logStreamName: string;
  /** Epoch milliseconds at which the invocation times out. */
  readonly deadlineMs: number;
}

/** Error payload in the shape Lambda's Invoke API reports. */
export interface LambdaErrorPayload {
  errorType: string;
  errorMessage: string;
  trace?: string[];
}

/** Main thread → sandbox. */
export type ToSandbox = {
  readonly type: 'invoke';
  readonly requestId: string;
  readonly eventJson: string;
  readonly context: InvocationContextData;
  /**
   * Whether the main thread needs the `started` message: only an injected crash waits for the
   * handler to start. Otherwise the message is not sent, which saves a cross-thread message
   * (and a wake-up of the main thread) per invocation.
   */
  readonly announceStart: boolean;
};

/** Sandbox → main thread. */
export type FromSandbox =
  | { readonly type: 'ready' }
  | { readonly type: 'initError'; readonly error: LambdaErrorPayload }
  | { readonly type: 'started'; readonly requestId: string }
  | { readonly type: 'result'; readonly requestId: string; readonly payloadJson: string }
  | { readonly type: 'error'; readonly requestId: string; readonly error: LambdaErrorPayload };

/** Turns anything a handler throws into Lambda's error payload (`throw 'x'` gives type `string`). */
export function toErrorPayload(thrown: unknown): LambdaErrorPayload {
  if (thrown instanceof Error) {
    const payload: LambdaErrorPayload = {
      errorType: thrown.name || thrown.constructor.name || 'Error',
      errorMessage: thrown.message,
    };
    if (thrown.stack) payload.trace = thrown.stack.split('\n');
    return payload;
  }
  if (typeof thrown === 'object' && thrown !== null) {
    const record = thrown as Record<string, unknown>;
    return {
      errorType: typeof record['name'] === 'string' ? record['name'] : 'object',
      errorMessage: typeof record['message'] === 'string' ? record['message'] : safeJson(thrown),
    };
  }
  return { errorType: typeof thrown, errorMessage: String(thrown) };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
