/**
 * The deployed workflows module as the runtime sees it: lattices by name, the graph of each
 * dispatch, and the electron behind each node.
 *
 * A top-level dispatch runs the graph the deploy compiled — the lattice's `template()`, built
 * from the same module inside the handler. A child dispatch (a sublattice) runs the graph its
 * lattice builds from real inputs; that graph was stored in S3 when the child was created,
 * and its electrons are found by rebuilding it from the same inputs.
 */
import { pathToFileURL } from 'node:url';
import { ErrorCode, ValenceError, type ValenceErrorOptions } from '../errors.ts';
import { defaultLatticeRegistry, Lattice, type GraphCallable } from '../model/lattice.ts';
import { isElectron, type Electron } from '../model/electron.ts';
import { TransportGraph, resolveArgTemplate, type ArgTemplate, type GraphNode } from '../model/graph.ts';
import type { RuntimeContext } from './context.ts';
import { payloadKeys } from './payloads.ts';
import { deserialize } from './serialization.ts';
import type { DispatchItem } from './store.ts';

/** A loaded workflows module: whatever it exports. */
export type WorkflowsModule = Record<string, unknown>;

/** A node as the runtime reads it. */
export type RuntimeNode = GraphNode;

/** A dispatch's graph with the lookups the runtime needs. */
export interface RuntimeGraph {
  /** Name of the lattice the graph belongs to. */
  readonly lattice: string;
  readonly nodes: readonly RuntimeNode[];
  readonly parents: readonly (readonly number[])[];
  readonly children: readonly (readonly number[])[];
  readonly output: ArgTemplate;
  /** Nodes whose outputs the result template reads. */
  readonly outputNodes: readonly number[];
  readonly outputUsesParams: boolean;
  /** Per node: whether its arguments read lattice parameters. */
  readonly usesParams: readonly boolean[];
  /** Build arguments when the graph came from `build(...args)` (child dispatches). */
  readonly buildArgs?: string;
}

/** Finds graphs and electrons; one per warm handler. */
export interface GraphCatalog {
  /** File URL of the workflows module (what workers and job runners import). */
  readonly workflowsUrl: string;
  /** How electron worker threads start. */
  readonly worker: { readonly workerUrl: URL; readonly typescript: boolean };
  /** How local job-runner processes start. */
  readonly jobRunner: { readonly path: string; readonly execArgv: readonly string[] };
  /**
   * The graph a dispatch runs. `signal` bounds the S3 reads of a child dispatch's graph (pass
   * the invocation's `ctx.signal`); a read that aborts is not cached.
   */
  graphFor(dispatch: DispatchItem, signal?: AbortSignal): Promise<RuntimeGraph>;
  /** A lattice by name; throws when the module has none. */
  lattice(name: string): Promise<Lattice>;
  /** The function of an electron of a lattice's graph. */
  electron(lattice: string, electron: string, buildArgs?: string): Promise<(...args: unknown[]) => unknown>;
  /** Decodes an electron's serialized output. */
  deserializeOutput(text: string): unknown;
}

/** Thrown when the deployed module lacks a lattice or electron a dispatch names. */
export class WorkflowLookupError extends ValenceError {
  override readonly name: string = 'WorkflowLookupError';
  declare readonly code: typeof ErrorCode.WORKFLOW_LOOKUP_FAILED;
  constructor(message: string, options: ValenceErrorOptions = {}) {
    super(ErrorCode.WORKFLOW_LOOKUP_FAILED, message, options);
  }
}

/** Imports a workflows module given as a path or URL (`.ts` needs tsx registered). */
export async function importWorkflows(workflows: string): Promise<WorkflowsModule> {
  const url = workflows.startsWith('file:') ? workflows : pathToFileURL(workflows).href;
  let module: WorkflowsModule;
  try {
    module = (await import(url)) as WorkflowsModule;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_REQUIRE_CYCLE_MODULE') throw commonJsWorkflows(workflows, error);
    throw error;
  }
  // A TypeScript module of a package without "type": "module" is compiled to CommonJS by tsx,
  // and its `valence` is then another copy, whose lattices are not this one's.
  const foreign = Object.values(module).some((value) => !(value instanceof Lattice) && (value as { constructor?: { name?: unknown } } | null)?.constructor?.name === 'Lattice');
  if (foreign && latticesOf(module).length === 0) throw commonJsWorkflows(workflows);
  return module;
}

function commonJsWorkflows(workflows: string, cause?: unknown): WorkflowLookupError {
  return new WorkflowLookupError(
    `The workflows module ${workflows} was loaded as CommonJS, with a copy of valence of its own: make it an ES module (name it .mts, or set "type": "module" in its package.json)`,
    cause === undefined ? {} : { cause },
  );
}

/** The lattices a module exports (and, through the registry, the ones they use). */
export function latticesOf(module: WorkflowsModule): Lattice[] {
  const exported = Object.values(module).filter((value): value is Lattice => value instanceof Lattice);
  const names = new Set(exported.map((l) => l.name));
  return [...exported, ...defaultLatticeRegistry.list().filter((l) => !names.has(l.name))];
}

/** Resolves an argument or output template. */
export function resolveTemplate(template: ArgTemplate | readonly ArgTemplate[], lookup: { node(id: number): unknown; param(index: number): unknown }): unknown {
  return resolveArgTemplate(template, lookup);
}

function scanTemplate(template: unknown, onNode: (id: number) => void, onParam: () => void): void {
  if (Array.isArray(template)) {
    for (const item of template) scanTemplate(item, onNode, onParam);
    return;
  }
  if (template === null || typeof template !== 'object') return;
  const record = template as Record<string, unknown>;
  const keys = Object.keys(record);
  if ('$node' in record) return onNode(record['$node'] as number);
  if (keys.length === 1 && keys[0] === '$param') return onParam();
  if (keys.length === 1 && keys[0] === '$const') return;
  for (const key of keys) scanTemplate(record[key], onNode, onParam);
}

/** Turns a transport graph into the runtime's view of it. */
export function runtimeGraph(graph: TransportGraph, buildArgs?: string): RuntimeGraph {
  const usesParams = graph.nodes.map((node) => {
    let uses = false;
    scanTemplate(node.args, () => undefined, () => (uses = true));
    return uses;
  });
  const outputNodes = new Set<number>();
  let outputUsesParams = false;
  scanTemplate(graph.output, (id) => outputNodes.add(id), () => (outputUsesParams = true));
  return {
    lattice: graph.lattice.name,
    nodes: graph.nodes,
    parents: graph.nodes.map((n) => graph.parents(n.id)),
    children: graph.nodes.map((n) => graph.children(n.id)),
    output: graph.output,
    outputNodes: [...outputNodes].sort((a, b) => a - b),
    outputUsesParams,
    usesParams,
    ...(buildArgs === undefined ? {} : { buildArgs }),
  };
}

/** Options of {@link createGraphCatalog}. */
export interface GraphCatalogOptions {
  readonly ctx: RuntimeContext;
  /** The workflows module's path or file URL. */
  readonly workflows: string;
  /** The module itself when it is already imported (a bundle imports it statically). */
  readonly module?: WorkflowsModule;
  readonly worker: { readonly workerUrl: URL; readonly typescript: boolean };
  readonly jobRunner: { readonly path: string; readonly execArgv: readonly string[] };
}

/** Builds the catalog a handler uses; graphs and lookups are cached for the warm container. */
export function createGraphCatalog(options: GraphCatalogOptions): GraphCatalog {
  const workflowsUrl = options.workflows.startsWith('file:') ? options.workflows : pathToFileURL(options.workflows).href;
  let loaded: Promise<WorkflowsModule> | undefined = options.module ? Promise.resolve(options.module) : undefined;
  const load = (): Promise<WorkflowsModule> => (loaded ??= importWorkflows(workflowsUrl));
  const templates = new Map<string, RuntimeGraph>();
  const childGraphs = new Map<string, Promise<RuntimeGraph>>();
  const lattice = async (name: string): Promise<Lattice> => {
    const module = await load();
    const found = latticesOf(module).find((l) => l.name === name);
    if (!found) throw new WorkflowLookupError(`The deployed workflows module has no lattice named "${name}"; redeploy with the module that defines it`);
    return found;
  };
  return {
    workflowsUrl,
    worker: options.worker,
    jobRunner: options.jobRunner,
    lattice,
    async graphFor(dispatch, signal) {
      // A child dispatch, or an argument-shaped top-level one: its graph was built from real inputs and stored.
      if (dispatch.parent || dispatch.stateMachineArn === options.ctx.config.graphRunnerArn) {
        let graph = childGraphs.get(dispatch.dispatchId);
        if (!graph) {
          graph = (async () => {
            const json = await options.ctx.payloads.getText(payloadKeys.graph(dispatch.dispatchId), signal);
            const args = await options.ctx.payloads.getText(payloadKeys.args(dispatch.dispatchId), signal);
            return runtimeGraph(TransportGraph.fromJSON(json), args);
          })();
          childGraphs.set(dispatch.dispatchId, graph);
          graph.catch(() => childGraphs.delete(dispatch.dispatchId));
          if (childGraphs.size > 256) childGraphs.delete(childGraphs.keys().next().value!);
        }
        return graph;
      }
      let graph = templates.get(dispatch.lattice);
      if (!graph) {
        graph = runtimeGraph(templateOf(await lattice(dispatch.lattice)));
        templates.set(dispatch.lattice, graph);
      }
      return graph;
    },
    async electron(latticeName, electronName, buildArgs) {
      return findElectron(await load(), latticeName, electronName, buildArgs);
    },
    deserializeOutput: (text) => deserialize(text),
  };
}

const electronCache = new Map<string, (...args: unknown[]) => unknown>();

/**
 * A lattice's template graph, built once per thread: the step handler needs it twice (the
 * dispatch's graph, and the electron behind a node), and building a 1,000-node template takes
 * tens of milliseconds of a cold container's CPU. A lattice's template depends on nothing but
 * its code, so one build serves every dispatch of it.
 */
function templateOf(lattice: Lattice): TransportGraph<GraphCallable> {
  let graph = templateGraphs.get(lattice);
  if (!graph) templateGraphs.set(lattice, (graph = lattice.template()));
  return graph;
}
const templateGraphs = new WeakMap<Lattice, TransportGraph<GraphCallable>>();

/**
 * The function behind electron `electronName` of lattice `latticeName`: found in the graph
 * the lattice builds (its template, or `build(...args)` for a child dispatch).
 */
export function findElectron(
  module: WorkflowsModule,
  latticeName: string,
  electronName: string,
  buildArgs?: string,
): (...args: unknown[]) => unknown {
  const key = `${latticeName}\u0000${electronName}\u0000${buildArgs ?? ''}`;
  const cached = electronCache.get(key);
  if (cached) return cached;
  const lattice = latticesOf(module).find((l) => l.name === latticeName);
  if (!lattice) throw new WorkflowLookupError(`The workflows module has no lattice named "${latticeName}"`);
  const graph = buildArgs === undefined ? templateOf(lattice) : lattice.build(...deserialize<unknown[]>(buildArgs));
  for (const callable of graph.callables.values()) {
    const c = callable;
    if (c.kind === 'electron' && c.name === electronName) {
      const fn = c.fn as (...args: unknown[]) => unknown;
      electronCache.set(key, fn);
      if (electronCache.size > 1024) electronCache.delete(electronCache.keys().next().value!);
      return fn;
    }
  }
  // A redispatch may swap an electron for another of the same module (`replaceElectrons`).
  const replacement = Object.values(module).find((value) => isElectron(value) && value.name === electronName) as Electron | undefined;
  if (replacement) {
    const fn = replacement.fn as (...args: unknown[]) => unknown;
    electronCache.set(key, fn);
    return fn;
  }
  throw new WorkflowLookupError(`Lattice "${latticeName}" has no electron named "${electronName}", and the workflows module exports none`);
}
