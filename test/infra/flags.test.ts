// The construct in an app that is not valence's own: without valence's cdk.json feature flags
// (an app made by `cdk init` has others, an older app none), synth succeeds and the template is
// the one valence's app gets. The S3 server-access-log flag decides whether CDK grants log
// delivery with an ACL, which BUCKET_OWNER_ENFORCED forbids ("objectOwnership must be set to
// ObjectWriter when accessControl is LogDeliveryWrite"); the construct sets it on itself.
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Orchestrator } from '../../infra/orchestrator.ts';
import { fixtureWorkflows } from './support.ts';

const outdir = mkdtempSync(join(tmpdir(), 'valence-flags-test-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('Orchestrator without the app feature flags', () => {
  it('synthesizes, and delivers access logs under a bucket policy, as with the flags', async () => {
    // GIVEN an app with no feature flags at all (bundling skipped, as in the other infra tests)
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'plain-app');
    // WHEN
    const orchestrator = new Orchestrator(stack, 'Valence', { workflows: await fixtureWorkflows() });
    const template = Template.fromStack(stack);
    // THEN the log bucket keeps BUCKET_OWNER_ENFORCED, gets no ACL, and S3 logging writes by policy
    const logBucketId = stack.getLogicalId(orchestrator.accessLogBucket.node.defaultChild as never);
    const resources = template.toJSON() as { Resources: Record<string, { Properties: Record<string, unknown> }> };
    const logBucket = resources.Resources[logBucketId]!;
    expect(logBucket.Properties['AccessControl']).toBeUndefined();
    expect(logBucket.Properties['OwnershipControls']).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    const policies = Object.values(template.findResources('AWS::S3::BucketPolicy')).map((policy) => JSON.stringify(policy));
    expect(policies.some((policy) => policy.includes('logging.s3.amazonaws.com') && policy.includes(logBucketId))).toBe(true);

  });
});
