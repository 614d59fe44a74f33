// The statements that stop jobs act only on jobs and tasks tagged with this stack, and the
// statements that create them require that tag on the request: a forged handle in the table
// cannot make a valence role stop someone else's work (the confused deputy of issue 14).
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { Orchestrator } from '../../infra/orchestrator.ts';
import { fixtureWorkflows, removeTestOutdirs, testApp } from './support.ts';

afterAll(removeTestOutdirs);

type Statement = { Action: string | string[]; Condition?: Record<string, Record<string, unknown>>; Resource: unknown };

async function statements(): Promise<Statement[]> {
  const app = testApp();
  const stack = new Stack(app, 'test-stack');
  new Orchestrator(stack, 'Orchestrator', { workflows: await fixtureWorkflows() });
  const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy') as Record<string, { Properties: { PolicyDocument: { Statement: Statement[] } } }>;
  return Object.values(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
}

const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('IAM of the job and task statements', () => {
  it('conditions every stop on the stack tag and every submission on the request tag', async () => {
    const all = await statements();
    const stops = all.filter((s) => actionsOf(s).some((a) => ['batch:TerminateJob', 'batch:CancelJob', 'braket:CancelQuantumTask', 'braket:CancelJob'].includes(a)));
    // The step, cancel and sweeper roles stop Batch jobs and Braket tasks and jobs.
    expect(stops.length).toBeGreaterThanOrEqual(6);
    for (const s of stops) expect(s.Condition, JSON.stringify(s)).toEqual({ StringEquals: { 'aws:ResourceTag/valence:stack': 'test-stack' } });
    const creates = all.filter((s) => actionsOf(s).some((a) => ['batch:SubmitJob', 'braket:CreateQuantumTask', 'braket:CreateJob', 'braket:TagResource', 'batch:TagResource'].includes(a)));
    expect(creates.length).toBeGreaterThanOrEqual(4);
    for (const s of creates) expect(s.Condition?.['StringEquals']?.['aws:RequestTag/valence:stack'], JSON.stringify(s)).toBe('test-stack');
    // No statement acts on jobs or tasks of the whole account without one of the two conditions.
    const onJobs = all.filter((s) => JSON.stringify(s.Resource).match(/:(job|quantum-task)\/\*/));
    for (const s of onJobs) expect(JSON.stringify(s.Condition ?? {}), JSON.stringify(s)).toMatch(/aws:(Resource|Request)Tag\/valence:stack/);
  }, 120_000);
});
