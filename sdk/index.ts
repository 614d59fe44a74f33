/**
 * valence — serverless workflows on AWS Step Functions, with cancellation you can trust.
 *
 * Write tasks as {@link electron}s and workflows as {@link lattice}s; pick where each task runs
 * with an executor; compile a lattice to a state machine with {@link compileLattice}. This is
 * the curated public surface: everything a workflow author or a deploy tool needs, nothing
 * the runtime keeps for itself.
 *
 * @example
 * ```ts
 * import { electron, lattice, compileLattice } from 'valence';
 * const square = electron((x: number) => x * x);
 * const sum = electron((xs: number[]) => xs.reduce((a, b) => a + b, 0));
 * export const sumOfSquares = lattice({ name: 'sum-of-squares' }, () => sum([1, 2, 3].map((x) => square(x))));
 * const { definition } = compileLattice(sumOfSquares, { stepHandlerArn });
 * ```
 *
 * @module
 */

// Model: tasks, workflows, placeholders.
export { electron, lattice, sublattice, Lattice, LatticeRegistry, defaultLatticeRegistry, taskContext } from './model/index.ts';
export type {
  Electron,
  ElectronOptions,
  GraphCallable,
  Input,
  Inputs,
  LatticeOptions,
  MeasurementCounts,
  Node,
  // What Node<T> is made of: declarations emitted for a user's exported lattices name them.
  NodeBrand,
  NodeParts,
  PathSegment,
  NodeOptions,
  Resolved,
  ResolvedElectronOptions,
  Sublattice,
  SublatticeOptions,
  TaskContext,
} from './model/index.ts';

// Executors: where nodes run, and the cancel plugin contract. Loading the drivers gives the
// built-in executors' cancel(taskMetadata, jobHandle) its implementation.
import './runtime/drivers/index.ts';
export { Executor, CustomExecutor, LambdaExecutor, BatchExecutor, BraketExecutor, BraketHybridJobExecutor, LocalExecutor } from './model/index.ts';
export type {
  BatchExecutorOptions,
  BraketExecutorOptions,
  BraketHybridJobExecutorOptions,
  HybridJobSpec,
  ExecutorClass,
  ExecutorJSON,
  ExecutorKind,
  ExecutorOptions,
  ExecutorOptionValue,
  LambdaExecutorOptions,
  LocalExecutorOptions,
  TaskMetadata,
} from './model/index.ts';

// Transport graphs.
export { TransportGraph, GRAPH_VERSION, graphHash } from './model/index.ts';
export type { ArgTemplate, GraphEdge, GraphLattice, GraphNode, NodeKind, TransportGraphJSON } from './model/index.ts';

// Compiler.
export { compileLattice, compileGraphRunner, readGraphHash, toDot, MAX_DEFINITION_BYTES, MAX_HISTORY_EVENTS } from './compiler/index.ts';
export type {
  AslDefinition,
  CompileGraphRunnerOptions,
  CompileLatticeOptions,
  CompileStats,
  CompiledGraphRunner,
  CompiledLattice,
} from './compiler/index.ts';

// Errors and statuses.
export { ValenceError, ValidationError, ValidationCode, TaskCancelledError, isCancellation } from './errors.ts';
export type { ValenceErrorOptions, ValidationErrorOptions, TaskCancelledErrorOptions } from './errors.ts';
export {
  NodeStatus,
  DispatchStatus,
  TERMINAL_NODE_STATUSES,
  TERMINAL_DISPATCH_STATUSES,
  isTerminalNodeStatus,
  isTerminalDispatchStatus,
} from './status.ts';

// Client: dispatch, read, cancel — against AWS, LocalStack or the local cloud by endpoint alone.
export {
  connect,
  dispatch,
  getResult,
  cancel,
  listDispatches,
  StackNotFoundError,
  NotDeployedError,
  StaleDeployError,
  CancelRequestError,
  RedispatchError,
  PlanAction,
  DispatchEndedError,
  dispatchIdOf,
} from './client/index.ts';
export type { ConnectOptions, ValenceClient, StackOutputs, GetResultOptions, CancelOptions, CancelAccepted, CancelProgress } from './client/index.ts';
export type { DispatchRef, DispatchRun, RunResultOptions } from './client/index.ts';
export type { RedispatchOptions, RedispatchPlan, PlannedNode } from './client/index.ts';
export type { DispatchResult, NodeResult } from './runtime/describe.ts';
export type { CancelReport, CancelledNode } from './runtime/cancel.ts';
export { CancelMethod } from './status.ts';
export { DispatchNotFoundError, InvocationDeadlineError } from './errors.ts';
export type { CancelRequestItem } from './runtime/store.ts';
export type { CustomTask } from './model/index.ts';
