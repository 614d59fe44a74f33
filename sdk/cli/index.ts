/**
 * The `valence` command and the pieces of it other programs reuse: the live view (the demo
 * drives it) and the report of how each task ended.
 *
 * @module
 */
export { main } from './main.ts';
export type { CliIo } from './main.ts';
export { watchDispatch, fetchTree, treeEnded } from './watch.ts';
export type { WatchOptions, ViewOutput } from './watch.ts';
export {
  renderFrame,
  renderReport,
  renderSummary,
  renderCancelReport,
  treeRows,
  toJson,
  treeJson,
  CANCEL_METHOD_TEXT,
} from './format.ts';
export type { DispatchTree, TreeRow } from './format.ts';
export { ExitCode, CliUsageError, describeFailure } from './errors.ts';
