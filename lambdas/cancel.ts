/**
 * The API handler behind `POST /dispatches/{id}/cancel` and `GET /dispatches/{id}` (AWS_IAM
 * authorized). Thin: it validates the request — before anything is written, so a bad request
 * leaves the table unchanged — takes the caller's identity from the request context for the
 * audit trail, and calls the SDK runtime. Each request runs under its invocation signal
 * (Lambda's remaining time minus the safety margin); one that reaches it answers 503, and
 * asking again is safe because a cancel is idempotent.
 */
import { API, ENV } from '../sdk/contract.ts';
import { DispatchNotFoundError, ErrorCode, InvocationDeadlineError, ValenceError } from '../sdk/errors.ts';
import { runInvocation, runtimeContextFromEnv, type InvocationTimer, type RuntimeContext } from '../sdk/runtime/context.ts';
import { cancelDispatch, CancelUnfinishedError, InvalidCancelRequestError, parseTaskIds } from '../sdk/runtime/cancel.ts';
import { describeDispatch } from '../sdk/runtime/describe.ts';
import { importWorkflows } from '../sdk/runtime/workflows.ts';
import { logger, NO_NODE } from './log.ts';

/** The parts of an API Gateway REST proxy event this handler reads. */
export interface ApiEvent {
  readonly httpMethod: string;
  readonly resource?: string;
  readonly path: string;
  readonly pathParameters?: Record<string, string | undefined> | null;
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

function parseBody(event: ApiEvent): { taskIds?: (number | string)[]; reason?: string } {
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
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('The request body must be a JSON object { taskIds?, reason? }');
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => k !== 'taskIds' && k !== 'reason');
  if (unknown.length > 0) throw new BadRequestError(`Unknown field(s) in the request body: ${unknown.join(', ')}; expected taskIds and reason`);
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
  return { ...(taskIds ? { taskIds } : {}), ...(record['reason'] !== undefined ? { reason: record['reason'] } : {}) };
}

const REQUEST_ID = /^[0-9a-f-]{36}$/;

/** `GET /dispatches/{id}/cancels/{requestId}`: the request's final report once done, else its progress so far. */
async function cancelReport(ctx: RuntimeContext, dispatchId: string, requestId: string): Promise<ApiResponse> {
  if (!REQUEST_ID.test(requestId)) return json(400, { message: `Invalid cancel request id ${JSON.stringify(requestId)}` });
  await ctx.store.requireDispatch(dispatchId, ctx.signal);
  const item = await ctx.store.getCancelRequest(dispatchId, requestId, ctx.signal);
  if (!item) return json(404, { message: `No cancel request ${requestId} for dispatch ${dispatchId}` });
  const { report, ...rest } = item;
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
    ...(report ? { report: JSON.parse(report) as unknown } : {}),
  });
}

/**
 * API Gateway gives up on an integration after 29 s and answers the caller 504, losing the
 * report. The handler therefore answers within this budget, whatever Lambda's own timeout:
 * a cancel not finished by then is recorded and open, and answers 202 with its request id.
 */
const API_ANSWER_BUDGET_MS = 25_000;

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

/** Creates the handler. */
export function createCancelHandler(deps: CancelHandlerDeps = {}): (event: ApiEvent, context?: InvocationTimer) => Promise<ApiResponse> {
  let ctx: RuntimeContext | undefined;
  const loadExecutors =
    deps.loadExecutors ??
    (async () => {
      const workflows = process.env[ENV.workflows];
      if (workflows) await importWorkflows(workflows);
    });
  const route = async (invocation: RuntimeContext, event: ApiEvent, dispatchId: string): Promise<ApiResponse> => {
    if (event.httpMethod === 'GET' && event.resource === API.cancelReportPath) return cancelReport(invocation, dispatchId, event.pathParameters?.['requestId'] ?? '');
    if (event.httpMethod === 'GET') {
      const result = await describeDispatch(invocation, dispatchId, { includeResult: false });
      return json(200, { ...result, error: result.error ? { name: result.error.name, message: result.error.message } : undefined });
    }
    if (event.httpMethod !== 'POST') return json(405, { message: `Method ${event.httpMethod} is not allowed` });
    const body = parseBody(event);
    const identity = event.requestContext?.identity;
    const requestedBy = identity?.userArn ?? identity?.caller ?? identity?.accessKey ?? 'unknown';
    const report = await cancelDispatch(invocation, dispatchId, { ...body, requestedBy }, { loadExecutors });
    return json(200, report);
  };
  return async (event, context) => {
    ctx ??= deps.ctx ?? runtimeContextFromEnv();
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
