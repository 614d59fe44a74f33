/**
 * Text the CLI prints: a dispatch as a tree of rows, the final report, cancel reports, the
 * dispatch list, a lattice's graph, and JSON that survives the values valence keeps (BigInt,
 * Map, Set, typed arrays, errors).
 */
import { isTerminalNodeStatus, NodeStatus, type DispatchStatus } from '../status.ts';
import type { DispatchResult, NodeResult } from '../runtime/describe.ts';
import type { CancelReport } from '../runtime/cancel.ts';
import type { CancelMethod } from '../status.ts';
import type { DispatchItem } from '../runtime/store.ts';
import type { TransportGraph } from '../model/graph.ts';

/** A dispatch with the child dispatches of its sublattice nodes, as far down as they go. */
export interface DispatchTree {
  readonly result: DispatchResult;
  /** Child dispatches by the id of the sublattice node that runs them. */
  readonly children: ReadonlyMap<number, DispatchTree>;
}

/** One line of the live view and of the report: a node, at its depth in the tree. */
export interface TreeRow {
  /** `3`, or `3/1` for node 1 of the child dispatch of node 3. */
  readonly path: string;
  readonly depth: number;
  readonly node: NodeResult;
  /** `sublattice` for a node that runs a child dispatch, else the executor kind. */
  readonly runsOn: string;
}

/** Every node of a tree in display order: each sublattice node followed by its children. */
export function treeRows(tree: DispatchTree, prefix = '', depth = 0): TreeRow[] {
  const rows: TreeRow[] = [];
  for (const node of tree.result.nodes) {
    const path = `${prefix}${node.id}`;
    rows.push({ path, depth, node, runsOn: node.kind === 'sublattice' || node.childDispatchId ? 'sublattice' : node.executor });
    const child = tree.children.get(node.id);
    if (child) rows.push(...treeRows(child, `${path}/`, depth + 1));
  }
  return rows;
}

/** What each cancel method means, in the words the report uses. */
export const CANCEL_METHOD_TEXT: Readonly<Record<CancelMethod, string>> = {
  'not-started': 'never started: nothing was serialized, uploaded or submitted',
  'upstream-failed': 'never ran: a parent failed',
  'upstream-cancelled': 'never ran: a parent was cancelled',
  signal: "its AbortSignal fired and the electron stopped",
  terminated: 'ignored its signal; its worker was terminated after the grace period',
  TerminateJob: 'AWS Batch TerminateJob stopped the running job',
  CancelJob: 'AWS Batch CancelJob removed the queued job',
  CancelQuantumTask: 'Amazon Braket CancelQuantumTask cancelled the quantum task',
  CancelHybridJob: 'Amazon Braket CancelJob cancelled the hybrid job',
  'executor.cancel': "the custom executor's cancel() stopped it",
  'between-steps': 'the executor saw the cancel between two of its steps and stopped there',
  'child-dispatch': 'its child dispatch was cancelled',
  'pending-child': 'cancelled before its child dispatch existed: it was created cancelled and never ran',
};

/** Seconds with one decimal (or two under ten seconds). */
export function formatSeconds(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  return seconds < 10 ? `${seconds.toFixed(2)}s` : seconds < 600 ? `${seconds.toFixed(1)}s` : `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
}

/** How long a node has run (or ran); undefined before it started. */
export function nodeElapsedMs(node: Pick<NodeResult, 'startedAt' | 'endedAt'>, now: number): number | undefined {
  if (!node.startedAt) return undefined;
  return (node.endedAt ? Date.parse(node.endedAt) : now) - Date.parse(node.startedAt);
}

/** A job handle short enough for a column: the resource part of an ARN, its id abbreviated. */
export function shortHandle(handle: string | undefined, width = 28): string {
  if (!handle) return '';
  const resource = handle.startsWith('arn:') ? handle.split(':').slice(5).join(':') : handle;
  if (resource.length <= width) return resource;
  return `${resource.slice(0, width - 1)}…`;
}

/** ANSI colors for statuses, or none. */
export interface Palette {
  status(status: string, text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const plain: Palette = { status: (_s, text) => text, dim: (text) => text, bold: (text) => text };
const STATUS_COLOR: Readonly<Record<string, string>> = {
  [NodeStatus.COMPLETED]: '32',
  [NodeStatus.RUNNING]: '33',
  [NodeStatus.FAILED]: '31',
  [NodeStatus.CANCELLED]: '35',
  [NodeStatus.NEW_OBJECT]: '2',
};
const colored: Palette = {
  status: (status, text) => `\u001b[${STATUS_COLOR[status] ?? '0'}m${text}\u001b[0m`,
  dim: (text) => `\u001b[2m${text}\u001b[0m`,
  bold: (text) => `\u001b[1m${text}\u001b[0m`,
};

/** Colors on a terminal unless `NO_COLOR` is set. */
export function paletteFor(color: boolean): Palette {
  return color ? colored : plain;
}

/** An overall progress bar: nodes that reached a terminal status, of all nodes in the tree. */
export function progressBar(rows: readonly TreeRow[], width = 24): { bar: string; done: number; total: number } {
  const total = rows.length;
  const done = rows.filter((r) => isTerminalNodeStatus(r.node.status)).length;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return { bar: `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`, done, total };
}

const pad = (text: string, width: number): string => (text.length >= width ? text : text + ' '.repeat(width - text.length));

/** What the last column says about a node: its job handle, how it was cancelled, or why it failed. */
export function nodeDetail(node: NodeResult): string {
  if (node.status === NodeStatus.CANCELLED) return `by ${node.cancelledBy ?? 'cancel'}${node.jobHandle ? ` ${shortHandle(node.jobHandle, 20)}` : ''}`;
  if (node.status === NodeStatus.FAILED && node.error) return `${node.error.name}: ${node.error.message}`.split('\n')[0]!.slice(0, 60);
  if (node.childDispatchId) return `child ${node.childDispatchId.slice(0, 8)}`;
  const handle = shortHandle(node.jobHandle);
  return node.cancelRequested && !isTerminalNodeStatus(node.status) ? `${handle} cancelling…`.trim() : handle;
}

/** The node table of the live view and of `valence status`. */
export function renderFrame(tree: DispatchTree, options: { now?: number; palette?: Palette } = {}): string[] {
  const now = options.now ?? Date.now();
  const p = options.palette ?? plain;
  const rows = treeRows(tree);
  const { result } = tree;
  const elapsed = (result.endedAt ? Date.parse(result.endedAt) : now) - Date.parse(result.startedAt);
  const { bar, done, total } = progressBar(rows);
  const lines = [
    `${p.bold(result.lattice)}  ${result.dispatchId}  ${p.status(dispatchColor(result.status), result.status)}  ${formatSeconds(elapsed)}`,
    `${bar} ${done}/${total} tasks done`,
    p.dim(`  ${pad('TASK', 6)} ${pad('NAME', 22)} ${pad('EXECUTOR', 10)} ${pad('STATUS', 10)} ${pad('TIME', 8)} JOB / DETAIL`),
  ];
  for (const row of rows) {
    const indent = '  '.repeat(row.depth);
    const elapsedMs = nodeElapsedMs(row.node, now);
    lines.push(
      `  ${pad(row.path, 6)} ${pad(indent + row.node.name, 22)} ${pad(row.runsOn, 10)} ${p.status(row.node.status, pad(row.node.status, 10))} ${pad(elapsedMs === undefined ? '' : formatSeconds(elapsedMs), 8)} ${nodeDetail(row.node)}`.trimEnd(),
    );
  }
  return lines;
}

function dispatchColor(status: DispatchStatus): string {
  return status === 'RUNNING' ? NodeStatus.RUNNING : status;
}

/** The time column of the line-per-change view: since the view started. */
export function changeHeader(sinceMs: number): string {
  return `+${formatSeconds(sinceMs).padStart(7)}`;
}

/** One line for one node, as the line-per-change view prints it. */
export function changeLine(row: TreeRow, sinceMs: number): string {
  return `${changeHeader(sinceMs)}  ${pad(row.path, 6)} ${pad(row.node.name, 20)} ${pad(row.runsOn, 10)} ${row.node.status}${(() => {
    const detail = nodeDetail(row.node);
    return detail ? `  ${detail}` : '';
  })()}`;
}

/** Counts by status, and cancellations by method. */
export function tally(rows: readonly TreeRow[]): { byStatus: Record<string, number>; byMethod: Record<string, number> } {
  const byStatus: Record<string, number> = {};
  const byMethod: Record<string, number> = {};
  for (const { node } of rows) {
    byStatus[node.status] = (byStatus[node.status] ?? 0) + 1;
    if (node.status === NodeStatus.CANCELLED) byMethod[node.cancelledBy ?? 'unknown'] = (byMethod[node.cancelledBy ?? 'unknown'] ?? 0) + 1;
  }
  return { byStatus, byMethod };
}

/** The summary printed when a watched dispatch ends. */
export function renderSummary(tree: DispatchTree): string[] {
  const rows = treeRows(tree);
  const { result } = tree;
  const { byStatus, byMethod } = tally(rows);
  const elapsed = (result.endedAt ? Date.parse(result.endedAt) : Date.now()) - Date.parse(result.startedAt);
  const methods = Object.entries(byMethod)
    .map(([method, count]) => `${method} ${count}`)
    .join(', ');
  const lines = [
    `${result.lattice} ${result.status} after ${formatSeconds(elapsed)}: ${byStatus[NodeStatus.COMPLETED] ?? 0} completed, ${byStatus[NodeStatus.CANCELLED] ?? 0} cancelled${methods ? ` (${methods})` : ''}, ${byStatus[NodeStatus.FAILED] ?? 0} failed`,
  ];
  if (result.status === 'COMPLETED') lines.push(`result: ${oneLine(result.result)}`);
  if (result.error) lines.push(`error: ${result.error.name}: ${result.error.message}`);
  return lines;
}

/** The final report: which tasks completed, which were cancelled and how, which failed. */
export function renderReport(tree: DispatchTree): string[] {
  const rows = treeRows(tree);
  const section = (title: string, members: TreeRow[], detail: (row: TreeRow) => string): string[] =>
    members.length === 0 ? [] : [`${title} (${members.length}):`, ...members.map((row) => `  ${pad(row.path, 6)} ${pad(row.node.name, 20)} ${pad(row.runsOn, 10)} ${detail(row)}`.trimEnd())];
  const timing = (row: TreeRow): string => {
    const ms = nodeElapsedMs(row.node, Date.now());
    return ms === undefined ? '' : formatSeconds(ms);
  };
  const byStatus = (status: string): TreeRow[] => rows.filter((r) => r.node.status === status);
  return [
    ...section('Completed', byStatus(NodeStatus.COMPLETED), (row) => `${timing(row)}${row.node.jobHandle && !row.node.childDispatchId ? `  ${shortHandle(row.node.jobHandle, 48)}` : ''}`),
    ...section('Cancelled', byStatus(NodeStatus.CANCELLED), (row) => {
      const method = row.node.cancelledBy;
      return `${pad(method ?? 'unknown', 18)} ${method ? CANCEL_METHOD_TEXT[method] : ''}`;
    }),
    ...section('Failed', byStatus(NodeStatus.FAILED), (row) => (row.node.error ? `${row.node.error.name}: ${row.node.error.message}`.split('\n')[0]! : '')),
    ...section('Not finished', rows.filter((r) => !isTerminalNodeStatus(r.node.status)), (row) => row.node.status),
  ];
}

/** The cancel command's answer. */
export function renderCancelReport(report: CancelReport): string[] {
  const lines = [`cancel request ${report.requestId} for ${report.dispatchId}${report.executionStopped ? ' (execution stopped)' : ''}`];
  for (const c of report.cancelled) {
    lines.push(`  cancelled        ${pad(String(c.id), 6)} ${pad(c.name, 20)} ${c.previousStatus} -> ${c.status} via ${c.method}${c.stopped ? ` after ${formatSeconds(c.stopped.ranMs)} on ${c.stopped.executor}` : ''}${c.error ? ` (error: ${c.error}; the sweeper retries)` : ''}`);
  }
  for (const m of report.merged ?? []) lines.push(`  merged           ${pad(String(m.id), 6)} ${m.status}, stopped by request ${m.requestId}`);
  for (const t of report.alreadyTerminal) lines.push(`  already terminal ${pad(String(t.id), 6)} ${t.status}`);
  for (const id of report.notFound) lines.push(`  not found        ${id}`);
  if (report.cancelled.length === 0 && report.alreadyTerminal.length === 0 && report.notFound.length === 0) lines.push('  nothing to cancel');
  return lines;
}

/** The dispatch list. */
export function renderDispatchList(items: readonly DispatchItem[], now = Date.now()): string[] {
  if (items.length === 0) return ['no dispatches'];
  const lines = [`${pad('DISPATCH', 36)}  ${pad('LATTICE', 24)} ${pad('STATUS', 10)} ${pad('STARTED', 24)} TIME`];
  for (const item of items) {
    const elapsed = (item.endedAt ? Date.parse(item.endedAt) : now) - Date.parse(item.startedAt);
    lines.push(`${pad(item.dispatchId, 36)}  ${pad(item.lattice, 24)} ${pad(item.status, 10)} ${pad(item.startedAt, 24)} ${formatSeconds(elapsed)}`);
  }
  return lines;
}

/** A lattice's graph as text: each node with what it runs on and where its inputs come from. */
export function renderGraph(graph: TransportGraph, description?: string): string[] {
  const lines = [`${graph.lattice.name}${description ? ` — ${description}` : ''}: ${graph.nodes.length} nodes`];
  for (const node of graph.nodes) {
    const runsOn = node.kind === 'sublattice' ? `sublattice ${node.sublattice ?? node.electron}` : node.executor.name;
    const parents = graph.parents(node.id);
    lines.push(`  ${pad(String(node.id), 4)} ${pad(node.name, 22)} ${pad(runsOn, 26)} ${parents.length > 0 ? `<- ${parents.join(', ')}` : ''}`.trimEnd());
  }
  return lines;
}

/** A value on one line, for summaries. */
export function oneLine(value: unknown, width = 160): string {
  const text = typeof value === 'string' ? value : toJson(value, 0);
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

/**
 * JSON for `--json`: BigInt as a string, Map as an object (or entries when keys are not
 * strings), Set and typed arrays as arrays, errors with name, message and code.
 */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Map) {
        const map = v as Map<unknown, unknown>;
        return [...map.keys()].every((k) => typeof k === 'string') ? Object.fromEntries(map as Map<string, unknown>) : [...map.entries()];
      }
      if (v instanceof Set) return [...(v as Set<unknown>)];
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
      if (v instanceof Error) {
        const code = (v as { code?: unknown }).code;
        return { name: v.name, message: v.message, ...(code === undefined ? {} : { code }) };
      }
      return v;
    },
    indent,
  ) ?? 'null';
}

/** A tree as `--json` prints it: the dispatch, with each sublattice node's child dispatch under `child`. */
export function treeJson(tree: DispatchTree): unknown {
  return {
    ...tree.result,
    nodes: tree.result.nodes.map((node) => {
      const child = tree.children.get(node.id);
      return child ? { ...node, child: treeJson(child) } : node;
    }),
  };
}
