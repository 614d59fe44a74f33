/**
 * The executor-driver kinds and what the compiler must know of each, as pure data: the
 * compiler imports this module (it must not load AWS clients or the runtime), and the drivers
 * read their traits from the same table, so a kind's wiring is written once.
 *
 * {@link driverKindOf} is the one place that maps a node's executor to a driver kind; every
 * other decision is a lookup of that kind (see `driverFor` in `./index.ts`).
 *
 * @module
 */
import { BraketHybridJobExecutor, type ExecutorJSON } from '../../model/executors.ts';

/** The drivers, one per way of running a node. */
export const DriverKind = {
  /** A Lambda electron run in a worker thread of the step handler. */
  Inline: 'inline',
  /** An AWS Batch job (or one child of a packed array job). */
  Batch: 'batch',
  /** An Amazon Braket quantum task. */
  BraketTask: 'braket-task',
  /** An Amazon Braket hybrid job. */
  BraketJob: 'braket-job',
  /** A local process group owned by the step handler. */
  Local: 'local',
  /** A sublattice: a child dispatch on the graph-runner state machine. */
  ChildDispatch: 'child-dispatch',
  /** A user's `CustomExecutor`. */
  Custom: 'custom',
} as const;
/** One of {@link DriverKind}; also the `jobKind` a driver records with its job handle. */
export type DriverKind = (typeof DriverKind)[keyof typeof DriverKind];

/** What the compiler and the store need of a kind, without loading its driver. */
export interface DriverTraits {
  /**
   * Whether the node's Task state waits for a callback (`waitForTaskToken`): true for work
   * that outlives the step handler's invocation or that a child execution ends.
   */
  readonly usesCallback: boolean;
}

/** The traits of every kind. */
export const DRIVER_TRAITS: { readonly [K in DriverKind]: DriverTraits } = {
  inline: { usesCallback: false },
  batch: { usesCallback: true },
  'braket-task': { usesCallback: true },
  'braket-job': { usesCallback: true },
  local: { usesCallback: true },
  'child-dispatch': { usesCallback: true },
  custom: { usesCallback: true },
};

/** How each executor family maps to a driver (Braket is split by its executor name below). */
const KIND_OF_EXECUTOR: { readonly [K in ExecutorJSON['kind']]: DriverKind } = {
  lambda: DriverKind.Inline,
  batch: DriverKind.Batch,
  braket: DriverKind.BraketTask,
  local: DriverKind.Local,
  custom: DriverKind.Custom,
};

/**
 * The driver kind of a node: a sublattice runs a child dispatch; an electron runs on the
 * driver of its executor. The only place that looks at executor kinds and names.
 */
export function driverKindOf(node: { readonly kind: 'electron' | 'sublattice'; readonly executor: ExecutorJSON }): DriverKind {
  if (node.kind === 'sublattice') return DriverKind.ChildDispatch;
  if (node.executor.name === BraketHybridJobExecutor.executorName) return DriverKind.BraketJob;
  return KIND_OF_EXECUTOR[node.executor.kind] ?? DriverKind.Custom;
}

/** Whether a node's Task state waits for a callback; see {@link DriverTraits.usesCallback}. */
export function usesCallback(node: Parameters<typeof driverKindOf>[0]): boolean {
  return DRIVER_TRAITS[driverKindOf(node)].usesCallback;
}

const KINDS: ReadonlySet<string> = new Set(Object.values(DriverKind));

/** Narrows a stored `jobKind` to a driver kind; undefined for none or an unknown one. */
export function asDriverKind(jobKind: string | undefined): DriverKind | undefined {
  return jobKind !== undefined && KINDS.has(jobKind) ? (jobKind as DriverKind) : undefined;
}

/** The executor as a node item names it: the family for built-ins, the registry name for a custom executor. */
export function executorLabel(executor: ExecutorJSON): string {
  return KIND_OF_EXECUTOR[executor.kind] === DriverKind.Custom ? executor.name : executor.kind;
}
