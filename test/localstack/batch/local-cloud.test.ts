import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  DescribeJobsCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { CreateQuantumTaskCommand, GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { startLocalCloud, type LocalCloud } from '../../../localstack/index.ts';
import { isProcessAlive } from '../../../localstack/core/process-group.ts';
import { waitFor } from './harness.ts';

// Batch and Braket behind the real router: requests routed by their SigV4 credential scope.
describe('Batch and Braket in the local cloud', () => {
  let cloud: LocalCloud;
  beforeAll(async () => {
    cloud = await startLocalCloud({
      port: 0,
      batchDelays: { submittedMs: 5, pendingMs: 5, runnableMs: 5, startingMs: 5 },
      braketQueueDelayMs: 5,
    });
  });
  afterAll(async () => {
    await cloud.stop();
  });

  async function jobStatus(jobId: string): Promise<{ status?: string | undefined; statusReason?: string | undefined; exitCode?: number | undefined }> {
    const out = await cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [jobId] }));
    const job = out.jobs?.[0];
    return { status: job?.status, statusReason: job?.statusReason, exitCode: job?.container?.exitCode };
  }

  it('runs a Batch job that sees the local cloud endpoint, and terminates a running one', async () => {
    const batch = cloud.clients.batch;
    await batch.send(
      new CreateComputeEnvironmentCommand({ computeEnvironmentName: 'ce', type: 'MANAGED', computeResources: { type: 'FARGATE', maxvCpus: 2, subnets: ['s'] } }),
    );
    await batch.send(new CreateJobQueueCommand({ jobQueueName: 'q', priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'ce' }] }));
    await batch.send(
      new RegisterJobDefinitionCommand({
        jobDefinitionName: 'd',
        type: 'container',
        containerProperties: { image: 'busybox', command: ['sh', '-c', '[ "$AWS_ENDPOINT_URL" = "$EXPECTED" ]'] },
      }),
    );
    const ok = await batch.send(
      new SubmitJobCommand({
        jobName: 'ok',
        jobQueue: 'q',
        jobDefinition: 'd',
        containerOverrides: { environment: [{ name: 'EXPECTED', value: cloud.endpoint }] },
      }),
    );
    const done = await waitFor(async () => {
      const s = await jobStatus(ok.jobId!);
      return s.status === 'SUCCEEDED' || s.status === 'FAILED' ? s : undefined;
    }, 10_000);
    expect(done).toMatchObject({ status: 'SUCCEEDED', exitCode: 0 });

    const long = await batch.send(
      new SubmitJobCommand({ jobName: 'long', jobQueue: 'q', jobDefinition: 'd', containerOverrides: { command: ['sleep', '30'] } }),
    );
    await waitFor(async () => ((await jobStatus(long.jobId!)).status === 'RUNNING' ? true : undefined), 10_000);
    const pid = (cloud.services.batch as unknown as { job(id: string): { pid?: number } }).job(long.jobId!).pid!;
    expect(isProcessAlive(pid)).toBe(true);
    await batch.send(new TerminateJobCommand({ jobId: long.jobId!, reason: 'via router' }));
    const ended = await waitFor(async () => {
      const s = await jobStatus(long.jobId!);
      return s.status === 'FAILED' ? s : undefined;
    }, 10_000);
    expect(ended.statusReason).toBe('via router');
    expect(isProcessAlive(pid)).toBe(false);
    expect(cloud.counters()).toMatchObject({ batch: { SubmitJob: 2, TerminateJob: 1 } });
  });

  it('runs a Braket task and writes results.json into the local S3', async () => {
    await cloud.clients.s3.send(new CreateBucketCommand({ Bucket: 'braket-results' }));
    const { quantumTaskArn } = await cloud.clients.braket.send(
      new CreateQuantumTaskCommand({
        deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1',
        shots: 50,
        outputS3Bucket: 'braket-results',
        outputS3KeyPrefix: 'out',
        action: JSON.stringify({
          braketSchemaHeader: { name: 'braket.ir.openqasm.program', version: '1' },
          source: 'OPENQASM 3;\nqubit[2] q;\nx q[1];\nmeasure q;',
        }),
      }),
    );
    const task = await waitFor(async () => {
      const t = await cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: quantumTaskArn! }));
      return t.status === 'COMPLETED' || t.status === 'FAILED' ? t : undefined;
    }, 10_000);
    expect(task.status).toBe('COMPLETED');
    const object = await cloud.clients.s3.send(
      new GetObjectCommand({ Bucket: 'braket-results', Key: `${task.outputS3Directory!}/results.json` }),
    );
    const result = JSON.parse(await object.Body!.transformToString()) as { measurementProbabilities: Record<string, number> };
    expect(result.measurementProbabilities).toEqual({ '01': 1 });
  });
});
