// cdk-nag's AwsSolutions pack finds nothing unacknowledged, and every acknowledgement has a reason.
import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AccountRootPrincipal, PolicyStatement, Role } from 'aws-cdk-lib/aws-iam';
import { Orchestrator, type OrchestratorProps } from '../../infra/orchestrator.ts';
import { fixtureWorkflows, removeTestOutdirs, testApp } from './support.ts';

afterAll(removeTestOutdirs);

/** GIVEN an app with the AwsSolutions pack; WHEN it synthesizes; THEN the report it wrote. */
async function nagReport(props: Partial<OrchestratorProps>, cloudFormationValidation = false): Promise<{ error: unknown; report: unknown }> {
  const app = testApp({ cloudFormationValidation });
  const stack = new Stack(app, 'test-stack');
  new Orchestrator(stack, 'Orchestrator', { workflows: await fixtureWorkflows(), ...props });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  let error: unknown;
  try {
    app.synth();
  } catch (caught) {
    error = caught;
  }
  const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8')) as unknown;
  return { error, report };
}

describe('cdk-nag AwsSolutions', () => {
  it('has no unacknowledged finding with the defaults (Batch with a new VPC), nor any from the CDK CloudFormation validation', async () => {
    const { error, report } = await nagReport({}, true);
    // Synthesis is interrupted on any violation; the message lists them.
    expect(error === undefined ? '' : String((error as Error).message).slice(0, 4000)).toBe('');
    const plugins = (report as { pluginReports: { summary?: { pluginName?: string }; violations?: unknown[] }[] }).pluginReports;
    for (const plugin of plugins) expect(plugin.violations ?? []).toEqual([]);
  });

  it('has no unacknowledged finding without Batch and with auto-deleted buckets', async () => {
    const { error } = await nagReport({ enableBatch: false, autoDeleteObjects: true, removalPolicy: RemovalPolicy.DESTROY });
    expect(error === undefined ? '' : String((error as Error).message).slice(0, 4000)).toBe('');
  });

  it('fails when a finding is left unacknowledged (the check can fail)', async () => {
    // GIVEN a wildcard statement nobody acknowledged
    const app = testApp();
    const stack = new Stack(app, 'test-stack');
    new Orchestrator(stack, 'Orchestrator', { workflows: await fixtureWorkflows(), enableBatch: false });
    const role = new Role(stack, 'Extra', { assumedBy: new AccountRootPrincipal() });
    role.addToPolicy(new PolicyStatement({ actions: ['s3:*'], resources: ['*'] }));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    // THEN synthesis stops and names the finding, on the extra role only
    let message = '';
    try {
      app.synth();
    } catch (caught) {
      message = (caught as Error).message;
    }
    expect(message).toContain("AwsSolutions-IAM5[Action::s3:*]");
    const flagged = [...message.matchAll(/^\s+(test-stack\/\S+)/gm)].map((m) => m[1]);
    expect(flagged.length).toBeGreaterThan(0);
    expect(flagged.filter((path) => !path!.startsWith('test-stack/Extra/'))).toEqual([]);
  });
});
