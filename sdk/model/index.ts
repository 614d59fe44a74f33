/**
 * The valence model: electrons, lattices, executors and transport graphs.
 *
 * This barrel is for the rest of the SDK (compiler, runtime). It also exports
 * runtime-internal helpers — `runWithTaskContext`, `resolveArgTemplate`, `BuildSession` —
 * that the public entry `sdk/index.ts` deliberately leaves out.
 *
 * @module
 */
export { electron, isElectron } from './electron.ts';
export type { Electron, ElectronOptions, MeasurementCounts, ResolvedElectronOptions } from './electron.ts';
export { Lattice, LatticeRegistry, defaultLatticeRegistry, lattice, sublattice } from './lattice.ts';
export type { GraphCallable, LatticeOptions, Sublattice, SublatticeOptions } from './lattice.ts';
export { isPlaceholder, MAX_DESTRUCTURED } from './build.ts';
export { LatticeShape, deployShape, planGraph, templateOrUndefined } from './shape.ts';
export type { GraphPlan } from './shape.ts';
export type { Input, Inputs, Node, NodeBrand, NodeParts, PathSegment, Resolved } from './build.ts';
export { NO_TASK_CONTEXT, runWithTaskContext, taskContext } from './context.ts';
export type { TaskContext } from './context.ts';
export {
  BatchExecutor,
  BraketExecutor,
  BraketHybridJobExecutor,
  CustomExecutor,
  EXECUTOR_RUNTIME_MISSING,
  Executor,
  LambdaExecutor,
  LocalExecutor,
} from './executors.ts';
export type {
  BatchExecutorOptions,
  BraketExecutorOptions,
  BraketHybridJobExecutorOptions,
  CustomTask,
  HybridJobSpec,
  ExecutorClass,
  ExecutorJSON,
  ExecutorKind,
  ExecutorOptionValue,
  ExecutorOptions,
  LambdaExecutorOptions,
  LocalExecutorOptions,
  TaskMetadata,
} from './executors.ts';
export { GRAPH_VERSION, TransportGraph, canonicalJson, graphHash, resolveArgTemplate } from './graph.ts';
export type {
  ArgTemplate,
  ConstRef,
  GraphEdge,
  GraphLattice,
  GraphNode,
  NodeCallable,
  NodeKind,
  NodeRef,
  ParamRef,
  TransportGraphJSON,
} from './graph.ts';
export { DEFAULT_GRACE_SECONDS, LATTICE_NAME } from './options.ts';
export type { NodeOptions, ResolvedNodeOptions } from './options.ts';
