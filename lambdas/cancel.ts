/**
 * The API handler behind `POST /dispatches/{id}/cancel` and `GET /dispatches/{id}` (AWS_IAM
 * authorized), and the dispatch routes `POST /dispatches` and `POST /uploads` (api-dispatch.ts). Thin: it validates the request — before anything is written, so a bad request
 * leaves the table unchanged — takes the caller's identity from the request context for the
 * audit trail, and calls the SDK runtime. Each request runs under its invocation signal
 * (Lambda's remaining time minus the safety margin); one that reaches it answers 503, and
 * asking again is safe because a cancel is idempotent.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { API, ENV } from '../sdk/contract.ts';
import type { CancelReport } from '../sdk/runtime/cancel.ts';
import { DispatchNotFoundError, ErrorCode, InvocationDeadlineError, ValenceError } from '../sdk/errors.ts';
import { runInvocation, runtimeContextFromEnv, type InvocationTimer, type RuntimeContext } from '../sdk/runtime/context.ts';
import { selfInvoker } from './self-invoke.ts';
import { CancelUnfinishedError, InvalidCancelRequestError, openCancel, parseTaskIds, readCancelReport, workOnCancel, type OpenCancel } from '../sdk/runtime/cancel.ts';
import { withInvocationSignal } from '../sdk/runtime/context.ts';
import { callSignal, shareSignal } from '../sdk/runtime/signals.ts';
import { dispatchRoute, DispatchRouteError, statusRoute, uploadRoute } from './api-dispatch.ts';
import { importWorkflows } from '../sdk/runtime/workflows.ts';
import { logger, NO_NODE } from './log.ts';

/** The parts of an API Gateway REST proxy event this handler reads. */
export interface ApiEvent {
  readonly httpMethod: string;
  readonly resource?: string;
  readonly path: string;
  readonly pathParameters?: Record<string, string | undefined> | null;
  readonly queryStringParameters?: Record<string, string | undefined> | null;
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
  readonly requestContext?: { readonly identity?: { readonly userArn?: string | null; readonly caller?: string | null; readonly accessKey?: string | null } };
}

/** An API Gateway proxy response. */
export interface ApiResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Dependencies of the cancel API handler. */
export interface CancelHandlerDeps {
  readonly ctx?: RuntimeContext;
  /** Imports the workflows module so custom executor classes are registered for `cancel()`. */
  readonly loadExecutors?: () => Promise<void>;
  /**
   * Carries an open request on outside this invocation: the deployed handler invokes itself
   * asynchronously (`InvocationType: Event`) with a {@link CancelContinuation}. Without one (no
   * `AWS_LAMBDA_FUNCTION_NAME`), the sweeper finishes what an answer left open.
   */
  readonly continueLater?: (event: CancelContinuation) => Promise<void>;
}

/** The event a cancel handler sends itself to carry a large or interrupted cancel on (issue 13). */
export interface CancelContinuation {
  readonly valenceCancelContinuation: {
    readonly dispatchId: string;
    readonly requestId: string;
    /** How many continuations came before this one (bounded by {@link MAX_CONTINUATIONS}). */
    readonly hop: number;
  };
}

/** Continuations one request may chain before it is left to the sweeper (a dispatch that keeps failing cannot loop forever). */
const MAX_CONTINUATIONS = 40;

/** A continuation stops at a step boundary this long before its invocation's deadline, checkpoints, and hands on. */
const CONTINUATION_RESERVE_MS = 5_000;

function isContinuation(event: unknown): event is CancelContinuation {
  const c = (event as Partial<CancelContinuation> | null)?.valenceCancelContinuation;
  return typeof c === 'object' && c !== null && typeof c.dispatchId === 'string' && typeof c.requestId === 'string' && typeof c.hop === 'number';
}

const DISPATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const MAX_REASON = 1024;

function json(statusCode: number, body: unknown): ApiResponse {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** Thrown for request bodies the endpoint refuses; it answers `status` (400, or 413 for a body too large) with the message. */
class BadRequestError extends ValenceError {
  override readonly name: string = 'BadRequestError';
  constructor(
    message: string,
    /** The HTTP status to answer with. */
    readonly status: 400 | 413 = 400,
  ) {
    super(ErrorCode.CANCEL_INVALID_REQUEST, message);
  }
}

/** The body's size in bytes, from its encoded length (nothing is decoded to learn it). */
function bodyBytes(event: ApiEvent): number {
  const body = event.body ?? '';
  return event.isBase64Encoded ? Math.floor((body.length * 3) / 4) : Buffer.byteLength(body, 'utf8');
}

function parseBody(event: ApiEvent): { taskIds?: (number | string)[]; reason?: string; force?: boolean } {
  if (!event.body) return {};
  // Refused before it is decoded or parsed: a huge body costs neither memory nor a JSON parse.
  if (bodyBytes(event) > API.maxCancelBodyBytes) {
    throw new BadRequestError(`The request body is ${bodyBytes(event)} bytes; a cancel request may be at most ${API.maxCancelBodyBytes} bytes`, 413);
  }
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequestError('The request body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('The request body must be a JSON object { taskIds?, reason?, force? }');
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => k !== 'taskIds' && k !== 'reason' && k !== 'force');
  if (unknown.length > 0) throw new BadRequestError(`Unknown field(s) in the request body: ${unknown.join(', ')}; expected taskIds, reason and force`);
  if (record['force'] !== undefined && typeof record['force'] !== 'boolean') throw new BadRequestError(`"force" must be true or false, got ${JSON.stringify(record['force'])}`);
  if (record['reason'] !== undefined && (typeof record['reason'] !== 'string' || record['reason'].length > MAX_REASON)) {
    throw new BadRequestError(`"reason" must be a string of at most ${MAX_REASON} characters`);
  }
  let taskIds: (number | string)[] | undefined;
  try {
    taskIds = parseTaskIds(record['taskIds']);
  } catch (error) {
    if (error instanceof InvalidCancelRequestError) throw new BadRequestError(error.message);
    throw error;
  }
  return { ...(taskIds ? { taskIds } : {}), ...(record['reason'] !== undefined ? { reason: record['reason'] } : {}), ...(record['force'] === true ? { force: true } : {}) };
}

const REQUEST_ID = /^[0-9a-f-]{36}$/;

/** `GET /dispatches/{id}/cancels/{requestId}`: the request's final report once done, else its progress so far. */
async function cancelReport(
  ctx: RuntimeContext,
  dispatchId: string,
  requestId: string,
  loadExecutors: () => Promise<void>,
  continueLater: ((event: CancelContinuation) => Promise<void>) | undefined,
): Promise<ApiResponse> {
  if (!REQUEST_ID.test(requestId)) return json(400, { message: `Invalid cancel request id ${JSON.stringify(requestId)}` });
  const dispatch = await ctx.store.requireDispatch(dispatchId, ctx.signal);
  let item = await ctx.store.getCancelRequest(dispatchId, requestId, ctx.signal);
  if (!item) return json(404, { message: `No cancel request ${requestId} for dispatch ${dispatchId}` });
  const large = dispatch.nodeCount > ANSWER_INLINE_MAX_NODES;
  if (item.state === 'OPEN' && large && continueLater && Date.now() - Date.parse(item.progressAt ?? item.requestedAt) > IDLE_LARGE_REQUEST_MS) {
    // A large request cannot be advanced within one answer (listing its nodes alone takes
    // longer): a poll that finds it idle starts a new continuation chain instead, so nothing
    // waits on one continuation surviving. The touch keeps the next polls from starting more.
    await ctx.store.touchCancelRequest(dispatchId, item, new Date().toISOString(), undefined, ctx.signal);
    await continueLater({ valenceCancelContinuation: { dispatchId, requestId, hop: 0 } }).catch(() => undefined);
  } else if (item.state === 'OPEN' && mayAdvance(item, dispatch.nodeCount, Date.now())) {
    // The caller's polls advance the request too: nothing waits on one continuation surviving
    // (or, on the local cloud, on a cold worker starting). Only safe steps: waiting for stops
    // already sent and writing the report, or resuming a request nobody has touched lately.
    await workUntilAnswer(ctx, { ...item, dispatchId }, loadExecutors, Date.now());
    item = (await ctx.store.getCancelRequest(dispatchId, requestId, ctx.signal)) ?? item;
  }
  const rest = item;
  // A report too large for its item (over 300 KB, about 2,000 nodes) is in S3, and past about
  // 45,000 nodes it would pass Lambda's 6 MB response limit: it is handed over as a presigned
  // GET (`reportUrl`, as a large result is), which the SDK follows.
  const reportUrl = item.reportKey ? await getSignedUrl(ctx.aws.s3, new GetObjectCommand({ Bucket: ctx.config.bucket, Key: item.reportKey }), { expiresIn: API.uploadUrlSeconds }) : undefined;
  const report = item.report ? await readCancelReport(ctx, dispatchId, requestId) : undefined;
  return json(200, {
    dispatchId,
    requestId,
    state: item.state ?? 'DONE',
    requestedAt: item.requestedAt,
    requestedBy: item.requestedBy,
    targets: item.targets,
    ...(rest.attempts !== undefined ? { attempts: rest.attempts } : {}),
    ...(rest.progressAt ? { progressAt: rest.progressAt } : {}),
    ...(rest.lastError ? { lastError: rest.lastError } : {}),
    ...(rest.finishedAt ? { finishedAt: rest.finishedAt } : {}),
    ...(rest.progress ? { progress: rest.progress } : {}),
    ...(report ? { report } : {}),
    ...(reportUrl ? { reportUrl } : {}),
  });
}

/**
 * API Gateway gives up on an integration after 29 s and answers the caller 504, losing the
 * report. The handler therefore answers within this budget, whatever Lambda's own timeout:
 * a cancel not finished by then is recorded and open, and answers 202 with its request id.
 * The budget bounds waiting for the durable record, which must be written before any answer.
 */
const API_ANSWER_BUDGET_MS = 25_000;

/**
 * Issue 13: "the endpoint answers within 1 s at any dispatch size". Work on the request stops
 * at the first step boundary past {@link ANSWER_WORK_MS} after the handler started, and is cut
 * (aborted) at {@link ANSWER_HARD_MS} if one call is slow; either way the request continues in
 * a continuation invocation and the caller gets 202.
 */
const ANSWER_WORK_MS = 600;
/**
 * Dispatches with more nodes than this are not worked on in the answer at all: they answer
 * 202 at once and the continuation does everything. Measured on the local cloud (load 1.3–2.2):
 * 2,002 nodes were cut at 793 ms with the continuation invoked by 808 ms, but 5,002 nodes were
 * cut at 856 ms and their continuation's invoke, queued behind the cut work, took until 1,513 ms.
 * With 2,000 here a 1,002-node cancel (all terminal 2.8 s later, far past the answer's 600 ms)
 * still tried, was cut, and answered 202 after 946 ms (load 2.1–2.7): too close to the 1 s goal
 * for work that could not finish anyway. 500 nodes end within the answer on a quiet machine.
 */
const ANSWER_INLINE_MAX_NODES = 500;
const ANSWER_HARD_MS = 850;

/** The invocation's clock, capped so that its deadline falls within `budgetMs` of now. */
function answerWithin(context: InvocationTimer | undefined, budgetMs: number): InvocationTimer {
  const startedAt = Date.now();
  return {
    getRemainingTimeInMillis: () => {
      const lambdaLeft = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : Number.POSITIVE_INFINITY;
      return Math.min(lambdaLeft, budgetMs - (Date.now() - startedAt));
    },
  };
}

/**
 * Works on a freshly recorded request until the answer's budget: the report when it finished
 * by then, else undefined (the work is aborted; it is resumable from the request item).
 */
async function workUntilAnswer(ctx: RuntimeContext, record: OpenCancel, loadExecutors: () => Promise<void>, startedAt: number): Promise<CancelReport | undefined> {
  const cut = new AbortController();
  const work = workOnCancel(withInvocationSignal(ctx, shareSignal(callSignal(ctx.signal, cut.signal))), record, { loadExecutors }, startedAt + ANSWER_WORK_MS);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.max(0, startedAt + ANSWER_HARD_MS - Date.now()))));
  try {
    const outcome = await Promise.race([work, late]);
    if (outcome !== 'late' && outcome.done) return outcome.report;
    return undefined;
  } catch (error) {
    // Recorded and open: note why on the request (not awaited: that write may be throttled
    // too, and the SDK's retry backoff does not end at the abort); the continuation resumes it.
    void ctx.store.touchCancelRequest(record.dispatchId, record, new Date().toISOString(), describe(error)).catch(() => undefined);
    return undefined;
  } finally {
    clearTimeout(timer);
    cut.abort(new Error('the cancel endpoint answered; a continuation carries the request on'));
    // Not awaited, for the same reason: what it was doing is idempotent and resumable.
    work.catch(() => undefined);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A request left without a live worker this long may be resumed by whoever reads it. */
const IDLE_REQUEST_MS = 5_000;
/**
 * The same for a large request, whose continuation records no progress while it lists the
 * nodes and stops the execution (20,000 nodes: 2 s and 3.5 s at load 4).
 */
const IDLE_LARGE_REQUEST_MS = 15_000;

/**
 * Whether a poll may work on an open request of a dispatch small enough to be worked on within
 * an answer: its stops are sent (only waiting and the report remain), or nobody touched it
 * lately (its continuation was lost). A large request's polls do not work on it (an idle one
 * gets a new continuation instead, in {@link cancelReport}): at 20,000
 * nodes each poll's attempt listed every node again, cut at 850 ms, once a second, and slowed
 * the continuation doing the work (its bulk writes took two extra hops).
 */
function mayAdvance(item: { readonly stopsSentAt?: string; readonly progressAt?: string; readonly requestedAt: string }, dispatchNodes: number, nowMs: number): boolean {
  if (dispatchNodes > ANSWER_INLINE_MAX_NODES) return false;
  return item.stopsSentAt !== undefined || nowMs - Date.parse(item.progressAt ?? item.requestedAt) > IDLE_REQUEST_MS;
}

/**
 * One continuation: works on the request until shortly before this invocation's deadline,
 * then hands on to the next. A failed attempt (a throttle past the SDK's retries) is noted on
 * the request and retried by the next continuation after a pause, up to {@link MAX_CONTINUATIONS};
 * past that, or without a way to continue, the sweeper finishes it (it resumes stale requests).
 */
async function continueCancel(
  ctx: RuntimeContext,
  event: CancelContinuation,
  context: InvocationTimer | undefined,
  loadExecutors: () => Promise<void>,
  continueLater: ((event: CancelContinuation) => Promise<void>) | undefined,
): Promise<{ readonly done: boolean }> {
  const { dispatchId, requestId, hop } = event.valenceCancelContinuation;
  const next = async (): Promise<void> => {
    if (!continueLater || hop + 1 >= MAX_CONTINUATIONS) return;
    await continueLater({ valenceCancelContinuation: { dispatchId, requestId, hop: hop + 1 } });
  };
  const remaining = (): number => (typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : 60_000);
  return runInvocation(
    ctx,
    context,
    async (invocation) => {
      const item = await invocation.store.getCancelRequest(dispatchId, requestId, invocation.signal);
      if (!item || item.state !== 'OPEN') return { done: true };
      await invocation.store.touchCancelRequest(dispatchId, item, invocation.now().toISOString(), undefined, invocation.signal);
      try {
        const outcome = await workOnCancel(invocation, { ...item, dispatchId }, { loadExecutors }, Date.now() + remaining() - CONTINUATION_RESERVE_MS);
        if (!outcome.done) await next();
        return { done: outcome.done };
      } catch (error) {
        // Cut by this invocation's own deadline (a step outlasted its reserve): hand on at once,
        // while there is time left to invoke the next; a pause now would lose the chain to
        // Lambda's timeout (a 10,000-node subtree cancel did, twice).
        if (invocation.signal.aborted) {
          await next();
          return { done: false };
        }
        await invocation.store.touchCancelRequest(dispatchId, item, invocation.now().toISOString(), describe(error)).catch(() => undefined);
        // A pause before the next attempt lets a throttle pass (it grows with each hop, at most 5 s).
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * (hop + 1), Math.max(0, remaining() - CONTINUATION_RESERVE_MS))));
        await next();
        return { done: false };
      }
    },
    // The deadline's cut leaves this long to invoke the next continuation before Lambda's timeout.
    { marginMs: HAND_ON_MARGIN_MS },
  );
}

/** Time kept, after a continuation's work is cut by its deadline, to invoke the next one. */
const HAND_ON_MARGIN_MS = 3_000;

/** Creates the handler. */
export function createCancelHandler(deps: CancelHandlerDeps = {}): (event: ApiEvent | CancelContinuation, context?: InvocationTimer) => Promise<ApiResponse> {
  let ctx: RuntimeContext | undefined;
  let continueLater: ((event: CancelContinuation) => Promise<void>) | undefined;
  const loadExecutors =
    deps.loadExecutors ??
    (async () => {
      const workflows = process.env[ENV.workflows];
      if (workflows) await importWorkflows(workflows);
    });
  const route = async (invocation: RuntimeContext, event: ApiEvent, dispatchId: string): Promise<ApiResponse> => {
    if (event.httpMethod === 'GET' && event.resource === API.cancelReportPath) return cancelReport(invocation, dispatchId, event.pathParameters?.['requestId'] ?? '', loadExecutors, continueLater);
    if (event.httpMethod === 'GET') {
      const answer = await statusRoute(invocation, dispatchId, event.queryStringParameters?.['result'] === 'true');
      return json(answer.statusCode, answer.body);
    }
    if (event.httpMethod !== 'POST') return json(405, { message: `Method ${event.httpMethod} is not allowed` });
    const body = parseBody(event);
    const identity = event.requestContext?.identity;
    const requestedBy = identity?.userArn ?? identity?.caller ?? identity?.accessKey ?? 'unknown';
    const startedAt = Date.now();
    // Durable first: nothing is flagged or stopped before the request is on record.
    const record = await openCancel(invocation, dispatchId, { ...body, requestedBy });
    // A dispatch this large cannot even be listed within the answer's budget (20,000 nodes
    // took over 1 s): its request goes to the continuation at once, before the answer phase
    // puts any work on the table that the continuation's invoke would queue behind.
    const inline = !continueLater || (record.dispatchNodes ?? 0) <= ANSWER_INLINE_MAX_NODES;
    const report = inline ? await workUntilAnswer(invocation, record, loadExecutors, startedAt) : undefined;
    if (report) return json(200, report);
    let message = 'Cancel request accepted; it continues outside this request (GET its report for progress)';
    try {
      if (continueLater) await continueLater({ valenceCancelContinuation: { dispatchId, requestId: record.requestId, hop: 0 } });
      else message = 'Cancel request accepted; the sweeper finishes it (GET its report for progress)';
    } catch (error) {
      message = `Cancel request accepted; its continuation could not be started (${describe(error)}), so the sweeper finishes it`;
    }
    return json(202, { dispatchId, requestId: record.requestId, accepted: true, message });
  };
  return async (event, context) => {
    ctx ??= deps.ctx ?? runtimeContextFromEnv();
    continueLater ??= deps.continueLater ?? selfInvoker<CancelContinuation>(ctx);
    if (isContinuation(event)) {
      const outcome = await continueCancel(ctx, event, context, loadExecutors, continueLater);
      return json(outcome.done ? 200 : 202, outcome);
    }
    if (event.httpMethod === 'POST' && (event.resource === API.dispatchPath || event.resource === API.uploadPath)) {
      try {
        const answer = await runInvocation(ctx, answerWithin(context, API_ANSWER_BUDGET_MS), (invocation) =>
          event.resource === API.dispatchPath ? dispatchRoute(invocation, event, loadExecutors) : uploadRoute(invocation, event),
        );
        return json(answer.statusCode, answer.body);
      } catch (error) {
        if (error instanceof DispatchRouteError) return json(error.status, { message: error.message, code: error.code });
        if (error instanceof InvocationDeadlineError) return json(503, { message: error.message, code: error.code });
        logger.error('dispatch route failed', { dispatchId: NO_NODE, nodeId: NO_NODE, attempt: NO_NODE, error: error as Error });
        return json(500, { message: `Internal error: ${error instanceof Error ? error.message : String(error)}` });
      }
    }
    const dispatchId = event.pathParameters?.['id'] ?? '';
    if (!DISPATCH_ID.test(dispatchId)) return json(400, { message: `Invalid dispatch id ${JSON.stringify(dispatchId)}` });
    try {
      return await runInvocation(ctx, answerWithin(context, API_ANSWER_BUDGET_MS), (invocation) => route(invocation, event, dispatchId));
    } catch (error) {
      if (error instanceof BadRequestError) return json(error.status, { message: error.message, code: error.code });
      if (error instanceof DispatchNotFoundError) return json(404, { message: error.message });
      // Recorded and left open: the sweeper finishes it, and GET …/cancels/{requestId} shows how far it got.
      // The deadline wraps what it interrupted: a cancel it cut short is recorded and open, so 202.
      const unfinished = error instanceof InvocationDeadlineError && error.cause instanceof CancelUnfinishedError ? error.cause : error;
      if (unfinished instanceof CancelUnfinishedError) return json(202, { dispatchId: unfinished.dispatchId, requestId: unfinished.requestId, accepted: true, message: unfinished.message });
      if (error instanceof CancelUnfinishedError) return json(202, { dispatchId: error.dispatchId, requestId: error.requestId, accepted: true, message: error.message });
      if (error instanceof InvocationDeadlineError) return json(503, { message: error.message, code: error.code });
      logger.error('cancel handler failed', { dispatchId: event.pathParameters?.['id'] ?? NO_NODE, nodeId: NO_NODE, attempt: NO_NODE, error: error as Error });
      return json(500, { message: `Internal error: ${error instanceof Error ? error.message : String(error)}` });
    }
  };
}

/** The deployed handler. */
export const handler = createCancelHandler();
