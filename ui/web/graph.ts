/**
 * The graph view: which nodes are shown, how they are grouped past a size, and their layout.
 *
 * The layout is elkjs's layered (Sugiyama) algorithm, run in elkjs's own Web Worker so the
 * page stays responsive. Up to {@link SUMMARY_THRESHOLD} visible nodes, every node is laid out
 * (an expanded sublattice is a compound node holding its child graph). Past it, the view is a
 * summary: nodes are grouped by level (longest path from a root) into clusters of at most
 * {@link CLUSTER_SIZE}, and only the clusters are laid out — a 20,000-node dispatch is about
 * a hundred boxes, each with a status bar; a click lists a cluster's nodes.
 *
 * @module
 */
import ElkModule from 'elkjs/lib/elk-api.js';
import type { ELK, ELKConstructorArguments, ElkNode } from 'elkjs/lib/elk-api.js';
import type { NodeStatusName, NodeView, StatusCounts } from '../shared/api.ts';

/** Past this many visible nodes, the summary view replaces the full graph. */
export const SUMMARY_THRESHOLD = 1500;
/** Most nodes in one cluster of the summary view. */
export const CLUSTER_SIZE = 250;

export const NODE_W = 168;
export const NODE_H = 40;
const CLUSTER_W = 220;
const CLUSTER_H = 64;
const PAD = 28;

/** A laid-out box: a node, an expanded sublattice around its child graph, or a cluster. */
export interface Box {
  readonly key: string;
  readonly kind: 'node' | 'group' | 'cluster';
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  /** For a cluster: its nodes' paths, level and label. */
  readonly members?: readonly string[];
  readonly label?: string;
}

/** A laid-out graph. */
export interface Layout {
  readonly mode: 'full' | 'summary';
  readonly boxes: readonly Box[];
  readonly edges: readonly (readonly [string, string])[];
  readonly width: number;
  readonly height: number;
  /** For the summary: the cluster of each node path. */
  readonly clusterOf: ReadonlyMap<string, string>;
  readonly millis: number;
}

/** Paths whose every enclosing sublattice is expanded. */
export function visibleNodes(nodes: ReadonlyMap<string, NodeView>, expanded: ReadonlySet<string>): NodeView[] {
  const shown: NodeView[] = [];
  for (const node of nodes.values()) {
    const parts = node.path.split('/');
    let open = true;
    for (let i = 1; i < parts.length && open; i++) open = expanded.has(parts.slice(0, i).join('/'));
    if (open) shown.push(node);
  }
  return shown;
}

/** What decides the layout: the visible paths and edges (statuses do not move boxes). */
export function structureKey(shown: readonly NodeView[], expanded: ReadonlySet<string>): string {
  return `${shown.length}|${[...expanded].sort().join(',')}|${shown.length > 0 ? shown[shown.length - 1]!.path : ''}`;
}

/** Children of each path, from the parents lists; a sublattice's child nodes count as its children. */
export function childrenOf(nodes: ReadonlyMap<string, NodeView>): Map<string, string[]> {
  const children = new Map<string, string[]>();
  const add = (from: string, to: string): void => {
    const list = children.get(from);
    if (list) list.push(to);
    else children.set(from, [to]);
  };
  for (const node of nodes.values()) {
    for (const parent of node.parents) add(parent, node.path);
    const slash = node.path.lastIndexOf('/');
    if (slash > 0) add(node.path.slice(0, slash), node.path);
  }
  return children;
}

/** A path and everything downstream of it (the target set of a task cancel). */
export function downstream(path: string, children: ReadonlyMap<string, readonly string[]>): Set<string> {
  const seen = new Set<string>([path]);
  const stack = [path];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (!seen.has(child)) {
        seen.add(child);
        stack.push(child);
      }
    }
  }
  return seen;
}

/** Node counts by status over some paths. */
export function countPaths(paths: Iterable<string>, nodes: ReadonlyMap<string, NodeView>): StatusCounts {
  const counts: Partial<Record<NodeStatusName, number>> = {};
  for (const path of paths) {
    const status = nodes.get(path)?.status;
    if (status) counts[status] = (counts[status] ?? 0) + 1;
  }
  return counts;
}

// elk-api is a UMD bundle: depending on the interop, its default import is the constructor
// itself or the CommonJS exports object holding it.
type ElkConstructor = new (args?: ELKConstructorArguments) => ELK;
const ElkClass = (ElkModule).default ?? (ElkModule as unknown as ElkConstructor);

/**
 * The layout worker and the layouts waiting on it. elkjs posts a layout to its worker and waits
 * for the answer with no error handler, so a worker that fails to load or dies would leave every
 * layout pending for ever and the page "laying out" with no word why. This engine listens for the
 * worker's errors itself: they reject what is waiting, and the next layout starts a new worker.
 */
interface Engine {
  readonly elk: ELK;
  readonly worker: Worker;
  readonly waiting: Set<(error: Error) => void>;
}

let engine: Engine | undefined;

function layoutEngine(): Engine {
  if (engine) return engine;
  const waiting = new Set<(error: Error) => void>();
  let worker: Worker | undefined;
  const elk = new ElkClass({
    // Only the algorithm the view uses: the worker registers fewer on start.
    algorithms: ['layered'],
    workerUrl: '/assets/elk-worker.js',
    workerFactory: (url) => {
      worker = new Worker(url ?? '/assets/elk-worker.js');
      const made = worker;
      made.addEventListener('error', (event) => {
        event.preventDefault();
        stopEngine(made, new Error(`the layout worker failed: ${event.message || 'it could not be loaded or it crashed'}`));
      });
      return made;
    },
  });
  engine = { elk, worker: worker!, waiting };
  return engine;
}

function stopEngine(worker: Worker, error: Error): void {
  if (engine?.worker !== worker) return;
  const stopped = engine;
  engine = undefined;
  worker.terminate();
  for (const reject of stopped.waiting) reject(error);
  stopped.waiting.clear();
}

/** The name of the error a layout fails with when {@link restartLayoutEngine} stopped it: not a failure to show. */
export const LAYOUT_RESTARTED = 'LayoutRestarted';

/**
 * Stops the layout worker, failing the layouts waiting on it; the next layout starts a fresh
 * one. The page's "Restart layout" uses it when a layout has taken far longer than it should.
 */
export function restartLayoutEngine(): void {
  if (!engine) return;
  const restarted = new Error('the layout was restarted');
  restarted.name = LAYOUT_RESTARTED;
  stopEngine(engine.worker, restarted);
}

/** One layout on the engine, failed (not left pending) if the worker fails meanwhile. */
function runLayout(root: ElkNode): Promise<ElkNode> {
  const { elk, waiting } = layoutEngine();
  return new Promise<ElkNode>((resolve, reject) => {
    waiting.add(reject);
    elk.layout(root).then(
      (laid) => {
        waiting.delete(reject);
        resolve(laid);
      },
      (error: unknown) => {
        waiting.delete(reject);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

const LAYERED = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.spacing.nodeNode': '18',
  'elk.layered.spacing.nodeNodeBetweenLayers': '44',
  'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
  'elk.padding': `[top=${PAD + 8},left=${PAD / 2},bottom=${PAD / 2},right=${PAD / 2}]`,
} as const;

/** Past this many nodes, ELK trades some crossing reduction for speed. */
const FAST_LAYOUT_NODES = 250;
const FAST = {
  'elk.layered.thoroughness': '1',
  'elk.layered.nodePlacement.strategy': 'LINEAR_SEGMENTS',
  'elk.layered.crossingMinimization.greedySwitch.type': 'OFF',
} as const;

/** Lays out the visible nodes (or their summary) with elkjs. */
export async function layoutGraph(shown: readonly NodeView[], expanded: ReadonlySet<string>): Promise<Layout> {
  const started = performance.now();
  if (shown.length > SUMMARY_THRESHOLD) return layoutSummary(shown, started);
  const byPath = new Map(shown.map((n) => [n.path, n] as const));
  const elkNodes = new Map<string, ElkNode>();
  const hasGroups = shown.some((n) => n.kind === 'sublattice' && expanded.has(n.path));
  const rootOptions: Record<string, string> = {
    ...LAYERED,
    ...(shown.length > FAST_LAYOUT_NODES ? FAST : {}),
    // Edges across an expanded sublattice's border need the hierarchy laid out as one; that is
    // slower, so only then.
    ...(hasGroups ? { 'elk.hierarchyHandling': 'INCLUDE_CHILDREN' } : {}),
    'elk.padding': '[top=12,left=12,bottom=12,right=12]',
  };
  const root: ElkNode = { id: '__root', layoutOptions: rootOptions, children: [], edges: [] };
  for (const node of shown) {
    const group = node.kind === 'sublattice' && expanded.has(node.path);
    elkNodes.set(node.path, group ? { id: node.path, layoutOptions: LAYERED, children: [] } : { id: node.path, width: NODE_W, height: NODE_H });
  }
  for (const node of shown) {
    const slash = node.path.lastIndexOf('/');
    const container = slash > 0 ? elkNodes.get(node.path.slice(0, slash)) : root;
    (container ?? root).children!.push(elkNodes.get(node.path)!);
  }
  const edges: [string, string][] = [];
  for (const node of shown) for (const parent of node.parents) if (byPath.has(parent)) edges.push([parent, node.path]);
  root.edges = edges.map(([from, to], i) => ({ id: `e${i}`, sources: [from], targets: [to] }));
  // An expanded group with no child nodes yet still needs a size.
  for (const [path, elkNode] of elkNodes) if (elkNode.children && elkNode.children.length === 0) Object.assign(elkNode, { width: NODE_W, height: NODE_H, children: undefined, id: path });
  const laid = await runLayout(root);
  const boxes: Box[] = [];
  const walk = (node: ElkNode, dx: number, dy: number): void => {
    for (const child of node.children ?? []) {
      const x = dx + (child.x ?? 0);
      const y = dy + (child.y ?? 0);
      boxes.push({ key: child.id, kind: child.children && child.children.length > 0 ? 'group' : 'node', x, y, w: child.width ?? NODE_W, h: child.height ?? NODE_H });
      walk(child, x, y);
    }
  };
  walk(laid, 0, 0);
  return { mode: 'full', boxes, edges, width: laid.width ?? 0, height: laid.height ?? 0, clusterOf: new Map(), millis: performance.now() - started };
}

/** Longest-path level of each node (roots are level 0), over the nodes given. */
export function levels(shown: readonly NodeView[]): Map<string, number> {
  const level = new Map<string, number>();
  const byPath = new Map(shown.map((n) => [n.path, n] as const));
  const visit = (path: string): number => {
    const known = level.get(path);
    if (known !== undefined) return known;
    // Iterative over a stack: a 20,000-deep chain must not overflow the call stack.
    const stack: string[] = [path];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const pending = (byPath.get(top)?.parents ?? []).filter((p) => byPath.has(p) && !level.has(p));
      if (pending.length > 0) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      const parents = (byPath.get(top)?.parents ?? []).filter((p) => byPath.has(p));
      level.set(top, parents.length === 0 ? 0 : Math.max(...parents.map((p) => level.get(p)!)) + 1);
    }
    return level.get(path)!;
  };
  for (const node of shown) visit(node.path);
  return level;
}

async function layoutSummary(shown: readonly NodeView[], started: number): Promise<Layout> {
  // Summary: the top-level graph only (expanded sublattices would not fit anyway).
  const top = shown.filter((n) => !n.path.includes('/'));
  const level = levels(top);
  const byLevel = new Map<number, string[]>();
  for (const node of top) {
    const l = level.get(node.path)!;
    const list = byLevel.get(l);
    if (list) list.push(node.path);
    else byLevel.set(l, [node.path]);
  }
  const clusterOf = new Map<string, string>();
  const clusters: { key: string; members: string[]; label: string }[] = [];
  for (const [l, paths] of [...byLevel.entries()].sort((a, b) => a[0] - b[0])) {
    paths.sort((a, b) => Number(a) - Number(b));
    for (let i = 0; i < paths.length; i += CLUSTER_SIZE) {
      const members = paths.slice(i, i + CLUSTER_SIZE);
      const key = `cluster:${l}:${i / CLUSTER_SIZE}`;
      clusters.push({ key, members, label: `level ${l} · ${members.length} nodes · ${members[0]}–${members[members.length - 1]}` });
      for (const m of members) clusterOf.set(m, key);
    }
  }
  const edgeSet = new Set<string>();
  for (const node of top) {
    const to = clusterOf.get(node.path)!;
    for (const parent of node.parents) {
      const from = clusterOf.get(parent);
      if (from && from !== to) edgeSet.add(`${from}>${to}`);
    }
  }
  const edges = [...edgeSet].map((e) => e.split('>') as [string, string]);
  const root: ElkNode = {
    id: '__root',
    layoutOptions: { ...LAYERED, 'elk.padding': '[top=12,left=12,bottom=12,right=12]' },
    children: clusters.map((c) => ({ id: c.key, width: CLUSTER_W, height: CLUSTER_H })),
    edges: edges.map(([from, to], i) => ({ id: `e${i}`, sources: [from], targets: [to] })),
  };
  const laid = await runLayout(root);
  const members = new Map(clusters.map((c) => [c.key, c] as const));
  const boxes: Box[] = (laid.children ?? []).map((c: ElkNode) => ({
    key: c.id,
    kind: 'cluster',
    x: c.x ?? 0,
    y: c.y ?? 0,
    w: c.width ?? CLUSTER_W,
    h: c.height ?? CLUSTER_H,
    members: members.get(c.id)!.members,
    label: members.get(c.id)!.label,
  }));
  return { mode: 'summary', boxes, edges, width: laid.width ?? 0, height: laid.height ?? 0, clusterOf, millis: performance.now() - started };
}
