/**
 * The dashboard server behind `valence ui`: serves the web app and a small JSON + SSE API on
 * 127.0.0.1, and talks to valence only through the SDK client (`connect()`), which signs every
 * call with the user's credentials (SigV4). The credentials stay in this process; the browser
 * sees statuses, reports and output previews, never a key.
 *
 * API (every route needs the per-start token; see `security.ts`):
 * - `GET  /api/capabilities`                       what this SDK supports (the seams of issues 13 and 16)
 * - `GET  /api/dispatches`                         the dispatch list
 * - `GET  /api/events/list`                        SSE: the list, whenever it changes
 * - `GET  /api/events/dispatch/{id}`               SSE: `snapshot` then `delta` events of one dispatch tree
 * - `GET  /api/dispatches/{id}/output?path=5/2`    a node's output, as a size-capped preview
 * - `POST /api/dispatches/{id}/cancel`             `{ taskIds?, reason, force? }` → 200 the cancel report, or 202 `{ requestId, accepted }` (its progress follows)
 * - `POST /api/cancel-many`                        `{ dispatchIds, reason, force? }` → one report (or acceptance) per dispatch
 * - `GET  /api/dispatches/{id}/cancels/{requestId}` one cancel request: its progress so far, or its final report
 * - `POST /api/dispatches/{id}/redispatch`         `{ dryRun?, reuse? }` → the redispatch plan, sublattices broken out (a dry run starts nothing)
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { inspect } from 'node:util';
import { ValenceError, type CancelOptions, type ValenceClient } from '../../sdk/index.ts';
import { ErrorCode } from '../../sdk/errors.ts';
import type { ApiError, CancelAcceptedView, CancelBody, CancelManyBody, CancelManyResult, CancelProgressView, CancelReportView, Capabilities, DispatchRow, OutputPreview, PlannedChildView, RedispatchBody, RedispatchPlanView } from '../shared/api.ts';
import { PREVIEW_CHARS } from '../shared/api.ts';
import { DIST_DIR, ensureAssets } from './build.ts';
import { LiveHub, type LivePollOptions } from './live.ts';
import { checkRequest, newToken, SECURITY_HEADERS, tokenCookie } from './security.ts';

/** What the server needs from the SDK client. */
export type DashboardClient = Pick<ValenceClient, 'getResult' | 'listDispatches' | 'cancel' | 'getNodeOutput'> & Partial<Pick<ValenceClient, 'redispatch' | 'getCancelReport'>>;

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** The connected SDK client; the caller closes it. */
  readonly client: DashboardClient;
  /** Port on 127.0.0.1; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** Pacing of the shared poll loop. */
  readonly poll?: LivePollOptions;
  /** Where the built web app is; built there on demand when stale. @default ui/dist */
  readonly assetsDir?: string;
}

/** A running dashboard. */
export interface Dashboard {
  /** The URL to open, with this start's token: print it, never log it elsewhere. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** The poll loop (its `readCounts` are the table reads this dashboard made). */
  readonly hub: LiveHub;
  /** Closes every SSE stream, the poll loop and the listener. */
  close(): Promise<void>;
}

/** A request the API refuses: a 4xx with a code and a message naming what is wrong. */
export class DashboardRequestError extends ValenceError {
  override readonly name = 'DashboardRequestError';
  constructor(
    readonly status: number,
    message: string,
    code: string = ErrorCode.CANCEL_INVALID_REQUEST,
  ) {
    super(code, message);
  }
}

/** Largest request body the API reads; larger ones are refused before being read whole. */
export const MAX_BODY_BYTES = 64 * 1024;
const MAX_REASON_CHARS = 1_000;
const TASK_PATH = /^\d{1,9}(\/\d{1,9}){0,8}$/;
const DISPATCH_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const REQUEST_ID = /^[0-9a-f-]{36}$/;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * Starts the dashboard on 127.0.0.1 and resolves once it listens.
 * @example
 * const client = connect({ endpoint: 'http://127.0.0.1:4566' });
 * const ui = await startDashboard({ client });
 * console.log(ui.url); // http://127.0.0.1:PORT/?token=…
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const assetsDir = options.assetsDir ?? DIST_DIR;
  await ensureAssets(assetsDir);
  const token = newToken();
  const hub = new LiveHub(options.client, options.poll ?? {});
  const client = options.client;
  const streams = new Set<ServerResponse>();
  let port = 0;

  const capabilities: Capabilities = {
    // Seams: these flip to true when the SDK grows the methods (issues 13 and 16).
    cancelProgress: typeof (client as { getCancelReport?: unknown }).getCancelReport === 'function',
    redispatch: typeof (client as { redispatch?: unknown }).redispatch === 'function',
    // CancelOptions has `force` (issue 13): the dialog offers it and the server passes it on.
    force: true,
  };

  const server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => answerError(response, error));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    for (const [key, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(key, value);
    const queryToken = request.method === 'GET' && url.pathname === '/' ? (url.searchParams.get('token') ?? undefined) : undefined;
    const check = checkRequest(request, { port, token, queryToken });
    if ('status' in check) {
      const wantsPage = request.method === 'GET' && !url.pathname.startsWith('/api/');
      if (wantsPage) return send(response, check.status, `<!doctype html><title>valence ui</title><p>${check.message}</p>`, 'text/html; charset=utf-8');
      return sendJson(response, check.status, { code: check.code, message: check.message } satisfies ApiError);
    }
    if (check.via === 'query') {
      // Trade the token in the URL for the cookie, and drop it from the address bar.
      response.setHeader('set-cookie', tokenCookie(port, token));
      response.writeHead(303, { location: '/' }).end();
      return;
    }
    const method = request.method ?? 'GET';
    const path = url.pathname;
    if (method === 'GET' && (path === '/' || path === '/index.html')) return sendFile(response, join(assetsDir, 'index.html'));
    if (method === 'GET' && /^\/assets\/[a-z-]+\.(js|css)$/.test(path)) return sendFile(response, join(assetsDir, path.slice('/assets/'.length)));
    if (method === 'GET' && path === '/api/capabilities') return sendJson(response, 200, capabilities);
    if (method === 'GET' && path === '/api/dispatches') return sendJson(response, 200, await listOnce());
    if (method === 'GET' && path === '/api/events/list') return stream(request, response, (push) => hub.subscribeList((e) => push(e.kind === 'data' ? 'list' : 'failure', e.kind === 'data' ? e.data : { message: e.message })));
    let m = /^\/api\/events\/dispatch\/([^/]+)$/.exec(path);
    if (method === 'GET' && m) {
      const id = dispatchIdOf(m[1]!);
      return stream(request, response, (push) =>
        hub.subscribeDispatch(id, (e) => (e.kind === 'data' ? push(e.data.full ? 'snapshot' : 'delta', e.data) : push('failure', { message: e.message }))),
      );
    }
    m = /^\/api\/dispatches\/([^/]+)\/output$/.exec(path);
    if (method === 'GET' && m) return sendJson(response, 200, await outputPreview(dispatchIdOf(m[1]!), url.searchParams.get('path') ?? ''));
    m = /^\/api\/dispatches\/([^/]+)\/cancel$/.exec(path);
    if (method === 'POST' && m) {
      const id = dispatchIdOf(m[1]!);
      const body = parseCancelBody(await readJson(request));
      const answer = await startCancel(id, body);
      return sendJson(response, 'accepted' in answer ? 202 : 200, answer);
    }
    if (method === 'POST' && path === '/api/cancel-many') return sendJson(response, 200, await cancelMany(parseCancelManyBody(await readJson(request))));
    m = /^\/api\/dispatches\/([^/]+)\/cancels\/([^/]+)$/.exec(path);
    if (method === 'GET' && m) {
      const id = dispatchIdOf(m[1]!);
      const requestId = decodeURIComponent(m[2]!);
      if (!REQUEST_ID.test(requestId)) throw new DashboardRequestError(400, `"${requestId.slice(0, 40)}" is not a cancel request id`);
      if (!client.getCancelReport) throw new DashboardRequestError(501, 'Cancel progress needs the SDK’s getCancelReport, which this SDK does not have', ErrorCode.CANCEL_REFUSED);
      const progress: CancelProgressView = await hub.cancelReport(id, requestId);
      return sendJson(response, 200, progress);
    }
    m = /^\/api\/dispatches\/([^/]+)\/redispatch$/.exec(path);
    if (method === 'POST' && m) {
      const id = dispatchIdOf(m[1]!);
      const body = parseRedispatchBody(await readJson(request));
      if (!client.redispatch) throw new DashboardRequestError(501, 'Redispatch needs the SDK’s redispatch() (issue 16), which this SDK does not have', ErrorCode.REDISPATCH_REFUSED);
      const plan: RedispatchPlanView = await client.redispatch(id, { dryRun: body.dryRun === true, ...(body.reuse !== undefined ? { reuse: body.reuse } : {}) });
      return sendJson(response, 200, await withSublattices(id, plan));
    }
    throw new DashboardRequestError(path.startsWith('/api/') ? 404 : 404, `No route ${method} ${path}`, ErrorCode.CANCEL_INVALID_REQUEST);
  }

  async function listOnce(): Promise<DispatchRow[]> {
    const items = await client.listDispatches({ limit: options.poll?.listLimit ?? 50 });
    return items.map((d) => ({ dispatchId: d.dispatchId, lattice: d.lattice, status: d.status, startedAt: d.startedAt, ...(d.endedAt ? { endedAt: d.endedAt } : {}), nodeCount: d.nodeCount }));
  }

  async function outputPreview(dispatchId: string, path: string): Promise<OutputPreview> {
    if (!TASK_PATH.test(path)) throw new DashboardRequestError(400, `path "${path.slice(0, 40)}" is not a node id or a sublattice path like 5/2`);
    const node = hub.nodeAt(dispatchId, path);
    if (!node) throw new DashboardRequestError(404, `No node ${path} in dispatch ${dispatchId} (open the dispatch first)`, ErrorCode.DISPATCH_NOT_FOUND);
    if (node.kind === 'sublattice') return { unavailable: 'A sublattice’s output is its child dispatch’s result: expand it to see its nodes' };
    if (node.status !== 'COMPLETED') return { unavailable: `No output: the node is ${node.status}` };
    const value = await client.getNodeOutput(node.dispatchId, node.id);
    const text = inspect(value, { depth: 4, maxArrayLength: 50, maxStringLength: PREVIEW_CHARS, breakLength: 80, compact: 3 });
    return text.length > PREVIEW_CHARS ? { preview: text.slice(0, PREVIEW_CHARS), truncated: true } : { preview: text, truncated: false };
  }

  /**
   * Sends a cancel without waiting past the endpoint's answer: a finished one answers its
   * report; an accepted one (202) is followed by the hub, which pushes its progress to the page.
   */
  async function startCancel(dispatchId: string, body: CancelBody): Promise<CancelReportView | CancelAcceptedView> {
    const answer = await client.cancel(dispatchId, { ...toCancelOptions(body), wait: false });
    if ('accepted' in answer) hub.followCancel(dispatchId, answer.requestId);
    hub.poke(dispatchId);
    return answer;
  }

  /**
   * Breaks each sublattice of a plan out into the nodes of its old child dispatch (one read
   * each, nested ones too): a sublattice reruns as a whole, so each of them runs again.
   */
  async function withSublattices(dispatchId: string, plan: RedispatchPlanView): Promise<RedispatchPlanView> {
    const old = await client.getResult(dispatchId);
    const subs = new Map(old.nodes.filter((n) => n.kind === 'sublattice').map((n) => [n.id, n] as const));
    if (subs.size === 0) return plan;
    const childrenOf = async (prefix: string, childId: string | undefined, depth: number): Promise<PlannedChildView[]> => {
      if (!childId || depth > 8) return [];
      const child = await client.getResult(childId);
      const rows: PlannedChildView[] = [];
      for (const n of child.nodes) {
        const path = `${prefix}/${n.id}`;
        rows.push({ path, name: n.name, was: n.status, action: 'run', reason: `inside sublattice ${prefix.split('/')[0]}, which reruns as a whole` });
        if (n.kind === 'sublattice') rows.push(...(await childrenOf(path, n.childDispatchId, depth + 1)));
      }
      return rows;
    };
    const nodes = await Promise.all(
      plan.nodes.map(async (n) => {
        const sub = subs.get(n.nodeId);
        // A sublattice the old run never started has no child graph to show.
        return sub && n.action === 'run' ? { ...n, children: await childrenOf(String(n.nodeId), sub.childDispatchId, 1) } : n;
      }),
    );
    return { ...plan, nodes };
  }

  async function cancelMany(body: CancelManyBody): Promise<CancelManyResult> {
    const results: CancelManyResult['results'][number][] = [];
    // One at a time: each is a signed API call that may stop jobs; a burst gains little.
    for (const dispatchId of body.dispatchIds) {
      try {
        const current = await client.getResult(dispatchId);
        if (current.status !== 'RUNNING') {
          results.push({ dispatchId, skipped: `already ${current.status}` });
          continue;
        }
        const answer = await startCancel(dispatchId, { reason: body.reason, ...(body.force !== undefined ? { force: body.force } : {}) });
        results.push('accepted' in answer ? { dispatchId, accepted: answer } : { dispatchId, report: answer });
      } catch (error) {
        results.push({ dispatchId, error: error instanceof Error ? error.message : String(error) });
      }
    }
    return { results };
  }

  function stream(request: IncomingMessage, response: ServerResponse, subscribe: (push: (event: string, data: unknown) => void) => () => void): void {
    response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    response.write('retry: 2000\n\n');
    streams.add(response);
    const unsubscribe = subscribe((event, data) => void response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
    const keepAlive = setInterval(() => void response.write(': keep-alive\n\n'), 15_000);
    const end = (): void => {
      clearInterval(keepAlive);
      unsubscribe();
      streams.delete(response);
    };
    request.once('close', end);
    response.once('close', end);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    hub,
    async close() {
      hub.close();
      for (const response of streams) response.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function dispatchIdOf(raw: string): string {
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    throw new DashboardRequestError(400, 'the dispatch id is not valid URL encoding');
  }
  if (!DISPATCH_ID.test(id)) throw new DashboardRequestError(400, `"${id.slice(0, 40)}" is not a dispatch id`);
  return id;
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new DashboardRequestError(413, `The body is ${declared} bytes; at most ${MAX_BODY_BYTES} are accepted`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new DashboardRequestError(413, `The body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new DashboardRequestError(400, 'The body is not JSON');
  }
}

function requireReason(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new DashboardRequestError(400, 'reason is required: say why you cancel (it is recorded in the audit trail)');
  if (value.length > MAX_REASON_CHARS) throw new DashboardRequestError(400, `reason is ${value.length} characters; at most ${MAX_REASON_CHARS}`);
  return value.trim();
}

function optionalForce(value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') throw new DashboardRequestError(400, 'force must be true or false');
  return value;
}

/** Validates a cancel body; throws a 400 naming the first problem. */
export function parseCancelBody(body: unknown): CancelBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new DashboardRequestError(400, 'The body must be a JSON object { taskIds?, reason, force? }');
  const { taskIds, reason, force, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new DashboardRequestError(400, `Unknown field(s): ${unknown.join(', ')}`);
  const parsedForce = optionalForce(force);
  let ids: string[] | undefined;
  if (taskIds !== undefined) {
    // An empty list must never mean "everything": omit taskIds to cancel the whole dispatch.
    if (!Array.isArray(taskIds) || taskIds.length === 0) throw new DashboardRequestError(400, 'taskIds must be a non-empty list of node ids or paths like "5/2"; omit it to cancel the whole dispatch');
    if (taskIds.length > 10_000) throw new DashboardRequestError(400, `taskIds has ${taskIds.length} entries; at most 10000`);
    ids = (taskIds as unknown[]).map((t) => {
      const text = typeof t === 'number' ? String(t) : t;
      if (typeof text !== 'string' || !TASK_PATH.test(text)) throw new DashboardRequestError(400, `taskIds entry ${JSON.stringify(t)?.slice(0, 40)} is not a node id or a path like "5/2"`);
      return text;
    });
  }
  return { ...(ids ? { taskIds: ids } : {}), reason: requireReason(reason), ...(parsedForce !== undefined ? { force: parsedForce } : {}) };
}

/** Validates a cancel-many body. */
export function parseCancelManyBody(body: unknown): CancelManyBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new DashboardRequestError(400, 'The body must be a JSON object { dispatchIds, reason, force? }');
  const { dispatchIds, reason, force } = body as Record<string, unknown>;
  if (!Array.isArray(dispatchIds) || dispatchIds.length === 0 || dispatchIds.length > 200) throw new DashboardRequestError(400, 'dispatchIds must list 1 to 200 dispatch ids');
  for (const id of dispatchIds) if (typeof id !== 'string' || !DISPATCH_ID.test(id)) throw new DashboardRequestError(400, `${JSON.stringify(id)?.slice(0, 40)} is not a dispatch id`);
  const parsedForce = optionalForce(force);
  return { dispatchIds: dispatchIds as string[], reason: requireReason(reason), ...(parsedForce !== undefined ? { force: parsedForce } : {}) };
}

/** Validates a redispatch body; throws a 400 naming the first problem (nothing is started). */
export function parseRedispatchBody(body: unknown): RedispatchBody {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new DashboardRequestError(400, 'The body must be a JSON object { dryRun?, reuse? }', ErrorCode.REDISPATCH_REFUSED);
  const { dryRun, reuse, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new DashboardRequestError(400, `Unknown field(s): ${unknown.join(', ')} (a redispatch takes only dryRun and reuse)`, ErrorCode.REDISPATCH_REFUSED);
  if (dryRun !== undefined && typeof dryRun !== 'boolean') throw new DashboardRequestError(400, 'dryRun must be true or false', ErrorCode.REDISPATCH_REFUSED);
  if (reuse !== undefined && typeof reuse !== 'boolean') throw new DashboardRequestError(400, 'reuse must be true or false', ErrorCode.REDISPATCH_REFUSED);
  return { ...(dryRun !== undefined ? { dryRun } : {}), ...(reuse !== undefined ? { reuse } : {}) };
}

function toCancelOptions(body: CancelBody): CancelOptions {
  const options: CancelOptions = {
    reason: body.reason,
    ...(body.taskIds ? { taskIds: body.taskIds.map((t) => (t.includes('/') ? t : Number(t))) } : {}),
    ...(body.force !== undefined ? { force: body.force } : {}),
  };
  return options;
}

function send(response: ServerResponse, status: number, body: string, type: string): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, JSON.stringify(body), 'application/json; charset=utf-8');
}

async function sendFile(response: ServerResponse, file: string): Promise<void> {
  const body = await readFile(file);
  response.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' }).end(body);
}

function answerError(response: ServerResponse, error: unknown): void {
  if (response.headersSent) {
    response.end();
    return;
  }
  const name = (error as { name?: unknown } | null)?.name;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  let status = 502;
  if (error instanceof DashboardRequestError) status = error.status;
  else if (name === 'DispatchNotFoundError') status = 404;
  else if (name === 'ValidationError' || name === 'InvalidCancelRequestError') status = 400;
  // The dispatch cannot be redispatched as asked (a child or dry-run dispatch, …): nothing started.
  else if (name === 'RedispatchError') status = 409;
  // The cancel endpoint refused (400, 403, 404 for an unknown request): answer its status.
  else if (name === 'CancelRequestError' && typeof (error as { status?: unknown }).status === 'number') status = (error as { status: number }).status;
  // 502: valence (the stack or the local cloud) failed; the message says how, no stack trace.
  sendJson(response, status, { code: typeof code === 'string' ? code : 'UPSTREAM_FAILED', message } satisfies ApiError);
}
