import { describe, expect, it } from 'vitest';
import { loadInterpreter } from '../../../localstack/stepfunctions/interpreter.ts';

describe('the Step Functions interpreter on this Node', () => {
  it('runs a Task with a timeout without installing Promise.withResolvers on the global Promise', async () => {
    const hadIt = typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers === 'function';
    const { StateMachine } = await loadInterpreter();
    const machine = new StateMachine(
      { StartAt: 'T', States: { T: { Type: 'Task', Resource: 'local', TimeoutSeconds: 5, End: true } } },
      { validationOptions: { noValidate: true } },
    );
    // A Task with TimeoutSeconds is where the interpreter calls Promise.withResolvers.
    const run = machine.run({ n: 1 }, { overrides: { taskResourceLocalHandlers: { T: (input) => Promise.resolve({ got: input }) } } });
    expect(await run.result).toEqual({ got: { n: 1 } });
    expect(typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers === 'function').toBe(hadIt);
  });
});
