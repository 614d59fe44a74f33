/**
 * The live view: polls a dispatch (and its sublattices' child dispatches) from the store and
 * shows every node with status, executor, elapsed time and job handle under a progress bar.
 *
 * On a terminal the frame is redrawn in place (cursor up, clear to end of screen); elsewhere
 * — CI logs, pipes — each change prints one line, so a log reads as a history. Polling is
 * paced by `intervalMs` (one read of the dispatch and one per child dispatch per tick), which
 * keeps the load at a few requests per second.
 */
import { isTerminalDispatchStatus } from '../status.ts';
import type { DispatchRef, ValenceClient } from '../client/index.ts';
import { changeHeader, changeLine, paletteFor, renderFrame, renderSummary, treeRows, type DispatchTree } from './format.ts';

/** Where the view writes: a stream, or anything with `write`. */
export interface ViewOutput {
  write(text: string): unknown;
  /** Terminal width, when the output is a terminal. */
  readonly columns?: number;
  /** Terminal height, when the output is a terminal. */
  readonly rows?: number;
}

/** Options of {@link watchDispatch}. */
export interface WatchOptions {
  /** @default process.stdout */
  readonly out?: ViewOutput;
  /** Redraw in place (a terminal) or print one line per change. @default out.isTTY */
  readonly tty?: boolean;
  /** ANSI colors. @default tty && !process.env.NO_COLOR */
  readonly color?: boolean;
  /** Time between two reads of the store. @default 500 */
  readonly intervalMs?: number;
  /** Stops watching; the promise then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Called with every snapshot, before it is drawn (the demo decides when to cancel here). */
  readonly onSnapshot?: (tree: DispatchTree) => void | Promise<void>;
  /** Print the summary when the dispatch ends. @default true */
  readonly summary?: boolean;
  /**
   * Lines shown under the frame on a terminal, or printed once each (when new) otherwise:
   * how a caller narrates what it does while the view runs.
   */
  readonly notes?: () => readonly string[];
}

/**
 * Reads a dispatch and, recursively, the child dispatches of its sublattice nodes. Child
 * dispatches that had ended in `previous` are not read again.
 */
export async function fetchTree(client: Pick<ValenceClient, 'getResult'>, dispatchId: DispatchRef, previous?: DispatchTree, depth = 0): Promise<DispatchTree> {
  const result = await client.getResult(dispatchId);
  const children = new Map<number, DispatchTree>();
  if (depth < 8) {
    await Promise.all(
      result.nodes
        .filter((n) => n.childDispatchId)
        .map(async (n) => {
          const known = previous?.children.get(n.id);
          const reuse = known && known.result.dispatchId === n.childDispatchId && treeEnded(known);
          children.set(n.id, reuse ? known : await fetchTree(client, n.childDispatchId!, known, depth + 1));
        }),
    );
  }
  return { result, children };
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Whether a tree has ended: the dispatch and every child dispatch read are terminal. */
export function treeEnded(tree: DispatchTree): boolean {
  return isTerminalDispatchStatus(tree.result.status) && [...tree.children.values()].every(treeEnded);
}

/**
 * Watches a dispatch until it ends; resolves with its last snapshot.
 * @example
 * const tree = await watchDispatch(client, dispatchId, { out: process.stdout });
 * process.exitCode = tree.result.status === 'COMPLETED' ? 0 : 1;
 */
export async function watchDispatch(client: Pick<ValenceClient, 'getResult'>, dispatchId: DispatchRef, options: WatchOptions = {}): Promise<DispatchTree> {
  const out = options.out ?? process.stdout;
  const tty = options.tty ?? Boolean((out as { isTTY?: boolean }).isTTY);
  const palette = paletteFor(options.color ?? (tty && !process.env.NO_COLOR));
  const intervalMs = options.intervalMs ?? 500;
  const startedAt = Date.now();
  let drawnLines = 0;
  const seen = new Map<string, string>();
  let lastDispatchStatus = '';

  const draw = (tree: DispatchTree): void => {
    if (tty) {
      // A pseudo-terminal without a window size reports 0 columns.
      const width = Math.max(40, (out.columns || Number(process.env.COLUMNS) || 160) - 1);
      // Lines are cut to the width, so the cursor moves up exactly as many rows as were drawn.
      const notes = options.notes?.() ?? [];
      const frame = [...fitHeight(tree, renderFrame(tree, { palette }), (out.rows || Infinity) - 1 - notes.length), ...notes].map((line) => truncateVisible(line, width));
      const up = drawnLines > 0 ? `\u001b[${drawnLines}F` : '';
      out.write(`${up}\u001b[0J${frame.join('\n')}\n`);
      drawnLines = frame.length;
      return;
    }
    const since = Date.now() - startedAt;
    const dispatchLine = (): void => {
      if (tree.result.status === lastDispatchStatus) return;
      lastDispatchStatus = tree.result.status;
      out.write(`${changeHeader(since)}  ${tree.result.lattice} ${tree.result.dispatchId} ${tree.result.status}\n`);
    };
    // A running dispatch is announced before its nodes, an ended one after them.
    if (!isTerminalDispatchStatus(tree.result.status)) dispatchLine();
    for (const row of treeRows(tree)) {
      const key = `${row.node.status}|${row.node.jobHandle ?? ''}|${row.node.cancelledBy ?? ''}|${row.node.childDispatchId ?? ''}`;
      if (seen.get(row.path) === key) continue;
      // The first sight of a node that has not started says nothing new; skip it.
      if (!seen.has(row.path) && row.node.status === 'NEW_OBJECT') {
        seen.set(row.path, key);
        continue;
      }
      seen.set(row.path, key);
      out.write(`${changeLine(row, since)}\n`);
    }
    dispatchLine();
    printNotes();
  };
  const printedNotes = new Set<string>();
  const printNotes = (): void => {
    for (const note of options.notes?.() ?? []) {
      if (printedNotes.has(note)) continue;
      printedNotes.add(note);
      out.write(`${note}\n`);
    }
  };

  // Child dispatches end just before their parent; a few more reads let them settle, but a
  // child left running (a bug elsewhere) never keeps the view open.
  let readsSinceEnd = 0;
  let last: DispatchTree | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const tree = await fetchTree(client, dispatchId, last);
    last = tree;
    await options.onSnapshot?.(tree);
    draw(tree);
    if (isTerminalDispatchStatus(tree.result.status)) readsSinceEnd++;
    if (treeEnded(tree) || readsSinceEnd > 3) {
      if (options.summary !== false) out.write(`${renderSummary(tree).join('\n')}\n`);
      return tree;
    }
    await sleep(intervalMs, options.signal);
  }
}

/** Which rows a short terminal keeps: running first, then failures and cancellations, then the rest. */
const KEEP_ORDER: Readonly<Record<string, number>> = { RUNNING: 0, FAILED: 1, CANCELLED: 2, NEW_OBJECT: 3, COMPLETED: 4 };

/**
 * A frame no taller than `maxLines` (a frame taller than the terminal cannot be redrawn in
 * place): the header, the most telling rows in graph order, and a count of the rows left out.
 */
function fitHeight(tree: DispatchTree, frame: string[], maxLines: number): string[] {
  if (frame.length <= maxLines) return frame;
  const header = frame.slice(0, 3);
  const rows = treeRows(tree);
  const budget = Math.max(1, maxLines - header.length - 1);
  const kept = rows
    .map((row, index) => ({ index, rank: KEEP_ORDER[row.node.status] ?? 5 }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .slice(0, budget)
    .map((r) => r.index)
    .sort((a, b) => a - b);
  return [...header, ...kept.map((index) => frame[header.length + index]!), `  … ${rows.length - kept.length} more tasks not shown`];
}

const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** Cuts a line to `width` visible characters, keeping its color codes intact. */
function truncateVisible(line: string, width: number): string {
  if (line.replace(ANSI, '').length <= width) return line;
  let visible = 0;
  let outText = '';
  for (let i = 0; i < line.length && visible < width; ) {
    ANSI.lastIndex = i;
    const match = ANSI.exec(line);
    if (match && match.index === i) {
      outText += match[0];
      i += match[0].length;
      continue;
    }
    outText += line[i];
    visible++;
    i++;
  }
  return `${outText}\u001b[0m`;
}
