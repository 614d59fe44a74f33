/**
 * The compiler: transport graphs to Step Functions state machines, and to Graphviz.
 *
 * @module
 */
export {
  GRAPH_RUNNER_COMMENT,
  HISTORY_EVENTS,
  LAMBDA_RETRY_ERRORS,
  MAX_DEFINITION_BYTES,
  MAX_HISTORY_EVENTS,
  compileGraphRunner,
  compileLattice,
  graphRunnerHistoryEvents,
  readGraphHash,
  readPartitionOption,
} from './asl.ts';
export type {
  AslDefinition,
  AslState,
  AslValue,
  CompileGraphRunnerOptions,
  CompileLatticeOptions,
  CompileOptionsBase,
  CompileStats,
  CompiledGraphRunner,
  CompiledLattice,
  LatticeSource,
} from './asl.ts';
export { toDot } from './dot.ts';
export { schedule } from './schedule.ts';
export type { Block, Dag, Schedule } from './schedule.ts';
