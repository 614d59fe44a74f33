// The invocation deadline on the local cloud: a step handler whose remaining time runs out
// while its electron still runs leaves the node whole (RUNNING under a lease that lapses,
// nothing else written), throws the retryable InvocationDeadlineError, and the retry takes
// the node over and completes it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStepHandler } from '../../lambdas/step-handler.ts';
import { InvocationDeadlineError } from '../../sdk/errors.ts';
import { LAMBDA_RETRY_ERRORS } from '../../sdk/compiler/asl.ts';
import { INVOCATION_SAFETY_MARGIN_MS, runtimeContextFromEnv, type RuntimeContext } from '../../sdk/runtime/context.ts';
import { createDispatchRecords } from '../../sdk/runtime/dispatch-records.ts';
import { closeElectronThreads } from '../../sdk/runtime/electron-thread.ts';
import { payloadKeys } from '../../sdk/runtime/payloads.ts';
import { serialize } from '../../sdk/runtime/serialization.ts';
import type { Lattice } from '../../sdk/model/index.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from './fixtures/workflows.ts';

const WORKFLOWS = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));
const LEASE_MS = 3_000;

let h: RuntimeHarness;
let ctx: RuntimeContext;
let handler: ReturnType<typeof createStepHandler>;

/** Lambda's context object for an invocation that has `ms` left from now. */
function invocation(ms: number, requestId: string): { getRemainingTimeInMillis(): number; awsRequestId: string } {
  const deadline = Date.now() + ms;
  return { getRemainingTimeInMillis: () => deadline - Date.now(), awsRequestId: requestId };
}

/** Writes a dispatch's records as `dispatch` would, without starting an execution. */
async function records(lattice: Lattice, dispatchId: string, args: unknown[]): Promise<void> {
  await createDispatchRecords(ctx, {
    dispatchId,
    graph: lattice.template(),
    serializedArgs: serialize(args),
    stateMachineArn: `${ctx.config.stateMachinePrefix}${lattice.name}`,
    awaitingNodes: new Set(),
  });
}

/** The node item exactly as DynamoDB holds it. */
async function rawNode(dispatchId: string, nodeId: number): Promise<Record<string, unknown>> {
  const out = await ctx.aws.dynamodb.send(
    new GetCommand({ TableName: ctx.config.table, Key: { pk: `D#${dispatchId}`, sk: `N#${String(nodeId).padStart(6, '0')}` }, ConsistentRead: true }),
  );
  return out.Item ?? {};
}

beforeAll(async () => {
  h = await startHarness({ environment: { VALENCE_LEASE_MS: String(LEASE_MS) } }, WORKFLOWS);
  // The environment the deployed step function sees, read back through the Lambda API.
  const step = await h.cloud.clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'valence-step' }));
  ctx = runtimeContextFromEnv({
    aws: { endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials },
    env: { ...step.Environment?.Variables, VALENCE_LEASE_MS: String(LEASE_MS) },
  });
  handler = createStepHandler({ ctx, workflowsPath: WORKFLOWS });
  // Warm the handler (catalog, worker thread), so the short invocation below spends its time
  // on the node and not on a cold start.
  await records(wf.warm, 'deadline-warm', [1]);
  await expect(handler({ dispatchId: 'deadline-warm', nodeId: 0 }, invocation(60_000, 'warm'))).resolves.toMatchObject({ status: 'COMPLETED' });
}, 120_000);

afterAll(async () => {
  await closeElectronThreads();
  ctx?.aws.destroy();
  await h?.close();
});

describe('a step handler that reaches its invocation deadline', () => {
  it('leaves the node whole, throws a retryable error, and the retry completes the node', async () => {
    const dispatchId = 'deadline-outlives';
    await records(wf.outlives, dispatchId, [h.dir]);
    const log = (): string[] => readFileSync(join(h.dir, 'patient.log'), 'utf8').trim().split('\n');

    // 2.5 s left: the signal aborts at 1.5 s (the margin is 1 s); the electron sleeps 10 s and
    // ignores its signal, so it is still running then.
    const first = handler({ dispatchId, nodeId: 0 }, invocation(INVOCATION_SAFETY_MARGIN_MS + 1_500, 'first'));
    const error: unknown = await first.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvocationDeadlineError);
    expect(error).toMatchObject({ name: 'InvocationDeadlineError', code: 'INVOCATION_DEADLINE' });
    // The compiled state machines retry it by name.
    expect(LAMBDA_RETRY_ERRORS).toContain((error as Error).name);

    // The attempt ran and was stopped: it started and never finished.
    expect(log()).toEqual(['start 1']);
    // The node is as the claim wrote it: RUNNING, held by the first invocation, attempt 1,
    // and nothing of an ending — no status change, no error, no output, no end time.
    const held = await rawNode(dispatchId, 0);
    expect(held).toMatchObject({ status: 'RUNNING', attempts: 1, cancelRequested: false });
    expect(String(held['runId'])).toMatch(/^first:/);
    expect(typeof held['leaseUntil']).toBe('number');
    for (const field of ['endedAt', 'error', 'hasOutput', 'cancelledBy', 'lastError']) expect(held).not.toHaveProperty(field);
    await expect(ctx.payloads.getText(payloadKeys.nodeOutput(dispatchId, 0))).rejects.toMatchObject({ code: 'PAYLOAD_NOT_FOUND' });

    // The retry (as Step Functions sends it) waits for the lease to lapse, takes the node over
    // and completes it.
    const startedRetry = Date.now();
    // Its answer is the node's parent view (what the next state hands to a child): the end and the output.
    const answer = (await handler({ dispatchId, nodeId: 0 }, invocation(60_000, 'retry'))) as Record<string, unknown>;
    expect(answer).toMatchObject({ dispatchId, nodeId: 0, status: 'COMPLETED', hasOutput: true });
    expect(typeof answer['output']).toBe('string');
    expect(answer['outputHash']).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.now() - startedRetry).toBeLessThan(LEASE_MS + 30_000);
    expect(log()).toEqual(['start 1', 'start 2', 'end 2']);
    const done = await rawNode(dispatchId, 0);
    expect(done).toMatchObject({ status: 'COMPLETED', attempts: 2, hasOutput: true });
    expect(String(done['runId'])).toMatch(/^retry:/);
    expect(done).not.toHaveProperty('leaseUntil');
    expect(done).not.toHaveProperty('error');
    // A small output is stored inline in the node item, with the end that wrote it.
    expect(typeof done['output']).toBe('string');
    await expect(ctx.payloads.getNodeOutput({ dispatchId, nodeId: 0, output: String(done['output']) })).resolves.toBe('done on attempt 2');
  }, 120_000);
});
