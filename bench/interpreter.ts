/**
 * The interpreter baseline: a compiled definition run directly on aws-local-stepfunctions with
 * no-op handlers in place of the step handler — the interpreter's own cost, without Lambda,
 * DynamoDB or S3. `await` tasks resolve once their parents' `run` tasks returned, as the
 * runtime releases them.
 */
import type { AslDefinition } from '../sdk/compiler/index.ts';
import { loadInterpreterModule } from '../localstack/stepfunctions/interpreter.ts';

// aws-local-stepfunctions needs Promise.withResolvers, which Node 20 lacks: loaded with it in scope, the global Promise untouched.
const { StateMachine } = loadInterpreterModule();

const TOKEN_MARKER = '__bench_task_token__';

// The interpreter cannot evaluate $$.Task.Token; put a marker in its place.
function withoutTaskToken(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTaskToken);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (key === 'taskToken.$' && item === '$$.Task.Token') out['taskToken'] = TOKEN_MARKER;
      else out[key] = withoutTaskToken(item);
    }
    return out;
  }
  return value;
}

function taskStateNames(definition: { States: Record<string, Record<string, unknown>> }, into = new Set<string>()): Set<string> {
  for (const [name, state] of Object.entries(definition.States)) {
    if (state['Type'] === 'Task') into.add(name);
    for (const branch of (state['Branches'] as AslDefinition[] | undefined) ?? []) taskStateNames(branch, into);
    const processor = state['ItemProcessor'] as AslDefinition | undefined;
    if (processor !== undefined) taskStateNames(processor, into);
  }
  return into;
}

/** Runs `definition` with no-op handlers; resolves with the wall time in ms. */
export async function runOnInterpreter(definition: AslDefinition, parents: readonly (readonly number[])[]): Promise<{ ms: number; runs: number; awaits: number }> {
  const done = parents.map(() => {
    let resolve!: () => void;
    const promise = new Promise<void>((res) => (resolve = res));
    return { promise, resolve };
  });
  let runs = 0;
  let awaits = 0;
  const handler = async (event: unknown): Promise<unknown> => {
    const { Payload: payload } = event as { Payload: { action?: string; nodeId?: number; waitFor?: number[]; run?: boolean } };
    const nodeId = payload.nodeId ?? -1;
    switch (payload.action ?? 'run') {
      case 'run':
        runs++;
        done[nodeId]?.resolve();
        return { Payload: { nodeId, status: 'COMPLETED' } };
      case 'await':
        awaits++;
        await Promise.all((payload.waitFor ?? parents[nodeId] ?? []).map((p) => done[p]?.promise ?? Promise.resolve()));
        if (payload.run) {
          // A wait that also runs its node (issue 18): the node runs once it is released.
          runs++;
          done[nodeId]?.resolve();
          return { nodeId, status: 'COMPLETED' };
        }
        return { nodeId, released: true };
      case 'finalize':
        return { Payload: { status: 'COMPLETED' } };
      default:
        throw new Error(`bench interpreter: unexpected action ${String(payload.action)}`);
    }
  };
  const rewritten = withoutTaskToken(definition) as AslDefinition;
  const overrides = Object.fromEntries([...taskStateNames(rewritten)].map((name) => [name, handler]));
  const machine = new StateMachine(rewritten as never, { validationOptions: { checkArn: false, checkPaths: false } });
  const t0 = performance.now();
  const execution = machine.run({ dispatchId: 'bench' }, {
    overrides: { taskResourceLocalHandlers: overrides as never },
    context: { Execution: { Name: 'bench', Id: 'arn:aws:states:us-east-1:000000000000:execution:bench:bench' } },
  });
  await execution.result;
  return { ms: performance.now() - t0, runs, awaits };
}
