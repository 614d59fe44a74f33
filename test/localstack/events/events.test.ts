import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteRuleCommand,
  DescribeRuleCommand,
  EventBridgeClient,
  InvalidEventPatternException,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  ResourceNotFoundException,
  TestEventPatternCommand,
} from '@aws-sdk/client-eventbridge';
import { createEventBridgeService } from '../../../localstack/events/index.ts';
import type { LocalEventBridgeService } from '../../../localstack/events/index.ts';
import { createLambdaService } from '../../../localstack/lambda/index.ts';
import type { LocalLambdaService } from '../../../localstack/lambda/index.ts';
import type { CloudEvent } from '../../../localstack/core/service.ts';
import { ACCOUNT_ID, REGION, TEST_CREDENTIALS, hookBench, serve } from '../lambda/harness.ts';
import type { HookBench, ServedService } from '../lambda/harness.ts';

const recordEntry = join(import.meta.dirname, 'fixtures', 'record.ts');
const functionArn = (name: string): string => `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${name}`;
const batchPattern = { source: ['aws.batch'], 'detail-type': ['Batch Job State Change'], detail: { status: ['SUCCEEDED', 'FAILED'] } };

describe('local EventBridge', () => {
  let bench: HookBench;
  let lambda: LocalLambdaService;
  let events: LocalEventBridgeService;
  let served: ServedService;
  let client: EventBridgeClient;
  let scratch: string;
  let n = 0;
  /** A fresh recording function; returns its name and a reader of what it received. */
  let recorder: (options?: { failTimes?: number }) => { name: string; received: () => unknown[] };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'valence-events-'));
    bench = hookBench('events');
    lambda = createLambdaService({ hooks: hookBench('lambda').hooks, region: REGION, accountId: ACCOUNT_ID, environment: () => ({}) });
    events = createEventBridgeService({ hooks: bench.hooks, lambda, region: REGION, accountId: ACCOUNT_ID, retryBaseDelayMs: 20 });
    served = await serve(events, bench);
    client = new EventBridgeClient({ endpoint: served.endpoint, region: REGION, credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    recorder = (options = {}) => {
      const name = `record-${++n}`;
      const file = join(scratch, `${name}.jsonl`);
      lambda.register({
        functionName: name,
        entry: recordEntry,
        environment: { RECORD_FILE: file, FAIL_TIMES: String(options.failTimes ?? 0) },
      });
      return {
        name,
        received: () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown) : []),
      };
    };
  });

  afterAll(async () => {
    client?.destroy();
    await served?.close();
    await events?.stop();
    await lambda?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  beforeEach(async () => {
    // Every test starts from an empty default bus.
    const listed = await client.send(new ListRulesCommand({}));
    for (const rule of listed.Rules ?? []) await client.send(new DeleteRuleCommand({ Name: rule.Name!, Force: true }));
  });

  it('manages rules and targets over the SDK', async () => {
    // Act
    const put = await client.send(new PutRuleCommand({ Name: 'batch-done', EventPattern: JSON.stringify(batchPattern), Description: 'Batch job ends' }));
    await client.send(new PutTargetsCommand({ Rule: 'batch-done', Targets: [{ Id: 'completion', Arn: functionArn('completion') }, { Id: 'audit', Arn: functionArn('audit') }] }));
    // Assess
    expect(put.RuleArn).toBe(`arn:aws:events:${REGION}:${ACCOUNT_ID}:rule/batch-done`);
    const described = await client.send(new DescribeRuleCommand({ Name: 'batch-done' }));
    expect(described).toMatchObject({ Name: 'batch-done', State: 'ENABLED', EventBusName: 'default', Description: 'Batch job ends' });
    expect(JSON.parse(described.EventPattern!)).toEqual(batchPattern);
    expect((await client.send(new ListRulesCommand({ NamePrefix: 'batch' }))).Rules?.map((r) => r.Name)).toEqual(['batch-done']);
    expect((await client.send(new ListRulesCommand({ NamePrefix: 'braket' }))).Rules).toEqual([]);
    const targets = await client.send(new ListTargetsByRuleCommand({ Rule: 'batch-done' }));
    expect(targets.Targets?.map((t) => t.Id).sort()).toEqual(['audit', 'completion']);

    const refused = await client.send(new DeleteRuleCommand({ Name: 'batch-done' })).catch((e: unknown) => e);
    expect((refused as Error).name).toBe('ValidationException');
    await client.send(new RemoveTargetsCommand({ Rule: 'batch-done', Ids: ['completion', 'audit'] }));
    await client.send(new DeleteRuleCommand({ Name: 'batch-done' }));
    expect((await client.send(new ListRulesCommand({}))).Rules).toEqual([]);
    expect(bench.counters.get('events', 'PutRule')).toBeGreaterThanOrEqual(1);
  });

  it('answers AWS errors for unknown rules and invalid patterns', async () => {
    const missing = await client.send(new PutTargetsCommand({ Rule: 'nope', Targets: [{ Id: 't', Arn: functionArn('x') }] })).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ResourceNotFoundException);
    expect((missing as Error).message).toBe('Rule nope does not exist on EventBus default.');
    const invalid = await client.send(new PutRuleCommand({ Name: 'bad', EventPattern: '{"source":"aws.batch"}' })).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(InvalidEventPatternException);
  });

  it('delivers a matching emitted event to a Lambda target as the EventBridge envelope, and skips others', async () => {
    // Prepare
    const completion = recorder();
    events.putRule({ name: 'batch-done', eventPattern: batchPattern });
    events.putTargets('batch-done', [{ id: 'completion', arn: functionArn(completion.name) }]);
    const done: CloudEvent = {
      source: 'aws.batch',
      'detail-type': 'Batch Job State Change',
      detail: { status: 'SUCCEEDED', jobId: 'j-1' },
      resources: ['arn:aws:batch:us-east-1:000000000000:job/j-1'],
    };
    // Act
    events.emit({ ...done, detail: { status: 'RUNNING', jobId: 'j-1' } });
    events.emit(done);
    events.emit({ source: 'aws.braket', 'detail-type': 'Braket Task State Change', detail: { status: 'COMPLETED' } });
    await events.drain();
    // Assess
    const received = completion.received();
    expect(received).toHaveLength(1);
    expect(received[0]).toEqual({
      version: '0',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      'detail-type': 'Batch Job State Change',
      source: 'aws.batch',
      account: ACCOUNT_ID,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown,
      region: REGION,
      resources: ['arn:aws:batch:us-east-1:000000000000:job/j-1'],
      detail: { status: 'SUCCEEDED', jobId: 'j-1' },
    });
  });

  it('never throws from emit, whatever it is given', () => {
    events.putRule({ name: 'any-batch', eventPattern: { source: ['aws.batch'] } });
    expect(() => events.emit(null as unknown as CloudEvent)).not.toThrow();
    expect(() => events.emit({ source: 'aws.batch' } as unknown as CloudEvent)).not.toThrow();
  });

  it('retries a failed delivery, as EventBridge does', async () => {
    const flaky = recorder({ failTimes: 2 });
    events.putRule({ name: 'retry', eventPattern: { source: ['aws.braket'] } });
    events.putTargets('retry', [{ id: 'flaky', arn: functionArn(flaky.name) }]);
    events.emit({ source: 'aws.braket', 'detail-type': 'Braket Task State Change', detail: { status: 'CANCELLED' } });
    await events.drain();
    const attempts = flaky.received() as { id: string }[];
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.id)).size).toBe(1);
  });

  it('gives up after the attempts a target retry policy allows', async () => {
    const broken = recorder({ failTimes: 100 });
    events.putRule({ name: 'no-retry', eventPattern: { source: ['aws.braket'] } });
    events.putTargets('no-retry', [{ id: 'broken', arn: functionArn(broken.name), retryPolicy: { maximumRetryAttempts: 0 } }]);
    events.emit({ source: 'aws.braket', 'detail-type': 'Braket Task State Change', detail: {} });
    await events.drain();
    expect(broken.received()).toHaveLength(1);
  });

  it('routes PutEvents entries and reports invalid ones per entry', async () => {
    const app = recorder();
    await client.send(new PutRuleCommand({ Name: 'app', EventPattern: JSON.stringify({ source: ['valence.cancel'] }) }));
    await client.send(new PutTargetsCommand({ Rule: 'app', Targets: [{ Id: 'app', Arn: functionArn(app.name), InputPath: '$.detail' }] }));
    const result = await client.send(
      new PutEventsCommand({
        Entries: [
          { Source: 'valence.cancel', DetailType: 'Cancel Requested', Detail: JSON.stringify({ dispatchId: 'd-1' }) },
          { Source: 'valence.cancel', DetailType: 'Cancel Requested', Detail: 'not json' },
          { Source: 'aws.batch', DetailType: 'Batch Job State Change', Detail: '{}' },
        ],
      }),
    );
    expect(result.FailedEntryCount).toBe(2);
    expect(result.Entries?.[0]?.EventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.Entries?.[1]?.ErrorCode).toBe('MalformedDetail');
    expect(result.Entries?.[2]?.ErrorCode).toBe('NotAuthorizedForSourceException');
    await events.drain();
    // InputPath delivered only the detail.
    expect(app.received()).toEqual([{ dispatchId: 'd-1' }]);
  });

  it('delivers nothing for a disabled rule', async () => {
    const quiet = recorder();
    events.putRule({ name: 'off', eventPattern: { source: ['aws.batch'] }, state: 'DISABLED' });
    events.putTargets('off', [{ id: 'quiet', arn: functionArn(quiet.name) }]);
    events.emit({ source: 'aws.batch', 'detail-type': 'Batch Job State Change', detail: {} });
    await events.drain();
    expect(quiet.received()).toEqual([]);
  });

  it('evaluates TestEventPattern', async () => {
    const event = JSON.stringify({
      id: '1', account: ACCOUNT_ID, source: 'aws.batch', time: '2026-01-01T00:00:00Z', region: REGION, resources: [],
      'detail-type': 'Batch Job State Change', detail: { status: 'FAILED' },
    });
    expect((await client.send(new TestEventPatternCommand({ EventPattern: JSON.stringify(batchPattern), Event: event }))).Result).toBe(true);
    expect((await client.send(new TestEventPatternCommand({ EventPattern: '{"detail":{"status":["RUNNING"]}}', Event: event }))).Result).toBe(false);
  });
});
