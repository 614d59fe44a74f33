/**
 * Test harness: validate compiled definitions with asl-validator, and run them in the
 * aws-local-stepfunctions interpreter with stub step handlers that record when each node
 * starts and ends.
 */
import aslValidator from 'asl-validator';
import type { AslDefinition } from '../../../sdk/compiler/index.ts';
import { loadInterpreterModule } from '../../../localstack/stepfunctions/interpreter.ts';

// aws-local-stepfunctions needs Promise.withResolvers, which Node 20 lacks: loaded with it in scope, the global Promise untouched.
const { StateMachine } = loadInterpreterModule();

/** asl-validator's verdict on a definition (checked on a copy: the validator mutates its input). */
export function validateAsl(definition: unknown): { isValid: boolean; errors: string[] } {
  const result = aslValidator(structuredClone(definition), { checkArn: true, checkPaths: true });
  return { isValid: result.isValid, errors: result.errors.map((error) => JSON.stringify(error)) };
}

/** When one node ran, in ms since the execution started. */
export interface NodeTiming {
  readonly start: number;
  readonly end: number;
}

/** What a stub run saw. */
export interface StubRun {
  readonly timings: ReadonlyMap<number, NodeTiming>;
  /** How many times each node's `run` was invoked. */
  readonly runs: ReadonlyMap<number, number>;
  /** `await` events received, with their `waitFor`. */
  readonly awaits: ReadonlyArray<{ nodeId: number; waitFor: readonly number[] | undefined }>;
  /** The execution's output. */
  readonly output: unknown;
}

const TOKEN_MARKER = '__task_token__';

// The interpreter cannot evaluate $$.Task.Token; put a marker in its place.
function withoutTaskToken(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTaskToken);
  if (value !== null && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (key === 'taskToken.$' && item === '$$.Task.Token') result['taskToken'] = TOKEN_MARKER;
      else result[key] = withoutTaskToken(item);
    }
    return result;
  }
  return value;
}

function taskStateNames(definition: { States: Record<string, Record<string, unknown>> }, into: Set<string> = new Set()): Set<string> {
  for (const [name, state] of Object.entries(definition.States)) {
    if (state['Type'] === 'Task') into.add(name);
    for (const branch of (state['Branches'] as AslDefinition[] | undefined) ?? []) taskStateNames(branch, into);
    const processor = state['ItemProcessor'] as AslDefinition | undefined;
    if (processor !== undefined) taskStateNames(processor, into);
  }
  return into;
}

interface StepPayload {
  action: 'run' | 'await' | 'finalize' | 'plan';
  dispatchId: string;
  nodeId?: number;
  waitFor?: number[];
  taskToken?: string;
  /** An `await` that also runs its node (issue 18). */
  run?: boolean;
  splitAbove?: number;
}

/**
 * Run `definition` in the interpreter. Stub handlers: `run` sleeps `durationMs(nodeId)`;
 * `await` resolves once every listed parent (or, without `waitFor`, every parent from
 * `parents`) has ended; `plan` lists `nodeCount` nodes; `finalize` reports COMPLETED.
 */
export async function runWithStubs(
  definition: AslDefinition,
  graph: { nodeCount: number; parents: (id: number) => readonly number[]; durationMs: (id: number) => number },
  input: Record<string, unknown> = {},
): Promise<StubRun> {
  const dispatchId = 'dispatch-under-test';
  const ended = new Map<number, { promise: Promise<void>; resolve: () => void }>();
  const endedSignal = (id: number) => {
    let entry = ended.get(id);
    if (entry === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((res) => (resolve = res));
      entry = { promise, resolve };
      ended.set(id, entry);
    }
    return entry;
  };
  const timings = new Map<number, NodeTiming>();
  const runs = new Map<number, number>();
  const awaits: Array<{ nodeId: number; waitFor: readonly number[] | undefined }> = [];
  let t0 = 0;

  const runNode = async (nodeId: number): Promise<void> => {
    runs.set(nodeId, (runs.get(nodeId) ?? 0) + 1);
    const start = performance.now() - t0;
    await new Promise((resolve) => setTimeout(resolve, graph.durationMs(nodeId)));
    timings.set(nodeId, { start, end: performance.now() - t0 });
    endedSignal(nodeId).resolve();
  };

  const handler = async (event: unknown): Promise<Record<string, unknown>> => {
    const { Payload: payload } = event as { Payload: StepPayload };
    if (payload.dispatchId !== dispatchId) throw new Error(`stub: unexpected dispatchId ${String(payload.dispatchId)}`);
    const nodeId = payload.nodeId as number;
    switch (payload.action) {
      case 'run':
        await runNode(nodeId);
        return { Payload: { nodeId } };
      case 'await': {
        awaits.push({ nodeId, waitFor: payload.waitFor });
        if (payload.taskToken !== TOKEN_MARKER) throw new Error('stub: await without a task token');
        await Promise.all((payload.waitFor ?? graph.parents(nodeId)).map((parent) => endedSignal(parent).promise));
        // An `await` that also runs its node runs it once released, as the step handler does; its token is released with the node's view.
        if (payload.run) {
          await runNode(nodeId);
          return { nodeId, status: 'COMPLETED' };
        }
        return { nodeId, released: true };
      }
      case 'plan': {
        // As the step handler plans: the graph runner asks with `splitAbove` and gets both lists, one empty (these graphs run inline).
        const nodes = Array.from({ length: graph.nodeCount }, (_, id) => ({ nodeId: id, dispatchId }));
        return { Payload: payload.splitAbove === undefined ? { dispatchId, nodes } : { dispatchId, split: false, nodes, partitions: [] } };
      }
      case 'finalize':
        return { Payload: { dispatchId, status: 'COMPLETED' } };
      default:
        throw new Error(`stub: unknown action ${String(payload.action)}`);
    }
  };

  const rewritten = withoutTaskToken(definition) as AslDefinition;
  const overrides = Object.fromEntries([...taskStateNames(rewritten)].map((name) => [name, handler]));
  const machine = new StateMachine(rewritten as never, { validationOptions: { checkArn: true, checkPaths: true } });
  t0 = performance.now();
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: overrides as never },
    context: { Execution: { Name: dispatchId, Id: `arn:aws:states:us-east-1:123456789012:execution:test:${dispatchId}` } },
  });
  const output = await execution.result;
  return { timings, runs, awaits, output };
}

/**
 * Nodes that did not start right after their last parent ended: started before it (wrong), or
 * more than `toleranceMs` after it (waited for something else).
 */
export function inexactNodes(
  timings: ReadonlyMap<number, NodeTiming>,
  parents: (id: number) => readonly number[],
  toleranceMs: number,
): Array<{ nodeId: number; lateByMs: number }> {
  const problems: Array<{ nodeId: number; lateByMs: number }> = [];
  // Roots are measured from the first node's start: the interpreter's own start-up is not the schedule's doing.
  const origin = Math.min(...[...timings.values()].map((timing) => timing.start));
  for (const [nodeId, timing] of timings) {
    const parentEnds = parents(nodeId).map((parent) => timings.get(parent)?.end ?? Number.POSITIVE_INFINITY);
    const ready = parentEnds.length === 0 ? origin : Math.max(...parentEnds);
    const late = timing.start - ready;
    if (late < -1 || late > toleranceMs) problems.push({ nodeId, lateByMs: Math.round(late) });
  }
  return problems;
}
