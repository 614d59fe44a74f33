// The Orchestrator refuses, at synth time and naming the problem, what would fail at deploy.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';
import { loadWorkflows, Orchestrator, OrchestratorValidationCode, OrchestratorValidationError, type OrchestratorProps } from '../../infra/orchestrator.ts';
import { WorkflowsModuleNotFoundError } from '../../infra/private/workflows.ts';
import { FIXTURE_WORKFLOWS, REPO, removeTestOutdirs, testApp } from './support.ts';
import { join } from 'node:path';

afterAll(removeTestOutdirs);

/** WHEN an Orchestrator is constructed in a stack named `stackName`; returns the error thrown. */
async function construct(props: Partial<OrchestratorProps>, stackName = 'test-stack', workflowsPath = FIXTURE_WORKFLOWS): Promise<unknown> {
  const stack = new Stack(testApp(), 'Stack', { stackName });
  const workflows = await loadWorkflows(workflowsPath);
  try {
    new Orchestrator(stack, 'Orchestrator', { workflows, ...props });
    return undefined;
  } catch (error) {
    return error;
  }
}

function expectValidationError(error: unknown, code: OrchestratorValidationCode, message: RegExp): void {
  expect(error).toBeInstanceOf(OrchestratorValidationError);
  const validation = error as OrchestratorValidationError;
  expect(validation.name).toBe('OrchestratorValidationError');
  expect(validation).toBeInstanceOf(ValenceError);
  expect(validation.code).toBe(ErrorCode.ORCHESTRATOR_INVALID_PROPS);
  expect(validation.reason).toBe(code);
  expect(validation.constructPath).toBe('Stack/Orchestrator');
  expect(validation.message).toMatch(message);
}

describe('Orchestrator validation', () => {
  it('rejects a state machine name over 80 characters, naming the lattice', async () => {
    // GIVEN a 60-character stack name: "<stack>-infra-fixture-pipeline" is 83 characters
    const error = await construct({}, 's'.repeat(60));
    expectValidationError(error, OrchestratorValidationCode.INVALID_STATE_MACHINE_NAME, /lattice "infra-fixture-pipeline" \(export pipeline\).*83 characters.*allows 80/);
  });

  it('accepts the longest stack name that still fits', async () => {
    // "<stack>-infra-fixture-pipeline" with a 57-character stack name is exactly 80
    expect(await construct({}, 's'.repeat(57))).toBeUndefined();
  });

  it('rejects two different lattices under one name', async () => {
    const error = await construct({}, 'test-stack', join(REPO, 'test', 'infra', 'fixtures', 'duplicate-names.ts'));
    expectValidationError(error, OrchestratorValidationCode.DUPLICATE_LATTICE, /exports first and second .* "infra-fixture-same"/);
  });

  it('rejects a workflows module without lattices', async () => {
    const error = await construct({}, 'test-stack', join(REPO, 'test', 'infra', 'fixtures', 'no-lattices.ts'));
    expectValidationError(error, OrchestratorValidationCode.NO_LATTICES, /exports no lattice/);
  });

  it('rejects a lattice named like the graph runner', async () => {
    const error = await construct({}, 'test-stack', join(REPO, 'test', 'infra', 'fixtures', 'graph-runner-name.ts'));
    expectValidationError(error, OrchestratorValidationCode.INVALID_STATE_MACHINE_NAME, /"graph-runner".*rename the lattice/);
  });

  it('rejects props that contradict each other or are out of range', async () => {
    expectValidationError(await construct({ payloadRetentionDays: 0 }), OrchestratorValidationCode.INVALID_PROP, /payloadRetentionDays/);
    expectValidationError(await construct({ payloadRetentionDays: 1.5 }), OrchestratorValidationCode.INVALID_PROP, /payloadRetentionDays/);
    expectValidationError(await construct({ sweepInterval: Duration.seconds(30) }), OrchestratorValidationCode.INVALID_PROP, /sweepInterval.*30 seconds/);
    expectValidationError(await construct({ sweepInterval: Duration.seconds(90) }), OrchestratorValidationCode.INVALID_PROP, /sweepInterval/);
    expectValidationError(await construct({ autoDeleteObjects: true }), OrchestratorValidationCode.INVALID_PROP, /autoDeleteObjects needs removalPolicy/);
    expect(await construct({ autoDeleteObjects: true, removalPolicy: RemovalPolicy.DESTROY, enableBatch: false })).toBeUndefined();
  });

  it('rejects Batch settings when Batch is turned off', async () => {
    const stack = new Stack(testApp(), 'Stack');
    const jobQueue = batch.JobQueue.fromJobQueueArn(stack, 'Queue', 'arn:aws:batch:eu-west-1:123456789012:job-queue/mine');
    const workflows = await loadWorkflows(FIXTURE_WORKFLOWS);
    expect(() => new Orchestrator(stack, 'Orchestrator', { workflows, enableBatch: false, jobQueue })).toThrow(/cannot be given with enableBatch: false/);
  });

  it('reports a missing workflows module by path', async () => {
    await expect(loadWorkflows(join(REPO, 'nope', 'missing.ts'))).rejects.toBeInstanceOf(WorkflowsModuleNotFoundError);
    await expect(loadWorkflows(join(REPO, 'nope', 'missing.ts'))).rejects.toThrow(/nope\/missing\.ts does not exist/);
  });
});
