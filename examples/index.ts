/**
 * The default workflows module: every static lattice exported here becomes a state machine
 * when the local cloud starts or `cdk deploy` runs; an argument-shaped one (`features`, whose
 * width is an argument) runs on the graph runner, built from its real arguments.
 */
export { features, research, sweep } from './research.ts';
