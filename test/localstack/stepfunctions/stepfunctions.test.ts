import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateStateMachineCommand,
  DeleteStateMachineCommand,
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  UpdateStateMachineCommand,
  type DescribeExecutionCommandOutput,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { ACCOUNT, FunctionError, REGION, ROLE, sleep, startHarness, until, type Harness } from './harness.ts';

const INVOKE = 'arn:aws:states:::lambda:invoke';
const CALLBACK = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
const fnArn = (name: string): string => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;

/** A lambda:invoke Task as valence's compiler emits it. */
function invokeTask(functionName: string, next: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Type: 'Task',
    Resource: INVOKE,
    Parameters: { FunctionName: functionName, 'Payload.$': '$' },
    ...(next ? { Next: next } : { End: true }),
    ...extra,
  };
}

let h: Harness;
let counter = 0;
let tmp: string;

beforeAll(async () => {
  h = await startHarness();
  tmp = await mkdtemp(join(tmpdir(), 'valence-sfn-'));
});

afterAll(async () => {
  await h.close();
  await rm(tmp, { recursive: true, force: true });
});

async function createMachine(definition: unknown, name = `machine-${++counter}`): Promise<string> {
  const out = await h.sfn.send(new CreateStateMachineCommand({ name, definition: JSON.stringify(definition), roleArn: ROLE }));
  return out.stateMachineArn!;
}

async function start(stateMachineArn: string, input: unknown = {}, name?: string): Promise<string> {
  const out = await h.sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input), ...(name ? { name } : {}) }));
  return out.executionArn!;
}

async function describe_(executionArn: string): Promise<DescribeExecutionCommandOutput> {
  return h.sfn.send(new DescribeExecutionCommand({ executionArn }));
}

async function finished(executionArn: string, timeoutMs = 10_000): Promise<DescribeExecutionCommandOutput> {
  let out = await describe_(executionArn);
  const deadline = Date.now() + timeoutMs;
  while (out.status === 'RUNNING') {
    if (Date.now() > deadline) throw new Error(`execution still running: ${executionArn}`);
    await sleep(20);
    out = await describe_(executionArn);
  }
  return out;
}

async function history(executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await h.sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 1000 }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

async function sdkError(promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

describe('state machines', () => {
  const definition = { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } };

  it('creates, describes, lists, updates and deletes a state machine', async () => {
    // GIVEN a new state machine
    const arn = await createMachine(definition, 'crud-machine');
    expect(arn).toBe(`arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:crud-machine`);

    // WHEN it is described and listed
    const described = await h.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn }));
    const listed = await h.sfn.send(new ListStateMachinesCommand({}));

    // THEN both show it as AWS does
    expect(described).toMatchObject({ name: 'crud-machine', status: 'ACTIVE', type: 'STANDARD', roleArn: ROLE });
    expect(JSON.parse(described.definition!)).toEqual(definition);
    expect(described.creationDate).toBeInstanceOf(Date);
    expect(listed.stateMachines?.map((m) => m.stateMachineArn)).toContain(arn);

    // WHEN it is updated, THEN the new definition is described
    const updatedDefinition = { StartAt: 'Q', States: { Q: { Type: 'Succeed' } } };
    const updated = await h.sfn.send(new UpdateStateMachineCommand({ stateMachineArn: arn, definition: JSON.stringify(updatedDefinition) }));
    expect(updated.updateDate).toBeInstanceOf(Date);
    const after = await h.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn }));
    expect(JSON.parse(after.definition!)).toEqual(updatedDefinition);

    // WHEN it is deleted, THEN it is gone
    await h.sfn.send(new DeleteStateMachineCommand({ stateMachineArn: arn }));
    const gone = await sdkError(h.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: arn })));
    expect(gone.name).toBe('StateMachineDoesNotExist');
    expect(gone.$metadata?.httpStatusCode).toBe(400);
    const startGone = await sdkError(h.sfn.send(new StartExecutionCommand({ stateMachineArn: arn })));
    expect(startGone.name).toBe('StateMachineDoesNotExist');
  });

  it('pages ListStateMachines', async () => {
    for (const n of [1, 2, 3]) await createMachine(definition, `page-machine-${n}`);
    const first = await h.sfn.send(new ListStateMachinesCommand({ maxResults: 2 }));
    expect(first.stateMachines).toHaveLength(2);
    expect(first.nextToken).toBeDefined();
    const names = new Set<string>();
    let nextToken: string | undefined;
    do {
      const page = await h.sfn.send(new ListStateMachinesCommand({ maxResults: 2, nextToken }));
      for (const m of page.stateMachines ?? []) names.add(m.name!);
      nextToken = page.nextToken;
    } while (nextToken);
    expect([...names]).toEqual(expect.arrayContaining(['page-machine-1', 'page-machine-2', 'page-machine-3']));
  });

  it('is idempotent on create with the same definition and refuses a different one', async () => {
    const arn = await createMachine(definition, 'idem-machine');
    expect(await createMachine(definition, 'idem-machine')).toBe(arn);
    const clash = await sdkError(createMachine({ StartAt: 'X', States: { X: { Type: 'Succeed' } } }, 'idem-machine'));
    expect(clash.name).toBe('StateMachineAlreadyExists');
  });

  it('refuses invalid definitions and names with the AWS error codes', async () => {
    const cases: unknown[] = [
      { StartAt: 'Missing', States: { P: { Type: 'Pass', End: true } } },
      { StartAt: 'P', States: { P: { Type: 'Pass', Next: 'Nowhere' } } },
      { StartAt: 'P', States: { P: { Type: 'Bogus', End: true } } },
      { StartAt: 'T', States: { T: { Type: 'Task', Resource: 'arn:aws:states:::sqs:sendMessage', End: true } } },
      {
        StartAt: 'Par',
        States: {
          Par: {
            Type: 'Parallel',
            End: true,
            Branches: [
              { StartAt: 'Same', States: { Same: { Type: 'Pass', End: true } } },
              { StartAt: 'Same', States: { Same: { Type: 'Pass', End: true } } },
            ],
          },
        },
      },
    ];
    for (const bad of cases) {
      const error = await sdkError(createMachine(bad));
      expect(error.name, JSON.stringify(bad)).toBe('InvalidDefinition');
    }
    const notJson = await sdkError(h.sfn.send(new CreateStateMachineCommand({ name: 'nj', definition: '{nope', roleArn: ROLE })));
    expect(notJson.name).toBe('InvalidDefinition');
    const badName = await sdkError(createMachine(definition, 'bad name with spaces'));
    expect(badName.name).toBe('InvalidName');
  });

  it('answers InvalidArn for a malformed ARN and counts every operation', async () => {
    const before = h.hooks.counts.get('DescribeStateMachine') ?? 0;
    const error = await sdkError(h.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: 'not-an-arn' })));
    expect(error.name).toBe('InvalidArn');
    expect(h.hooks.counts.get('DescribeStateMachine')).toBe(before + 1);
  });

  it('answers with the injected fault instead of doing the work', async () => {
    h.hooks.faults.set('ListStateMachines', { status: 400, code: 'ThrottlingException', message: 'Rate exceeded' });
    try {
      const error = await sdkError(h.sfn.send(new ListStateMachinesCommand({})));
      expect(error.name).toBe('ThrottlingException');
    } finally {
      h.hooks.faults.delete('ListStateMachines');
    }
  });
});

describe('executions', () => {
  it('runs lambda:invoke and Lambda-ARN tasks with the context object and AWS result wrapping', async () => {
    // GIVEN two functions, one reached by the optimized integration, one by its ARN
    h.lambda.functions.set('ctx-echo', (event) => ({ seen: event }));
    h.lambda.functions.set('ctx-plain', (event) => ({ plain: event }));
    const arn = await createMachine({
      StartAt: 'Echo',
      States: {
        Echo: {
          Type: 'Task',
          Resource: INVOKE,
          Parameters: {
            FunctionName: 'ctx-echo',
            Payload: {
              'dispatchId.$': '$$.Execution.Name',
              'executionId.$': '$$.Execution.Id',
              'machine.$': '$$.StateMachine.Id',
              'state.$': '$$.State.Name',
              'value.$': '$.value',
              nodeId: 3,
            },
          },
          ResultSelector: { 'payload.$': '$.Payload', 'status.$': '$.StatusCode' },
          Next: 'Plain',
        },
        Plain: { Type: 'Task', Resource: fnArn('ctx-plain'), End: true },
      },
    });

    // WHEN an execution runs
    const executionArn = await start(arn, { value: 42 }, 'dispatch-ctx');
    const done = await finished(executionArn);

    // THEN the payload saw the context object, and the results flowed as on AWS
    expect(executionArn).toBe(`arn:aws:states:${REGION}:${ACCOUNT}:execution:${arn.split(':').pop()}:dispatch-ctx`);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.stopDate).toBeInstanceOf(Date);
    expect(JSON.parse(done.output!)).toEqual({
      plain: {
        payload: { seen: { dispatchId: 'dispatch-ctx', executionId: executionArn, machine: arn, state: 'Echo', value: 42, nodeId: 3 } },
        status: 200,
      },
    });

    // AND the history has AWS's event types, in order
    const events = await history(executionArn);
    expect(events.map((e) => e.type)).toEqual([
      'ExecutionStarted',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskStarted',
      'TaskSucceeded',
      'TaskStateExited',
      'TaskStateEntered',
      'LambdaFunctionScheduled',
      'LambdaFunctionStarted',
      'LambdaFunctionSucceeded',
      'TaskStateExited',
      'ExecutionSucceeded',
    ]);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
    expect(events[2]?.taskScheduledEventDetails).toMatchObject({ resourceType: 'lambda', resource: 'invoke', region: REGION });
    expect(events[1]?.stateEnteredEventDetails?.name).toBe('Echo');
    expect(h.service.executionStats(executionArn)).toEqual({ status: 'SUCCEEDED', historyEvents: 12, stateTransitions: 2 });
  });

  it('pages history in both orders and can leave out execution data', async () => {
    const arn = await createMachine({
      StartAt: 'A',
      States: { A: { Type: 'Pass', Next: 'B' }, B: { Type: 'Pass', Next: 'C' }, C: { Type: 'Pass', End: true } },
    });
    const executionArn = await start(arn, { secret: 1 });
    await finished(executionArn);
    const all = await history(executionArn);
    expect(all.map((e) => e.type)).toEqual([
      'ExecutionStarted',
      'PassStateEntered',
      'PassStateExited',
      'PassStateEntered',
      'PassStateExited',
      'PassStateEntered',
      'PassStateExited',
      'ExecutionSucceeded',
    ]);
    const firstPage = await h.sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 3, reverseOrder: true }));
    expect(firstPage.events?.map((e) => e.id)).toEqual([8, 7, 6]);
    const secondPage = await h.sfn.send(
      new GetExecutionHistoryCommand({ executionArn, maxResults: 3, reverseOrder: true, nextToken: firstPage.nextToken }),
    );
    expect(secondPage.events?.map((e) => e.id)).toEqual([5, 4, 3]);
    const noData = await h.sfn.send(new GetExecutionHistoryCommand({ executionArn, includeExecutionData: false }));
    expect(noData.events?.[0]?.executionStartedEventDetails?.input).toBeUndefined();
    expect(all[0]?.executionStartedEventDetails?.input).toBe('{"secret":1}');
  });

  it('is idempotent on the execution name while running with the same input', async () => {
    // GIVEN an execution held in a callback task
    h.lambda.functions.set('idem-wait', () => ({ submitted: true }));
    const arn = await createMachine({
      StartAt: 'Wait',
      States: { Wait: { Type: 'Task', Resource: CALLBACK, Parameters: { FunctionName: 'idem-wait', Payload: { 'token.$': '$$.Task.Token' } }, End: true } },
    });
    const first = await h.sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'same-name', input: '{"a":1}' }));

    // WHEN the same name and input is started again, THEN it is the same execution
    const again = await h.sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'same-name', input: '{"a":1}' }));
    expect(again.executionArn).toBe(first.executionArn);
    expect(again.startDate?.getTime()).toBe(first.startDate?.getTime());

    // WHEN the same name comes with a different input, THEN ExecutionAlreadyExists
    const clash = await sdkError(h.sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'same-name', input: '{"a":2}' })));
    expect(clash.name).toBe('ExecutionAlreadyExists');

    // WHEN the execution is closed, THEN even the same input is refused
    await h.sfn.send(new StopExecutionCommand({ executionArn: first.executionArn }));
    const closed = await sdkError(h.sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'same-name', input: '{"a":1}' })));
    expect(closed.name).toBe('ExecutionAlreadyExists');
    const listed = await h.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn }));
    expect(listed.executions).toHaveLength(1);
  });

  it('refuses bad execution input and names, and unknown executions', async () => {
    const arn = await createMachine({ StartAt: 'P', States: { P: { Type: 'Pass', End: true } } });
    expect((await sdkError(h.sfn.send(new StartExecutionCommand({ stateMachineArn: arn, input: '{not json' })))).name).toBe('InvalidExecutionInput');
    expect((await sdkError(h.sfn.send(new StartExecutionCommand({ stateMachineArn: arn, name: 'a/b' })))).name).toBe('InvalidName');
    const missing = `arn:aws:states:${REGION}:${ACCOUNT}:execution:${arn.split(':').pop()}:nope`;
    expect((await sdkError(describe_(missing))).name).toBe('ExecutionDoesNotExist');
  });

  it('lists executions newest first, filtered by status', async () => {
    h.lambda.functions.set('list-hold', () => ({}));
    const arn = await createMachine({
      StartAt: 'Hold',
      States: { Hold: { Type: 'Task', Resource: CALLBACK, Parameters: { FunctionName: 'list-hold', Payload: { 't.$': '$$.Task.Token' } }, End: true } },
    });
    const a = await start(arn, {}, 'list-a');
    const b = await start(arn, {}, 'list-b');
    const c = await start(arn, {}, 'list-c');
    await h.sfn.send(new StopExecutionCommand({ executionArn: b }));
    const all = await h.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn }));
    expect(all.executions?.map((e) => e.name)).toEqual(['list-c', 'list-b', 'list-a']);
    const running = await h.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn, statusFilter: 'RUNNING' }));
    expect(running.executions?.map((e) => e.executionArn)).toEqual([c, a]);
    const aborted = await h.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn, statusFilter: 'ABORTED' }));
    expect(aborted.executions?.map((e) => e.executionArn)).toEqual([b]);
    expect(aborted.executions?.[0]?.stopDate).toBeInstanceOf(Date);
    const paged = await h.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn, maxResults: 2 }));
    expect(paged.executions).toHaveLength(2);
    const rest = await h.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn, maxResults: 2, nextToken: paged.nextToken }));
    expect(rest.executions?.map((e) => e.name)).toEqual(['list-a']);
    for (const e of [a, c]) await h.sfn.send(new StopExecutionCommand({ executionArn: e }));
  });
});

describe('StopExecution', () => {
  it('ends the execution ABORTED without killing the running invocation, and starts no further state', async () => {
    // GIVEN a function that is running when the stop arrives and writes a file when it ends
    const marker = join(tmp, 'written-after-stop.txt');
    let started = false;
    h.lambda.functions.set('stop-slow', async () => {
      started = true;
      await sleep(400);
      writeFileSync(marker, String(Date.now()));
      return { done: true };
    });
    h.lambda.functions.set('stop-next', () => ({ ran: true }));
    const arn = await createMachine({
      StartAt: 'Slow',
      States: { Slow: invokeTask('stop-slow', 'Next'), Next: invokeTask('stop-next', undefined) },
    });
    const executionArn = await start(arn, {});
    await until(() => started, 5000, 'the slow function to start');

    // WHEN the execution is stopped mid-invocation
    const stopped = await h.sfn.send(new StopExecutionCommand({ executionArn, error: 'Cancelled', cause: 'user asked' }));

    // THEN it is ABORTED at once, with the given error and cause
    const described = await describe_(executionArn);
    expect(described).toMatchObject({ status: 'ABORTED', error: 'Cancelled', cause: 'user asked' });
    expect(described.stopDate?.getTime()).toBe(stopped.stopDate?.getTime());

    // AND the invocation keeps running to its end (it writes its file after the stop)
    await until(async () => stat(marker).then(() => true, () => false), 5000, 'the function to finish');
    const writtenAt = Number(await readFile(marker, 'utf8'));
    expect(writtenAt).toBeGreaterThan(stopped.stopDate!.getTime());

    // AND no later state starts, and the history ends with ExecutionAborted
    await sleep(100);
    expect(h.lambda.count('stop-next')).toBe(0);
    const events = await history(executionArn);
    expect(events.at(-1)?.type).toBe('ExecutionAborted');
    expect(events.at(-1)?.executionAbortedEventDetails).toEqual({ error: 'Cancelled', cause: 'user asked' });
    expect(events.map((e) => e.type)).not.toContain('TaskSucceeded');

    // AND stopping again is harmless
    const again = await h.sfn.send(new StopExecutionCommand({ executionArn }));
    expect(again.stopDate?.getTime()).toBe(stopped.stopDate?.getTime());
  });

  it('stops a Map from launching further iterations', async () => {
    const starts: number[] = [];
    let active = 0;
    let maxActive = 0;
    h.lambda.functions.set('map-stop-item', async () => {
      starts.push(Date.now());
      active += 1;
      maxActive = Math.max(maxActive, active);
      await sleep(150);
      active -= 1;
      return {};
    });
    const arn = await createMachine({
      StartAt: 'Each',
      States: {
        Each: {
          Type: 'Map',
          ItemsPath: '$.items',
          MaxConcurrency: 2,
          ItemProcessor: { StartAt: 'Item', States: { Item: invokeTask('map-stop-item', undefined) } },
          End: true,
        },
      },
    });
    const executionArn = await start(arn, { items: Array.from({ length: 20 }, (_, i) => ({ i })) });
    await until(() => h.lambda.count('map-stop-item') >= 2, 5000, 'two iterations');
    const { stopDate } = await h.sfn.send(new StopExecutionCommand({ executionArn }));
    const atStop = h.lambda.count('map-stop-item');
    // Past several iteration lengths: a Map still launching would have started more by now.
    await until(() => active === 0, 5000, 'the running iterations to end');
    await sleep(600);
    expect(atStop).toBeLessThan(20);
    expect(h.lambda.count('map-stop-item')).toBe(atStop);
    expect(starts).toHaveLength(atStop);
    // Every iteration that ran began before the stop, and never more than MaxConcurrency at once.
    expect(starts.filter((t) => t > stopDate!.getTime())).toEqual([]);
    expect(maxActive).toBeLessThanOrEqual(2);
  });
});

describe.concurrent('callback tasks', () => {
  async function callbackMachine(functionName: string, extra: Record<string, unknown> = {}): Promise<string> {
    return createMachine({
      StartAt: 'Await',
      States: {
        Await: {
          Type: 'Task',
          Resource: CALLBACK,
          Parameters: { FunctionName: functionName, Payload: { action: 'await', 'dispatchId.$': '$$.Execution.Name', 'taskToken.$': '$$.Task.Token' } },
          ...extra,
          Next: 'After',
        },
        After: { Type: 'Pass', End: true },
      },
    });
  }

  it('holds the task until SendTaskSuccess releases it with the sent output', async () => {
    // GIVEN a submitting function that hands the token to us
    const tokens: string[] = [];
    h.lambda.functions.set('cb-submit', (event) => {
      tokens.push((event as { taskToken: string }).taskToken);
      return { submitted: true };
    });
    const arn = await callbackMachine('cb-submit', { HeartbeatSeconds: 30 });
    const executionArn = await start(arn, {}, 'cb-dispatch');
    await until(() => tokens.length === 1, 5000, 'the token');
    const token = tokens[0]!;

    // WHEN the function returned, THEN the task is still waiting
    await until(async () => (await history(executionArn)).some((e) => e.type === 'TaskSubmitted'), 5000, 'TaskSubmitted');
    await sleep(50);
    expect((await describe_(executionArn)).status).toBe('RUNNING');
    expect(h.lambda.invocations.find((i) => i.functionName === 'cb-submit')?.payload).toEqual({
      action: 'await',
      dispatchId: 'cb-dispatch',
      taskToken: token,
    });

    // WHEN a heartbeat and then SendTaskSuccess arrive
    await h.sfn.send(new SendTaskHeartbeatCommand({ taskToken: token }));
    await h.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{"status":"COMPLETED"}' }));

    // THEN the execution continues with that output
    const done = await finished(executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual({ status: 'COMPLETED' });
    const types = (await history(executionArn)).map((e) => e.type);
    expect(types).toEqual([
      'ExecutionStarted',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskStarted',
      'TaskSubmitted',
      'TaskSucceeded',
      'TaskStateExited',
      'PassStateEntered',
      'PassStateExited',
      'ExecutionSucceeded',
    ]);

    // AND the used token now answers TaskTimedOut; garbage answers InvalidToken
    expect((await sdkError(h.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' })))).name).toBe('TaskTimedOut');
    expect((await sdkError(h.sfn.send(new SendTaskSuccessCommand({ taskToken: 'garbage', output: '{}' })))).name).toBe('InvalidToken');
    expect((await sdkError(h.sfn.send(new SendTaskHeartbeatCommand({ taskToken: 'AQgarbage' })))).name).toBe('InvalidToken');
    expect((await sdkError(h.sfn.send(new SendTaskFailureCommand({ taskToken: 'nope' })))).name).toBe('InvalidToken');
  });

  it('fails the task with the error and cause of SendTaskFailure, which Catch sees', async () => {
    const tokens: string[] = [];
    h.lambda.functions.set('cb-fail', (event) => {
      tokens.push((event as { taskToken: string }).taskToken);
      return {};
    });
    const arn = await callbackMachine('cb-fail');
    const executionArn = await start(arn);
    await until(() => tokens.length === 1);
    const invalidOutput = await sdkError(h.sfn.send(new SendTaskSuccessCommand({ taskToken: tokens[0]!, output: 'not json' })));
    expect(invalidOutput.name).toBe('InvalidOutput');
    await h.sfn.send(new SendTaskFailureCommand({ taskToken: tokens[0]!, error: 'Batch.JobFailed', cause: 'exit 3' }));
    const done = await finished(executionArn);
    expect(done).toMatchObject({ status: 'FAILED', error: 'Batch.JobFailed', cause: 'exit 3' });
    const failed = (await history(executionArn)).find((e) => e.type === 'TaskFailed');
    expect(failed?.taskFailedEventDetails).toMatchObject({ error: 'Batch.JobFailed', cause: 'exit 3', resource: 'invoke.waitForTaskToken' });
  });

  it('times out with States.Timeout when no heartbeat arrives within HeartbeatSeconds', async () => {
    const tokens: string[] = [];
    h.lambda.functions.set('cb-silent', (event) => {
      tokens.push((event as { taskToken: string }).taskToken);
      return {};
    });
    const arn = await callbackMachine('cb-silent', { HeartbeatSeconds: 1 });
    const started = Date.now();
    const executionArn = await start(arn);
    const done = await finished(executionArn);
    expect(done).toMatchObject({ status: 'FAILED', error: 'States.Timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect((await history(executionArn)).map((e) => e.type)).toContain('TaskTimedOut');
    expect((await sdkError(h.sfn.send(new SendTaskSuccessCommand({ taskToken: tokens[0]!, output: '{}' })))).name).toBe('TaskTimedOut');
  });

  it('keeps a task alive past HeartbeatSeconds while heartbeats arrive', async () => {
    const tokens: string[] = [];
    h.lambda.functions.set('cb-beating', (event) => {
      tokens.push((event as { taskToken: string }).taskToken);
      return {};
    });
    const arn = await callbackMachine('cb-beating', { HeartbeatSeconds: 3 });
    const executionArn = await start(arn);
    await until(() => tokens.length === 1);
    // Beats every 250 ms (well inside 3 s even on a loaded machine) for longer than 3 s.
    const beganAt = Date.now();
    while (Date.now() - beganAt < 4_000) {
      await sleep(250);
      await h.sfn.send(new SendTaskHeartbeatCommand({ taskToken: tokens[0]! }));
    }
    expect((await describe_(executionArn)).status).toBe('RUNNING');
    await h.sfn.send(new SendTaskSuccessCommand({ taskToken: tokens[0]!, output: '{"ok":true}' }));
    expect((await finished(executionArn)).status).toBe('SUCCEEDED');
  });

  it('answers TaskTimedOut to SendTask* for the tokens of a stopped execution', async () => {
    const tokens: string[] = [];
    h.lambda.functions.set('cb-stopped', (event) => {
      tokens.push((event as { taskToken: string }).taskToken);
      return {};
    });
    const arn = await callbackMachine('cb-stopped', { HeartbeatSeconds: 60 });
    const executionArn = await start(arn);
    await until(() => tokens.length === 1);
    await h.sfn.send(new StopExecutionCommand({ executionArn }));
    const token = tokens[0]!;
    for (const call of [
      h.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' })),
      h.sfn.send(new SendTaskFailureCommand({ taskToken: token, error: 'E' })),
      h.sfn.send(new SendTaskHeartbeatCommand({ taskToken: token })),
    ]) {
      expect((await sdkError(call)).name).toBe('TaskTimedOut');
    }
    expect((await describe_(executionArn)).status).toBe('ABORTED');
  });
});

describe.concurrent('errors, retries and timeouts', () => {
  it('retries a thrown error named in Retry, then succeeds', async () => {
    let calls = 0;
    h.lambda.functions.set('flaky', () => {
      calls += 1;
      if (calls === 1) throw new FunctionError('TransientError', 'try again');
      return { calls };
    });
    const arn = await createMachine({
      StartAt: 'Flaky',
      States: {
        Flaky: { ...invokeTask('flaky', undefined), Retry: [{ ErrorEquals: ['TransientError'], IntervalSeconds: 1, MaxAttempts: 2 }] },
      },
    });
    const executionArn = await start(arn);
    const done = await finished(executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect((JSON.parse(done.output!) as { Payload: unknown }).Payload).toEqual({ calls: 2 });
    const types = (await history(executionArn)).map((e) => e.type);
    expect(types.filter((t) => t === 'TaskScheduled')).toHaveLength(2);
    expect(types).toContain('TaskFailed');
    expect(h.service.executionStats(executionArn)?.stateTransitions).toBe(2);
  });

  it('retries Lambda throttling as Lambda.TooManyRequestsException', async () => {
    h.lambda.functions.set('throttled', () => ({ ok: true }));
    h.lambda.serviceErrors.set('throttled', ['TooManyRequestsException']);
    const arn = await createMachine({
      StartAt: 'T',
      States: {
        T: {
          ...invokeTask('throttled', undefined),
          Retry: [{ ErrorEquals: ['Lambda.TooManyRequestsException', 'Lambda.ServiceException'], IntervalSeconds: 1, MaxAttempts: 3 }],
        },
      },
    });
    const executionArn = await start(arn);
    expect((await finished(executionArn)).status).toBe('SUCCEEDED');
    const failed = (await history(executionArn)).find((e) => e.type === 'TaskFailed');
    expect(failed?.taskFailedEventDetails?.error).toBe('Lambda.TooManyRequestsException');
  });

  it('catches a function error by its errorType, with the Lambda error payload as Cause', async () => {
    h.lambda.functions.set('thrower', () => {
      throw new FunctionError('ElectronFailed', 'boom');
    });
    const arn = await createMachine({
      StartAt: 'Throw',
      States: {
        Throw: { ...invokeTask('thrower', 'Unreached'), Catch: [{ ErrorEquals: ['ElectronFailed'], ResultPath: '$.caught', Next: 'Handled' }] },
        Unreached: { Type: 'Fail', Error: 'Unreached' },
        Handled: { Type: 'Pass', End: true },
      },
    });
    const executionArn = await start(arn, { keep: 1 });
    const done = await finished(executionArn);
    expect(done.status).toBe('SUCCEEDED');
    const output = JSON.parse(done.output!) as { keep: number; caught: { Error: string; Cause: string } };
    expect(output.keep).toBe(1);
    expect(output.caught.Error).toBe('ElectronFailed');
    expect(JSON.parse(output.caught.Cause)).toMatchObject({ errorType: 'ElectronFailed', errorMessage: 'boom' });
  });

  it('fails a plain Lambda-ARN task with the errorType when nothing catches it', async () => {
    h.lambda.functions.set('crashy', () => {
      throw new FunctionError('Runtime.ExitError', 'exited with status 1');
    });
    const arn = await createMachine({ StartAt: 'C', States: { C: { Type: 'Task', Resource: fnArn('crashy'), End: true } } });
    const executionArn = await start(arn);
    const done = await finished(executionArn);
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('Runtime.ExitError');
    expect(JSON.parse(done.cause!)).toMatchObject({ errorMessage: 'exited with status 1' });
    expect((await history(executionArn)).map((e) => e.type)).toContain('LambdaFunctionFailed');
  });

  it('times a task out with States.Timeout after TimeoutSeconds, which States.TaskFailed does not catch', async () => {
    let returned = false;
    h.lambda.functions.set('too-slow', async () => {
      await sleep(5_000);
      returned = true;
      return {};
    });
    const arn = await createMachine({
      StartAt: 'Slow',
      States: {
        Slow: { ...invokeTask('too-slow', 'Caught'), TimeoutSeconds: 1, Catch: [{ ErrorEquals: ['States.TaskFailed'], Next: 'Caught' }] },
        Caught: { Type: 'Succeed' },
      },
    });
    const started = Date.now();
    const executionArn = await start(arn);
    const done = await finished(executionArn);
    expect(done).toMatchObject({ status: 'FAILED', error: 'States.Timeout' });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(950);
    // The timeout ended it, not the function: it had not returned yet (a generous 4 s margin).
    expect(returned).toBe(false);
    const timedOut = (await history(executionArn)).find((e) => e.type === 'TaskTimedOut');
    expect(timedOut?.taskTimedOutEventDetails?.error).toBe('States.Timeout');
  });

  it('times out the whole execution after its TimeoutSeconds', async () => {
    const arn = await createMachine({ TimeoutSeconds: 1, StartAt: 'W', States: { W: { Type: 'Wait', Seconds: 5, End: true } } });
    const executionArn = await start(arn);
    const done = await finished(executionArn);
    expect(done.status).toBe('TIMED_OUT');
    expect((await history(executionArn)).at(-1)?.type).toBe('ExecutionTimedOut');
  });
});

describe.concurrent('flow states', () => {
  it('runs Parallel and Map (inline and distributed) with AWS history events', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    h.lambda.functions.set('square', async (event) => {
      concurrent += 1;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(30);
      concurrent -= 1;
      const n = (event as { n: number }).n;
      return n * n;
    });
    h.lambda.functions.set('label', (event) => `label:${(event as { name: string }).name}`);
    const arn = await createMachine({
      StartAt: 'Fork',
      States: {
        Fork: {
          Type: 'Parallel',
          Branches: [
            {
              StartAt: 'Squares',
              States: {
                Squares: {
                  Type: 'Map',
                  ItemsPath: '$.numbers',
                  MaxConcurrency: 2,
                  ItemSelector: { 'n.$': '$$.Map.Item.Value' },
                  ItemProcessor: {
                    ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
                    StartAt: 'Square',
                    States: { Square: { ...invokeTask('square', undefined), OutputPath: '$.Payload' } },
                  },
                  End: true,
                },
              },
            },
            { StartAt: 'Label', States: { Label: { ...invokeTask('label', undefined), OutputPath: '$.Payload' } } },
          ],
          Next: 'Check',
        },
        Check: {
          Type: 'Choice',
          Choices: [{ Variable: '$[1]', StringEquals: 'label:demo', Next: 'Done' }],
          Default: 'Wrong',
        },
        Wrong: { Type: 'Fail', Error: 'WrongLabel', Cause: 'choice went wrong' },
        Done: { Type: 'Succeed' },
      },
    });
    const executionArn = await start(arn, { numbers: [1, 2, 3, 4, 5], name: 'demo' });
    const done = await finished(executionArn);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output!)).toEqual([[1, 4, 9, 16, 25], 'label:demo']);
    expect(maxConcurrent).toBeLessThanOrEqual(2);

    const events = await history(executionArn);
    const types = events.map((e) => e.type);
    for (const type of [
      'ParallelStateEntered',
      'ParallelStateStarted',
      'MapStateEntered',
      'MapStateStarted',
      'MapRunStarted',
      'MapRunSucceeded',
      'MapStateSucceeded',
      'MapStateExited',
      'ParallelStateSucceeded',
      'ParallelStateExited',
      'ChoiceStateEntered',
      'ChoiceStateExited',
      'SucceedStateEntered',
    ]) {
      expect(types, type).toContain(type);
    }
    // A DISTRIBUTED Map's iterations are child executions with their own histories: the
    // parent records a map run, not the iterations' events (as on AWS).
    expect(types.filter((t) => t?.startsWith('MapIteration'))).toEqual([]);
    expect(types.filter((t) => t === 'TaskScheduled')).toHaveLength(1); // only Label's
    expect(events.find((e) => e.type === 'MapStateStarted')?.mapStateStartedEventDetails?.length).toBe(5);
    expect(types.indexOf('ParallelStateEntered')).toBeLessThan(types.indexOf('MapStateEntered'));
    expect(types.indexOf('MapRunSucceeded')).toBeLessThan(types.indexOf('MapStateSucceeded'));
    expect(types.indexOf('ParallelStateExited')).toBeLessThan(types.indexOf('ChoiceStateEntered'));
    // Fork, Squares, 5×Square, Label, Check, Done.
    expect(h.service.executionStats(executionArn)?.stateTransitions).toBe(10);
  });

  it('ends in a Fail state with its error and cause, after a Wait and a Pass', async () => {
    const arn = await createMachine({
      StartAt: 'Pause',
      States: {
        Pause: { Type: 'Wait', Seconds: 1, Next: 'Shape' },
        Shape: { Type: 'Pass', Parameters: { 'status.$': '$.status' }, Next: 'Route' },
        Route: { Type: 'Choice', Choices: [{ Variable: '$.status', StringEquals: 'FAILED', Next: 'Failed' }], Default: 'Ok' },
        Failed: { Type: 'Fail', Error: 'DispatchFailed', Cause: 'a node failed' },
        Ok: { Type: 'Succeed' },
      },
    });
    const executionArn = await start(arn, { status: 'FAILED', extra: true });
    const done = await finished(executionArn);
    expect(done).toMatchObject({ status: 'FAILED', error: 'DispatchFailed', cause: 'a node failed' });
    const types = (await history(executionArn)).map((e) => e.type);
    expect(types).toEqual([
      'ExecutionStarted',
      'WaitStateEntered',
      'WaitStateExited',
      'PassStateEntered',
      'PassStateExited',
      'ChoiceStateEntered',
      'ChoiceStateExited',
      'FailStateEntered',
      'ExecutionFailed',
    ]);
  });
});

describe('history limit', () => {
  it('fails an execution that reaches the history event quota', async () => {
    const small = await startHarness({ maxHistoryEvents: 10 });
    try {
      const states: Record<string, unknown> = {};
      for (let i = 0; i < 10; i++) states[`S${i}`] = { Type: 'Pass', ...(i < 9 ? { Next: `S${i + 1}` } : { End: true }) };
      const { stateMachineArn } = await small.sfn.send(
        new CreateStateMachineCommand({ name: 'long', definition: JSON.stringify({ StartAt: 'S0', States: states }), roleArn: ROLE }),
      );
      const { executionArn } = await small.sfn.send(new StartExecutionCommand({ stateMachineArn }));
      const stats = await small.service.waitForExecution(executionArn!);
      expect(stats).toMatchObject({ status: 'FAILED', historyEvents: 10 });
      const described = await small.sfn.send(new DescribeExecutionCommand({ executionArn }));
      expect(described.error).toBe('States.Runtime');
    } finally {
      await small.close();
    }
  });
});
