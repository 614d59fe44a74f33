/**
 * The Lambda runtime inside one sandbox (a worker thread): loads the handler module once, then
 * runs one invocation at a time, as a warm Lambda execution environment does.
 *
 * Loaded by `bootstrap.mjs` after it registered tsx, so handler modules load as written (`.ts`).
 * The main thread enforces timeouts by terminating this worker; nothing here needs to.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { FromSandbox, InvocationContextData, SandboxData, ToSandbox } from './protocol.ts';
import { toErrorPayload } from './protocol.ts';

type Handler = (event: unknown, context: unknown, callback?: (error?: unknown, result?: unknown) => void) => unknown;

const port = parentPort;
if (!port) throw new Error('runtime.ts must run in a worker thread');
const data = workerData as SandboxData;

function post(message: FromSandbox): void {
  port!.postMessage(message);
}

async function loadHandler(): Promise<Handler | undefined> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(data.entryUrl)) as Record<string, unknown>;
  } catch (error) {
    const payload = toErrorPayload(error);
    const syntax = error instanceof SyntaxError;
    post({
      type: 'initError',
      error: {
        errorType: syntax ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError',
        errorMessage: `${payload.errorType}: ${payload.errorMessage}`,
        ...(payload.trace ? { trace: payload.trace } : {}),
      },
    });
    return undefined;
  }
  // A CommonJS module imported from ESM puts its exports on `default`.
  const direct = mod[data.exportName];
  const viaDefault = (mod['default'] as Record<string, unknown> | undefined)?.[data.exportName];
  const handler = typeof direct === 'function' ? direct : viaDefault;
  if (typeof handler !== 'function') {
    post({
      type: 'initError',
      error: {
        errorType: 'Runtime.HandlerNotFound',
        errorMessage: `${data.handlerSetting} is undefined or not exported (${fileURLToPath(data.entryUrl)})`,
      },
    });
    return undefined;
  }
  return handler as Handler;
}

function lambdaContext(fields: InvocationContextData, settle: (error: unknown, result?: unknown) => void): object {
  return {
    ...fields,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, fields.deadlineMs - Date.now()),
    // The legacy completion methods of the Node.js runtime.
    done: (error?: unknown, result?: unknown) => settle(error ?? undefined, result),
    succeed: (result?: unknown) => settle(undefined, result),
    fail: (error: unknown) => settle(error ?? new Error('handled'), undefined),
  };
}

/** Carries a non-Error failure reason (e.g. `callback('boom')`) through a promise rejection, unwrapped before reporting. */
class HandlerFailure extends Error {
  constructor(readonly reason: unknown) {
    super('handler failed');
  }
}

async function invoke(handler: Handler, message: ToSandbox): Promise<void> {
  const { requestId } = message;
  let settled = false;
  const done = new Promise<unknown>((resolve, reject) => {
    const settle = (error: unknown, result?: unknown): void => {
      if (settled) return;
      settled = true;
      if (error !== undefined && error !== null) reject(error instanceof Error ? error : new HandlerFailure(error));
      else resolve(result);
    };
    const event: unknown = JSON.parse(message.eventJson);
    const context = lambdaContext(message.context, settle);
    if (message.announceStart) post({ type: 'started', requestId });
    try {
      const returned = handler.length >= 3
        ? handler(event, context, (error, result) => settle(error, result))
        : handler(event, context);
      if (returned && typeof (returned as PromiseLike<unknown>).then === 'function') {
        (returned as PromiseLike<unknown>).then((result) => settle(undefined, result), (error: unknown) => settle(error ?? new Error('rejected')));
      } else if (handler.length < 3) {
        settle(undefined, returned);
      }
    } catch (error) {
      settle(error ?? new Error('thrown'));
    }
  });
  try {
    const result = await done;
    let payloadJson: string;
    try {
      payloadJson = JSON.stringify(result) ?? 'null';
    } catch (error) {
      post({ type: 'error', requestId, error: { errorType: 'Runtime.MarshalError', errorMessage: `Unable to marshal response: ${toErrorPayload(error).errorMessage}` } });
      return;
    }
    post({ type: 'result', requestId, payloadJson });
  } catch (error) {
    post({ type: 'error', requestId, error: toErrorPayload(error instanceof HandlerFailure ? error.reason : error) });
  }
}

const handler = await loadHandler();
if (handler) {
  // One invocation at a time: the main thread sends the next only after this one answered.
  port.on('message', (message: ToSandbox) => {
    if (message.type === 'invoke') void invoke(handler, message);
  });
  post({ type: 'ready' });
}
