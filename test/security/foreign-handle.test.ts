// The confused deputy: a forged node item (RUNNING, cancelRequested, a handle naming a Batch
// job valence never started) followed by the sweeper's run terminated that job. Now the
// runtime reads the job's tags back and refuses, and the sweeper reports the refusal.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeJobsCommand, RegisterJobDefinitionCommand, SubmitJobCommand, TerminateJobCommand } from '@aws-sdk/client-batch';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import * as wf from '../cancel/fixtures/workflows.ts';
import { alive, waitFor } from '../cancel/observe.ts';
import { JOB_TAG } from '../../sdk/runtime/drivers/ownership.ts';

const FIXTURES = new URL('../cancel/fixtures/workflows.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, FIXTURES);
}, 60_000);
afterAll(async () => h?.close());

describe('a forged job handle', () => {
  it('is not stopped by the sweeper, and the refusal is reported', async () => {
    const dispatchId = (await h.client.dispatch(wf.quick)(h.dir)).id;
    await h.client.getResult(dispatchId, { wait: true, timeoutMs: 60_000 });
    const outputs = await h.client.outputs();
    // Someone else's job in the same account, submitted with a plain client: it beats a file.
    const pidFile = join(h.dir, 'foreign.pid');
    const definition = await h.cloud.clients.batch.send(
      new RegisterJobDefinitionCommand({
        jobDefinitionName: 'not-valence',
        type: 'container',
        containerProperties: { image: 'busybox', command: ['/bin/sh', '-c', `echo $$ > ${pidFile}; exec sleep 120`], vcpus: 1, memory: 128 },
      }),
    );
    const foreign = await h.cloud.clients.batch.send(
      new SubmitJobCommand({ jobName: 'someone-elses', jobQueue: outputs.jobQueueArn!, jobDefinition: definition.jobDefinitionArn! }),
    );
    try {
      await waitFor('foreign job runs', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 30_000);
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      expect(alive(pid)).toBe(true);
      // Forge: the completed node becomes RUNNING, cancel-requested, with the foreign handle.
      const db = DynamoDBDocumentClient.from(h.cloud.clients.dynamodb);
      const items = await db.send(new QueryCommand({ TableName: outputs.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `D#${dispatchId}` } }));
      const node = (items.Items ?? []).find((i) => i['entity'] === 'node');
      expect(node, JSON.stringify(items.Items)).toBeDefined();
      await db.send(
        new PutCommand({
          TableName: outputs.tableName,
          Item: { ...node, status: 'RUNNING', cancelRequested: true, cancelReason: 'forged', jobHandle: foreign.jobArn, jobKind: 'batch', listKey: 'ACTIVE', listSort: 'forged' },
        }),
      );
      const swept = await h.cloud.clients.lambda.send(new InvokeCommand({ FunctionName: 'valence-sweeper', Payload: Buffer.from('{}') }));
      const report = JSON.parse(Buffer.from(swept.Payload!).toString()) as { recancelled: number; errors: string[] };
      // The refusal is visible, naming the handle and the missing tags.
      expect(report.recancelled).toBe(0);
      expect(report.errors.join('\n')).toMatch(new RegExp(`ForeignJobHandleError: Refused to stop ${foreign.jobArn!.replace(/[/:]/g, '.')}`));
      expect(report.errors.join('\n')).toContain(`${JOB_TAG.dispatch}=∅`);
      // The job runs on: its process is alive and Batch still says RUNNING.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(alive(pid)).toBe(true);
      const job = (await h.cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [foreign.jobId!] }))).jobs?.[0];
      expect(job?.status).toBe('RUNNING');
    } finally {
      await h.cloud.clients.batch.send(new TerminateJobCommand({ jobId: foreign.jobId!, reason: 'test over' }));
    }
  }, 120_000);
});
