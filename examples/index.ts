/**
 * The default workflows module: every lattice exported here becomes a state machine when the
 * local cloud starts or `cdk deploy` runs.
 */
export { research, sweep } from './research.ts';
