/**
 * Starting a dispatch, where the API handler runs it (`POST /dispatches`, lambdas/api.ts):
 * refuse what cannot run before anything is written, check that the deployed state machine
 * was compiled from this lattice's graph (and, when the caller sent one, that its own
 * lattice builds the same graph), record the dispatch and its nodes, and start the execution.
 *
 * It runs beside the deployed workflows module, not in the caller: the caller needs no table
 * or state-machine access (issue 14), and the graph is built by the deployed code.
 */
import { randomUUID } from 'node:crypto';
import { DescribeStateMachineCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { compileLattice, readGraphHash, readPartitionOption } from '../compiler/asl.ts';
import { ErrorCode, ValenceError, ValidationCode, ValidationError } from '../errors.ts';
import { graphHash, type TransportGraph } from '../model/graph.ts';
import type { Lattice } from '../model/lattice.ts';
import { LatticeShape, planGraph } from '../model/shape.ts';
import type { RuntimeContext } from './context.ts';
import { createDispatchRecords, executionArnOf } from './dispatch-records.ts';
import { serialize, SerializationError } from './serialization.ts';

/** The lattice has no state machine in the stack. */
export class NotDeployedError extends ValenceError {
  override readonly name = 'NotDeployedError';
}

/** The deployed state machine was compiled from a different graph than the local lattice builds. */
export class StaleDeployError extends ValenceError {
  override readonly name = 'StaleDeployError';
}

/** What {@link startDispatch} is given besides the lattice. */
export interface DispatchStart {
  /** The arguments, decoded. */
  readonly args: readonly unknown[];
  /** The same arguments in valence's serialization format (as stored with the dispatch); serialized here when absent. */
  readonly serializedArgs?: string;
  /**
   * {@link graphHash} of the graph the caller's own copy of the lattice builds from these
   * arguments. A different graph here means the caller's code is not what is deployed.
   */
  readonly callerGraphHash?: string;
}

/** A dispatch checked and ready to be recorded: {@link prepareDispatch}'s answer, {@link launchDispatch}'s input. */
export interface PreparedDispatch {
  readonly graph: TransportGraph;
  readonly serializedArgs: string;
  readonly stateMachineArn: string;
  readonly awaitingNodes: ReadonlySet<number>;
}

/**
 * Starts a run of `lattice` in the stack of `ctx`; resolves with the dispatch id once the execution started.
 * {@link prepareDispatch} then {@link launchDispatch}.
 */
export async function startDispatch(ctx: RuntimeContext, lattice: Lattice<unknown[], unknown>, start: DispatchStart): Promise<string> {
  return launchDispatch(ctx, await prepareDispatch(ctx, lattice, start), randomUUID());
}

/**
 * Every check a dispatch must pass, before anything is written: the arguments, the caller's
 * graph, the deployed state machine and its graph.
 *
 * The body is built from the real arguments first ({@link planGraph}). When that graph is the
 * deployed template with the arguments filled in, the lattice's own state machine runs it;
 * otherwise (the body uses or branches on an argument) the graph built here is stored with the
 * dispatch and runs on the generic graph runner, which waits on every node's parents in an
 * `await` state, as a child dispatch's does. Its electrons are deployed code: the handlers
 * rebuild the same graph from the stored arguments to find them.
 */
export async function prepareDispatch(ctx: RuntimeContext, lattice: Lattice<unknown[], unknown>, start: DispatchStart): Promise<PreparedDispatch> {
  requireArgumentCount(lattice, start.args);
  const serializedArgs = start.serializedArgs ?? serializeArguments(lattice, start.args);
  const plan = planGraph(lattice, start.args);
  const graph = plan.graph;
  // Hashed at most once for both checks: for 20,000 nodes a hash is ~0.1 s of the dispatch call.
  let hashed: string | undefined;
  const localHash = (): string => (hashed ??= graphHash(graph));
  if (start.callerGraphHash !== undefined) refuseCallerMismatch(lattice.name, localHash(), start.callerGraphHash);
  if (plan.shape === LatticeShape.Argument) {
    return { graph, serializedArgs, stateMachineArn: ctx.config.graphRunnerArn, awaitingNodes: new Set(graph.nodes.map((n) => n.id)) };
  }
  const stateMachineArn = `${ctx.config.stateMachinePrefix}${lattice.name}`;
  const definition = await deployedDefinition(ctx, lattice.name, stateMachineArn);
  refuseStaleDeploy(lattice.name, localHash(), definition);
  return { graph, serializedArgs, stateMachineArn, awaitingNodes: awaitingNodesOf(graph, definition) };
}

/** Records a prepared dispatch as `dispatchId` and starts its execution; resolves with the id. */
export async function launchDispatch(ctx: RuntimeContext, prepared: PreparedDispatch, dispatchId: string): Promise<string> {
  // The execution's ARN follows from its name: it is written with the dispatch item, and
  // written again only if Step Functions answers with another.
  return startExecutionOf(ctx, { dispatchId, ...prepared });
}

/**
 * Makes sure the execution of an already recorded dispatch runs: a retried request whose first
 * attempt recorded the dispatch and was lost before (or after) `StartExecution`. Starting it
 * again with the same name and input is a no-op while it runs; once it ended, Step Functions
 * answers `ExecutionAlreadyExists`, which means the same.
 */
export async function ensureExecutionStarted(ctx: RuntimeContext, dispatch: { readonly dispatchId: string; readonly stateMachineArn: string }): Promise<void> {
  try {
    await ctx.aws.sfn.send(new StartExecutionCommand({ stateMachineArn: dispatch.stateMachineArn, name: dispatch.dispatchId, input: JSON.stringify({ dispatchId: dispatch.dispatchId }) }), { abortSignal: ctx.signal });
  } catch (error) {
    if ((error as { name?: string }).name !== 'ExecutionAlreadyExists') throw error;
  }
}

/** Writes a dispatch's records (its execution ARN among them) and starts its execution. */
async function startExecutionOf(ctx: RuntimeContext, records: PreparedDispatch & { readonly dispatchId: string }): Promise<string> {
  const { dispatchId, stateMachineArn } = records;
  const executionArn = executionArnOf(stateMachineArn, dispatchId);
  await createDispatchRecords(ctx, { ...records, executionArn }, ctx.signal);
  const started = await ctx.aws.sfn.send(new StartExecutionCommand({ stateMachineArn, name: dispatchId, input: JSON.stringify({ dispatchId }) }), { abortSignal: ctx.signal });
  if (started.executionArn && started.executionArn !== executionArn) await ctx.store.setExecutionArn(dispatchId, started.executionArn, ctx.signal);
  return dispatchId;
}

/** A {@link ValidationError} unless `args` has one value per parameter of `lattice`. */
export function requireArgumentCount(lattice: Lattice<unknown[], unknown>, args: readonly unknown[]): void {
  if (args.length !== lattice.paramCount) {
    throw new ValidationError(ValidationCode.INVALID_OPTION, `lattice "${lattice.name}" takes ${lattice.paramCount} argument(s), got ${args.length}`, { lattice: lattice.name });
  }
}

/**
 * Refuses a dispatch whose caller built another graph from the same arguments: its lattice is
 * not the deployed one. `deployedHash` is the hash of the graph the deployed code builds.
 */
function refuseCallerMismatch(latticeName: string, deployedHash: string, callerHash: string): void {
  if (deployedHash === callerHash) return;
  throw new StaleDeployError(
    ErrorCode.STALE_DEPLOY,
    `Lattice "${latticeName}" changed since it was deployed (deployed graph ${deployedHash.slice(0, 12)}, local graph ${callerHash.slice(0, 12)}). Redeploy before dispatching.`,
  );
}

/** The arguments in valence's serialization format, or a {@link ValidationError} naming what is wrong. */
export function serializeArguments(lattice: Lattice<unknown[], unknown>, args: readonly unknown[]): string {
  requireArgumentCount(lattice, args);
  try {
    return serialize(args);
  } catch (error) {
    if (!(error instanceof SerializationError)) throw error;
    throw new ValidationError(
      ValidationCode.UNSERIALIZABLE_CONSTANT,
      `lattice "${lattice.name}": an argument cannot be serialized: ${error.message}. Arguments may hold plain data, Date, Map, Set, BigInt and typed arrays, not functions or class instances`,
      { lattice: lattice.name, cause: error },
    );
  }
}

/** The deployed definition of the lattice's state machine, or {@link NotDeployedError}. */
async function deployedDefinition(ctx: RuntimeContext, latticeName: string, stateMachineArn: string): Promise<string> {
  try {
    return (await ctx.aws.sfn.send(new DescribeStateMachineCommand({ stateMachineArn }), { abortSignal: ctx.signal })).definition ?? '{}';
  } catch (error) {
    if ((error as { name?: string }).name !== 'StateMachineDoesNotExist') throw error;
    throw new NotDeployedError(
      ErrorCode.NOT_DEPLOYED,
      `Lattice "${latticeName}" is not deployed in stack "${ctx.config.stackName}" (no state machine ${stateMachineArn}). Deploy the workflows module that defines it: npx cdk deploy -c workflows=<module.ts>, or start the local cloud with --workflows <module.ts>`,
    );
  }
}

/** Refuses a dispatch whose deployed state machine was compiled from another graph (its hash is in the definition's Comment) than the one hashed to `localHash`. */
function refuseStaleDeploy(latticeName: string, localHash: string, definition: string): void {
  const deployedHash = readGraphHash(definition);
  if (deployedHash === localHash) return;
  throw new StaleDeployError(
    ErrorCode.STALE_DEPLOY,
    `Lattice "${latticeName}" changed since it was deployed (deployed graph ${deployedHash?.slice(0, 12) ?? 'unknown'}, local graph ${localHash.slice(0, 12)}). Redeploy before dispatching.`,
  );
}

/**
 * The nodes that wait in an `await` state, as the compiler reports them for the deployed
 * form (split or nested, as the definition's Comment records). The ARN is a placeholder:
 * only the shape of the graph decides which nodes wait.
 */
function awaitingNodesOf(graph: TransportGraph, definition: string): ReadonlySet<number> {
  return compileLattice(graph, { stepHandlerArn: 'arn:valence:awaiting-nodes', partition: readPartitionOption(definition) }).awaitingNodes;
}
