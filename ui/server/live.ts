/**
 * One poll loop for every open page: the dashboard's only reader of the table.
 *
 * Pages subscribe to a *subject* (the dispatch list, or one dispatch with its sublattices'
 * child dispatches); however many pages watch a subject, it is read once per tick. Each
 * subject has its own interval:
 * - {@link LivePollOptions.minIntervalMs} after a change, doubling while nothing changes up to
 *   {@link LivePollOptions.maxIntervalMs};
 * - never shorter than `nodes × msPerNode`, so a 20,000-node dispatch is read every 10 s, not
 *   every second (each read of a dispatch is a query over all its node items);
 * - backing off to {@link LivePollOptions.errorMaxIntervalMs} while reads fail;
 * - not read at all once the dispatch and its children are terminal (statuses never change
 *   again) until {@link LiveHub.poke} says something was asked of it (a cancel).
 * Subjects nobody watches are dropped. Changes are pushed to the pages (over SSE, by the
 * server): a full snapshot on subscribe, then only the nodes that changed.
 *
 * @module
 */
import type { CancelProgress, DispatchResult, NodeResult, ValenceClient } from '../../sdk/index.ts';
import type { CancelAuditEntry, CancelProgressStep, DispatchHeader, DispatchRow, DispatchUpdate, NodeView, StatusCounts } from '../shared/api.ts';

/** What the hub reads through: the SDK client (or any object with the same reads). */
export type LiveReader = Pick<ValenceClient, 'getResult' | 'listDispatches'> & Partial<Pick<ValenceClient, 'getCancelReport'>>;

/** The progress fields a cancel request item carries since issue 13 (`DispatchResult.cancelRequests` holds them at run time). */
interface CancelRequestProgress {
  readonly state?: 'OPEN' | 'DONE';
  readonly progress?: CancelProgressStep;
  readonly attempts?: number;
  readonly lastError?: string;
  readonly finishedAt?: string;
  readonly progressAt?: string;
}

/** Pacing of {@link LiveHub.followCancel}: first poll, longest gap, and when it gives up. */
const FOLLOW = { firstMs: 200, maxMs: 2_000, giveUpMs: 15 * 60_000 } as const;
/** Final reports kept for `GET …/cancels/{requestId}` (they never change). */
const KEPT_REPORTS = 200;

/** Pacing of the poll loop. */
export interface LivePollOptions {
  /** Interval right after a change. @default 1000 */
  readonly minIntervalMs?: number;
  /** Interval after a long quiet spell. @default 5000 */
  readonly maxIntervalMs?: number;
  /** Lower bound per node of a dispatch (reads are O(nodes)). @default 0.5 */
  readonly msPerNode?: number;
  /** Longest wait after failed reads. @default 30000 */
  readonly errorMaxIntervalMs?: number;
  /** How many of the newest dispatches the list shows. @default 50 */
  readonly listLimit?: number;
  /** Depth of sublattice child dispatches read. @default 8 */
  readonly maxDepth?: number;
  /** Set on AWS: node panels link job handles into this region's console. */
  readonly consoleRegion?: string;
}

/** What a subscriber receives. */
export type LiveEvent<T> = { readonly kind: 'data'; readonly data: T } | { readonly kind: 'error'; readonly message: string };

type Listener<T> = (event: LiveEvent<T>) => void;

interface Subject<T> {
  readonly key: string;
  readonly listeners: Set<Listener<T>>;
  dueAt: number;
  intervalMs: number;
  errorMs: number;
  settled: boolean;
  reads: number;
  poll(): Promise<void>;
}

interface TreeState {
  readonly header: DispatchHeader;
  readonly nodes: Map<string, NodeView>;
  /** JSON of each node, to find what changed. */
  readonly fingerprints: Map<string, string>;
  readonly headerFingerprint: string;
  readonly terminal: boolean;
  readonly children: Map<string, { readonly dispatchId: string; readonly result: DispatchResult; readonly terminal: boolean }>;
}

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** Node counts by status. */
export function countByStatus(nodes: Iterable<{ readonly status: string }>): StatusCounts {
  const counts: Record<string, number> = {};
  for (const node of nodes) counts[node.status] = (counts[node.status] ?? 0) + 1;
  return counts;
}

/** The poll loop and its subjects; see the module doc. */
export class LiveHub {
  private readonly subjects = new Map<string, Subject<unknown>>();
  private readonly trees = new Map<string, TreeState>();
  private readonly counts = new Map<string, { readonly counts: StatusCounts; readonly readAt: number; readonly terminal: boolean }>();
  private listRows: DispatchRow[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  private readonly min: number;
  private readonly max: number;
  private readonly msPerNode: number;
  private readonly errorMax: number;
  /** Reads made so far, by kind: the cost this hub put on the table. */
  readonly readCounts = { listDispatches: 0, getResult: 0, getCancelReport: 0 };
  /** The latest progress the followers read, by request id (fresher than the last dispatch read). */
  private readonly cancelProgress = new Map<string, CancelProgress>();
  /** Final reports, by request id. */
  private readonly doneReports = new Map<string, CancelProgress>();
  private readonly followers = new Set<string>();
  private readonly followTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly reader: LiveReader,
    private readonly options: LivePollOptions = {},
  ) {
    this.min = options.minIntervalMs ?? 1000;
    this.max = Math.max(this.min, options.maxIntervalMs ?? 5000);
    this.msPerNode = options.msPerNode ?? 0.5;
    this.errorMax = options.errorMaxIntervalMs ?? 30_000;
  }

  /** Watches the dispatch list; returns the unsubscribe function. */
  subscribeList(listener: Listener<DispatchRow[]>): () => void {
    return this.subscribe<DispatchRow[]>('list', listener, () => this.pollList(), () => this.listRows);
  }

  /** Watches one dispatch and its sublattices; the first event is a full snapshot. */
  subscribeDispatch(dispatchId: string, listener: Listener<DispatchUpdate>): () => void {
    return this.subscribe<DispatchUpdate>(`dispatch:${dispatchId}`, listener, () => this.pollDispatch(dispatchId), () => {
      const tree = this.trees.get(dispatchId);
      return tree ? { header: tree.header, nodes: [...tree.nodes.values()], full: true } : undefined;
    });
  }

  /** The node a path names in a watched dispatch (undefined when not read yet). */
  nodeAt(dispatchId: string, path: string): NodeView | undefined {
    return this.trees.get(dispatchId)?.nodes.get(path);
  }

  /** Something changed a subject outside the loop (a cancel): read it now, at the fast pace. */
  poke(dispatchId?: string): void {
    for (const subject of this.subjects.values()) {
      if (dispatchId === undefined || subject.key === `dispatch:${dispatchId}` || subject.key === 'list') {
        subject.settled = false;
        subject.intervalMs = this.min;
        subject.dueAt = Date.now();
      }
    }
    if (dispatchId) this.counts.delete(dispatchId);
    this.schedule();
  }

  /**
   * One cancel request's report or progress so far. A final report is read once and kept; an
   * open request is read each time (the read also advances it on the endpoint).
   */
  async cancelReport(dispatchId: string, requestId: string): Promise<CancelProgress> {
    const kept = this.doneReports.get(requestId);
    if (kept && kept.dispatchId === dispatchId) return kept;
    if (!this.reader.getCancelReport) throw new Error('This SDK client has no getCancelReport');
    this.readCounts.getCancelReport++;
    const progress = await this.reader.getCancelReport(dispatchId, requestId);
    this.noteCancel(progress);
    return progress;
  }

  /**
   * Follows a cancel the endpoint accepted (202) until its report is final: one reader per
   * request however many pages watch, polling `getCancelReport` from 200 ms backing off to 2 s
   * (each poll also advances the request on the endpoint), giving up after 15 minutes. Each
   * change is pushed to the dispatch's pages at once, without re-reading its nodes; when it is
   * done the dispatch is read again (its nodes changed).
   */
  followCancel(dispatchId: string, requestId: string): void {
    if (!this.reader.getCancelReport || this.followers.has(requestId) || this.doneReports.has(requestId)) return;
    this.followers.add(requestId);
    const giveUpAt = Date.now() + FOLLOW.giveUpMs;
    let delay: number = FOLLOW.firstMs;
    const step = async (): Promise<void> => {
      let done = false;
      try {
        done = (await this.cancelReport(dispatchId, requestId)).state === 'DONE';
      } catch {
        // A failed read is retried at the next step; the dispatch's own reads show the request meanwhile.
      }
      if (done || this.closed || Date.now() > giveUpAt) {
        this.followers.delete(requestId);
        return;
      }
      delay = Math.min(FOLLOW.maxMs, Math.round(delay * 1.5));
      const timer = setTimeout(() => {
        this.followTimers.delete(timer);
        void step();
      }, delay);
      this.followTimers.add(timer);
    };
    const first = setTimeout(() => {
      this.followTimers.delete(first);
      void step();
    }, delay);
    this.followTimers.add(first);
  }

  // Records what a cancel-report read said and pushes it to the dispatch's pages.
  private noteCancel(progress: CancelProgress): void {
    const before = this.cancelProgress.get(progress.requestId);
    this.cancelProgress.set(progress.requestId, progress);
    if (progress.state === 'DONE') {
      this.doneReports.set(progress.requestId, progress);
      if (this.doneReports.size > KEPT_REPORTS) this.doneReports.delete(this.doneReports.keys().next().value!);
    }
    if (before && JSON.stringify(before) === JSON.stringify(progress)) return;
    for (const [treeId, tree] of this.trees) {
      const index = tree.header.cancelRequests.findIndex((c) => c.requestId === progress.requestId);
      if (index < 0) continue;
      const requests = [...tree.header.cancelRequests];
      requests[index] = withProgress(requests[index]!, progress);
      const header: DispatchHeader = { ...tree.header, cancelRequests: requests };
      this.trees.set(treeId, { ...tree, header, headerFingerprint: JSON.stringify(header) });
      const subject = this.subjects.get(`dispatch:${treeId}`);
      for (const listener of subject?.listeners ?? []) listener({ kind: 'data', data: { header, nodes: [], full: false } });
      if (progress.state === 'DONE') this.poke(treeId);
    }
  }

  /** Stops the loop and the cancel followers; pending reads finish, nothing new starts. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const timer of this.followTimers) clearTimeout(timer);
    this.followTimers.clear();
    this.subjects.clear();
  }

  /** How many subjects are being polled (for tests and the cost note). */
  get subjectCount(): number {
    return this.subjects.size;
  }

  private subscribe<T>(key: string, listener: Listener<T>, poll: () => Promise<void>, cached: () => T | undefined): () => void {
    let subject = this.subjects.get(key) as Subject<T> | undefined;
    if (!subject) {
      subject = { key, listeners: new Set(), dueAt: Date.now(), intervalMs: this.min, errorMs: 0, settled: false, reads: 0, poll };
      this.subjects.set(key, subject as Subject<unknown>);
    }
    subject.listeners.add(listener);
    const now = cached();
    if (now !== undefined) listener({ kind: 'data', data: now });
    this.schedule();
    return () => {
      subject.listeners.delete(listener);
      if (subject.listeners.size === 0) this.subjects.delete(key);
    };
  }

  private schedule(): void {
    if (this.closed || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    let next = Infinity;
    for (const subject of this.subjects.values()) if (!subject.settled) next = Math.min(next, subject.dueAt);
    if (next === Infinity) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(0, next - Date.now()));
  }

  // The one loop: wakes at the earliest due subject and reads every due subject in turn.
  private async tick(): Promise<void> {
    this.timer = undefined;
    this.running = true;
    try {
      for (const subject of [...this.subjects.values()]) {
        if (this.closed) return;
        if (subject.settled || subject.dueAt > Date.now()) continue;
        try {
          await subject.poll();
          subject.errorMs = 0;
        } catch (error) {
          subject.errorMs = Math.min(this.errorMax, Math.max(2 * this.min, subject.errorMs * 2));
          subject.dueAt = Date.now() + subject.errorMs;
          const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
          for (const listener of subject.listeners) listener({ kind: 'error', message });
        }
      }
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  private pace(subject: Subject<unknown> | undefined, changed: boolean, nodes: number): void {
    if (!subject) return;
    const floor = Math.max(this.min, nodes * this.msPerNode);
    subject.intervalMs = changed ? floor : Math.max(floor, Math.min(Math.max(this.max, floor), subject.intervalMs * 2));
    subject.dueAt = Date.now() + subject.intervalMs;
  }

  private async read(dispatchId: string): Promise<DispatchResult> {
    this.readCounts.getResult++;
    return this.reader.getResult(dispatchId);
  }

  private async pollList(): Promise<void> {
    const subject = this.subjects.get('list');
    this.readCounts.listDispatches++;
    const items = await this.reader.listDispatches({ limit: this.options.listLimit ?? 50 });
    const now = Date.now();
    let heaviest = 0;
    const rows: DispatchRow[] = [];
    for (const item of items) {
      const tree = this.trees.get(item.dispatchId);
      let known = this.counts.get(item.dispatchId);
      if (tree && (!known || !known.terminal)) {
        // A watched dispatch is read anyway: share its counts instead of reading again.
        known = { counts: countByStatus([...tree.nodes.values()].filter((n) => !n.path.includes('/'))), readAt: now, terminal: tree.terminal };
        this.counts.set(item.dispatchId, known);
      }
      const stale = !known || (!known.terminal && now - known.readAt >= Math.max(subject?.intervalMs ?? this.min, item.nodeCount * this.msPerNode));
      if (stale) {
        const result = await this.read(item.dispatchId);
        known = { counts: countByStatus(result.nodes), readAt: now, terminal: TERMINAL.has(result.status) };
        this.counts.set(item.dispatchId, known);
      }
      if (!TERMINAL.has(item.status)) heaviest = Math.max(heaviest, item.nodeCount);
      rows.push({
        dispatchId: item.dispatchId,
        lattice: item.lattice,
        status: item.status,
        startedAt: item.startedAt,
        ...(item.endedAt ? { endedAt: item.endedAt } : {}),
        nodeCount: item.nodeCount,
        ...(known ? { counts: known.counts } : {}),
      });
    }
    const changed = JSON.stringify(rows) !== JSON.stringify(this.listRows);
    this.listRows = rows;
    this.pace(subject, changed, heaviest);
    if (changed && subject) for (const listener of subject.listeners) listener({ kind: 'data', data: rows });
  }

  private async pollDispatch(dispatchId: string): Promise<void> {
    const subject = this.subjects.get(`dispatch:${dispatchId}`);
    const previous = this.trees.get(dispatchId);
    const main = await this.read(dispatchId);
    const nodes = new Map<string, NodeView>();
    const children: TreeState['children'] = new Map();
    const audit: CancelAuditEntry[] = [];
    await this.collect(main, '', nodes, children, audit, previous, 0);
    const terminal = TERMINAL.has(main.status) && [...children.values()].every((c) => c.terminal);
    const header: DispatchHeader = {
      dispatchId,
      lattice: main.lattice,
      status: main.status,
      startedAt: main.startedAt,
      ...(main.endedAt ? { endedAt: main.endedAt } : {}),
      ...(main.error ? { error: { name: main.error.name, message: main.error.message } } : {}),
      cancelRequests: audit.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt)),
      ...(this.options.consoleRegion ? { consoleRegion: this.options.consoleRegion } : {}),
    };
    const fingerprints = new Map<string, string>();
    const changedNodes: NodeView[] = [];
    for (const [path, node] of nodes) {
      const print = JSON.stringify(node);
      fingerprints.set(path, print);
      if (previous?.fingerprints.get(path) !== print) changedNodes.push(node);
    }
    const headerFingerprint = JSON.stringify(header);
    const structureChanged = !previous || previous.nodes.size !== nodes.size;
    const changed = structureChanged || changedNodes.length > 0 || headerFingerprint !== previous.headerFingerprint;
    this.trees.set(dispatchId, { header, nodes, fingerprints, headerFingerprint, terminal, children });
    this.pace(subject, changed, nodes.size);
    if (subject) subject.settled = terminal;
    if (!changed || !subject) return;
    const update: DispatchUpdate = structureChanged
      ? { header, nodes: [...nodes.values()], full: true }
      : { header, nodes: changedNodes, full: false };
    for (const listener of subject.listeners) listener({ kind: 'data', data: update });
  }

  // Walks a dispatch and, through sublattice nodes, its child dispatches; terminal children
  // read before are reused, never read again.
  private async collect(
    result: DispatchResult,
    prefix: string,
    nodes: Map<string, NodeView>,
    children: TreeState['children'],
    audit: CancelAuditEntry[],
    previous: TreeState | undefined,
    depth: number,
  ): Promise<void> {
    for (const request of result.cancelRequests) {
      const item = request as typeof request & CancelRequestProgress;
      const entry: CancelAuditEntry = {
        requestId: request.requestId,
        requestedAt: request.requestedAt,
        requestedBy: request.requestedBy,
        ...(request.reason ? { reason: request.reason } : {}),
        targets: request.targets.map((t) => `${prefix}${String(t)}`),
        dispatchId: result.dispatchId,
        ...progressFields(item),
      };
      // A follower's read may be fresher than this one (it polls faster while the request is open).
      const followed = this.cancelProgress.get(request.requestId);
      const fresher = followed && (item.state !== 'DONE' || followed.state === 'DONE') && (followed.progressAt ?? '') >= (item.progressAt ?? '');
      audit.push(fresher ? withProgress(entry, followed) : entry);
    }
    const subs: { node: NodeResult; path: string }[] = [];
    for (const node of result.nodes) {
      const path = `${prefix}${node.id}`;
      nodes.set(path, toView(node, result.dispatchId, prefix));
      if (node.childDispatchId && depth < (this.options.maxDepth ?? 8)) subs.push({ node, path });
    }
    await Promise.all(
      subs.map(async ({ node, path }) => {
        const known = previous?.children.get(path);
        const child = known && known.dispatchId === node.childDispatchId && known.terminal ? known.result : await this.read(node.childDispatchId!);
        const terminal = TERMINAL.has(child.status);
        children.set(path, { dispatchId: child.dispatchId, result: child, terminal });
        await this.collect(child, `${path}/`, nodes, children, audit, previous, depth + 1);
      }),
    );
  }
}

function progressFields(p: CancelRequestProgress): Partial<CancelAuditEntry> {
  return {
    ...(p.state ? { state: p.state } : {}),
    ...(p.progress ? { progress: { phase: p.progress.phase, done: p.progress.done, total: p.progress.total } } : {}),
    ...(p.attempts !== undefined ? { attempts: p.attempts } : {}),
    ...(p.lastError ? { lastError: p.lastError } : {}),
    ...(p.finishedAt ? { finishedAt: p.finishedAt } : {}),
  };
}

function withProgress(entry: CancelAuditEntry, progress: CancelRequestProgress): CancelAuditEntry {
  const { state: _s, progress: _p, attempts: _a, lastError: _l, finishedAt: _f, ...rest } = entry;
  return { ...rest, ...progressFields(progress) };
}

function toView(node: NodeResult, dispatchId: string, prefix: string): NodeView {
  return {
    path: `${prefix}${node.id}`,
    dispatchId,
    id: node.id,
    name: node.name,
    kind: node.kind,
    status: node.status,
    executor: node.executor,
    parents: (node.parents ?? []).map((p) => `${prefix}${p}`),
    attempts: node.attempts,
    cancelRequested: node.cancelRequested,
    ...(node.startedAt ? { startedAt: node.startedAt } : {}),
    ...(node.endedAt ? { endedAt: node.endedAt } : {}),
    ...(node.error ? { error: { name: node.error.name, message: node.error.message, ...(node.error.code ? { code: node.error.code } : {}) } } : {}),
    ...(node.jobHandle ? { jobHandle: node.jobHandle } : {}),
    ...(node.cancelledBy ? { cancelledBy: node.cancelledBy } : {}),
    ...(node.cancelReason ? { cancelReason: node.cancelReason } : {}),
    ...(node.childDispatchId ? { childDispatchId: node.childDispatchId } : {}),
  };
}
