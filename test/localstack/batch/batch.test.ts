import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BatchClient,
  CancelJobCommand,
  CreateComputeEnvironmentCommand,
  CreateJobQueueCommand,
  DescribeComputeEnvironmentsCommand,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  ListJobsCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
  type JobDetail,
  type SubmitJobCommandInput,
} from '@aws-sdk/client-batch';
import { createBatchService, isProcessAlive, type LocalBatchService } from '../../../localstack/batch/index.ts';
import { clientConfig, recordingEvents, recordingHooks, serve, sleep, waitFor, type ServedService } from './harness.ts';

interface Cloud {
  readonly service: LocalBatchService;
  readonly server: ServedService;
  readonly client: BatchClient;
  readonly events: ReturnType<typeof recordingEvents>;
  readonly hooks: ReturnType<typeof recordingHooks>;
  readonly queue: string;
  readonly definition: string;
}

const started: Cloud[] = [];
const workDir = mkdtempSync(join(tmpdir(), 'valence-batch-test-'));

/** Starts a service and its server; unless `keep`, afterEach stops it. */
async function startCloud(options: Partial<Parameters<typeof createBatchService>[0]> = {}, keep = false): Promise<Cloud> {
  const hooks = recordingHooks();
  const events = recordingEvents();
  const service = createBatchService({
    hooks,
    events,
    region: 'us-east-1',
    accountId: '000000000000',
    environment: () => ({ LOCAL_CLOUD_ENDPOINT: 'http://127.0.0.1:4566' }),
    delays: { submittedMs: 10, pendingMs: 10, runnableMs: 10, startingMs: 10 },
    terminateGraceMs: 500,
    ...options,
  });
  const server = await serve(service, hooks);
  const client = new BatchClient(clientConfig(server.endpoint));
  await client.send(
    new CreateComputeEnvironmentCommand({
      computeEnvironmentName: 'local-ce',
      type: 'MANAGED',
      computeResources: { type: 'FARGATE', maxvCpus: 4, subnets: ['subnet-1'] },
    }),
  );
  const queue = await client.send(
    new CreateJobQueueCommand({
      jobQueueName: 'local-queue',
      priority: 1,
      computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'local-ce' }],
    }),
  );
  const definition = await client.send(
    new RegisterJobDefinitionCommand({
      jobDefinitionName: 'shell',
      type: 'container',
      parameters: { word: 'default-word' },
      containerProperties: {
        image: 'public.ecr.aws/docker/library/busybox',
        command: ['sh', '-c', 'echo "param=Ref::word"'],
        environment: [{ name: 'FROM_DEFINITION', value: 'def' }],
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '2048' },
        ],
      },
      platformCapabilities: ['FARGATE'],
    }),
  );
  const cloud: Cloud = {
    service,
    server,
    client,
    events,
    hooks,
    queue: queue.jobQueueArn!,
    definition: definition.jobDefinitionArn!,
  };
  if (!keep) started.push(cloud);
  return cloud;
}

async function stopCloud(cloud: Cloud): Promise<void> {
  const at = started.indexOf(cloud);
  if (at >= 0) started.splice(at, 1);
  cloud.client.destroy();
  await cloud.service.stop();
  await cloud.server.close();
}

async function submit(cloud: Cloud, command: string, extra: Partial<SubmitJobCommandInput> = {}): Promise<string> {
  const { containerOverrides, ...rest } = extra;
  const out = await cloud.client.send(
    new SubmitJobCommand({
      jobName: 'test-job',
      jobQueue: cloud.queue,
      jobDefinition: cloud.definition,
      ...rest,
      containerOverrides: { ...containerOverrides, command: ['sh', '-c', command] },
    }),
  );
  return out.jobId!;
}

async function describe1(cloud: Cloud, jobId: string): Promise<JobDetail> {
  const out = await cloud.client.send(new DescribeJobsCommand({ jobs: [jobId] }));
  expect(out.jobs).toHaveLength(1);
  return out.jobs![0]!;
}

async function waitForStatus(cloud: Cloud, jobId: string, status: string, timeoutMs = 10_000): Promise<JobDetail> {
  return waitFor(
    async () => {
      const out = await cloud.client.send(new DescribeJobsCommand({ jobs: [jobId] }));
      const job = out.jobs?.[0];
      return job?.status === status ? job : undefined;
    },
    timeoutMs,
    `job ${jobId} to be ${status}`,
  );
}

function statusesOf(cloud: Cloud, jobId: string): string[] {
  return cloud.events.events
    .filter((e) => e.detail.jobId === jobId)
    .map((e) => e.detail.status as string);
}

/** Parses `name=value` lines a job printed. */
function printed(stdout: string, name: string): string | undefined {
  return stdout
    .split('\n')
    .find((l) => l.startsWith(`${name}=`))
    ?.slice(name.length + 1);
}

afterEach(async () => {
  while (started.length > 0) await stopCloud(started[0]!);
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

describe('local Batch: control plane', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud({}, true);
  });
  afterAll(async () => {
    await stopCloud(cloud);
  });

  it('describes compute environments, queues and job definitions as created', async () => {
    // Act
    const ces = await cloud.client.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: ['local-ce'] }));
    const queues = await cloud.client.send(new DescribeJobQueuesCommand({}));
    const defs = await cloud.client.send(new DescribeJobDefinitionsCommand({ jobDefinitions: ['shell'] }));
    // Assess
    expect(ces.computeEnvironments?.[0]).toMatchObject({ computeEnvironmentName: 'local-ce', status: 'VALID', state: 'ENABLED' });
    expect(queues.jobQueues?.[0]).toMatchObject({
      jobQueueName: 'local-queue',
      jobQueueArn: 'arn:aws:batch:us-east-1:000000000000:job-queue/local-queue',
      computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'arn:aws:batch:us-east-1:000000000000:compute-environment/local-ce' }],
    });
    expect(defs.jobDefinitions?.[0]).toMatchObject({ jobDefinitionName: 'shell', revision: 1, status: 'ACTIVE' });
    expect(cloud.hooks.counts.get('DescribeJobQueues')).toBe(1);
  });

  it('answers bad requests with ClientException (HTTP 400), as the SDK expects', async () => {
    const err = await cloud.client
      .send(new SubmitJobCommand({ jobName: 'x', jobQueue: 'no-such-queue', jobDefinition: 'shell' }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ClientException', $metadata: { httpStatusCode: 400 } });
    const dup = await cloud.client
      .send(
        new CreateJobQueueCommand({
          jobQueueName: 'local-queue',
          priority: 1,
          computeEnvironmentOrder: [{ order: 1, computeEnvironment: 'local-ce' }],
        }),
      )
      .catch((e: unknown) => e);
    expect(dup).toMatchObject({ name: 'ClientException' });
    const tooBig = await cloud.client
      .send(new SubmitJobCommand({ jobName: 'x', jobQueue: 'local-queue', jobDefinition: 'shell', arrayProperties: { size: 10_001 } }))
      .catch((e: unknown) => e);
    expect(tooBig).toMatchObject({ name: 'ClientException' });
  });

  it('answers an injected fault in the wire format, after counting the call', async () => {
    cloud.hooks.faults.set('ListJobs', [{ status: 429, code: 'TooManyRequestsException', message: 'slow down' }]);
    const before = cloud.hooks.counts.get('ListJobs') ?? 0;
    const err = await cloud.client.send(new ListJobsCommand({ jobQueue: 'local-queue' })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } });
    expect(cloud.hooks.counts.get('ListJobs')).toBe(before + 1);
  });
});

describe('local Batch: jobs run as real process groups', () => {
  it('runs the definition command with parameters and the container environment, and succeeds on exit 0', async () => {
    // Prepare
    const cloud = await startCloud();
    // Act
    const { jobId } = await cloud.client.send(
      new SubmitJobCommand({ jobName: 'params', jobQueue: 'local-queue', jobDefinition: 'shell:1', parameters: { word: 'hello' } }),
    );
    const done = await waitForStatus(cloud, jobId!, 'SUCCEEDED');
    // Assess
    expect(cloud.service.job(jobId!)?.stdout).toBe('param=hello\n');
    expect(done.statusReason).toBe('Essential container in task exited');
    expect(done.container?.exitCode).toBe(0);
    expect(done.container?.command).toEqual(['sh', '-c', 'echo "param=hello"']);
    expect(done.startedAt).toBeGreaterThanOrEqual(done.createdAt!);
    expect(done.stoppedAt).toBeGreaterThanOrEqual(done.startedAt!);
    expect(done.attempts).toHaveLength(1);
  });

  it('gives the job the local cloud environment, container environment, overrides and AWS_BATCH_* variables', async () => {
    const cloud = await startCloud();
    const jobId = await submit(
      cloud,
      'for v in LOCAL_CLOUD_ENDPOINT FROM_DEFINITION FROM_OVERRIDE AWS_BATCH_JOB_ID AWS_BATCH_JQ_NAME AWS_BATCH_JOB_ATTEMPT AWS_BATCH_CE_NAME; do eval "echo $v=\\$$v"; done',
      { containerOverrides: { environment: [{ name: 'FROM_OVERRIDE', value: 'over' }] } },
    );
    await waitForStatus(cloud, jobId, 'SUCCEEDED');
    const out = cloud.service.job(jobId)!.stdout;
    expect(printed(out, 'LOCAL_CLOUD_ENDPOINT')).toBe('http://127.0.0.1:4566');
    expect(printed(out, 'FROM_DEFINITION')).toBe('def');
    expect(printed(out, 'FROM_OVERRIDE')).toBe('over');
    expect(printed(out, 'AWS_BATCH_JOB_ID')).toBe(jobId);
    expect(printed(out, 'AWS_BATCH_JQ_NAME')).toBe('local-queue');
    expect(printed(out, 'AWS_BATCH_JOB_ATTEMPT')).toBe('1');
    expect(printed(out, 'AWS_BATCH_CE_NAME')).toBe('local-ce');
  });

  it('moves through every status and emits a Batch Job State Change event for each', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'exit 0');
    const done = await waitForStatus(cloud, jobId, 'SUCCEEDED');
    expect(statusesOf(cloud, jobId)).toEqual(['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED']);
    const last = cloud.events.events.filter((e) => e.detail.jobId === jobId).at(-1)!;
    expect(last).toMatchObject({ source: 'aws.batch', 'detail-type': 'Batch Job State Change', resources: [done.jobArn] });
    expect(last.detail).toMatchObject({ jobArn: done.jobArn, jobQueue: cloud.queue, status: 'SUCCEEDED', container: { exitCode: 0 } });
  });

  it('fails a job whose command exits non-zero, with the container exit code and stderr kept', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'echo broken >&2; exit 3');
    const failed = await waitForStatus(cloud, jobId, 'FAILED');
    expect(failed.statusReason).toBe('Essential container in task exited');
    expect(failed.container?.exitCode).toBe(3);
    expect(cloud.service.job(jobId)).toMatchObject({ exitCode: 3, stderr: 'broken\n', spawnCount: 1 });
    expect(statusesOf(cloud, jobId).at(-1)).toBe('FAILED');
  });

  it('fails a job whose command cannot start', async () => {
    const cloud = await startCloud();
    const { jobId } = await cloud.client.send(
      new SubmitJobCommand({
        jobName: 'nope',
        jobQueue: 'local-queue',
        jobDefinition: 'shell',
        containerOverrides: { command: ['/definitely/not/here'] },
      }),
    );
    const failed = await waitForStatus(cloud, jobId!, 'FAILED');
    expect(failed.statusReason).toBe('Task failed to start');
    expect(failed.container?.reason).toMatch(/^CannotStartContainerError/);
  });

  it('retries a failed attempt per retryStrategy.attempts, with AWS_BATCH_JOB_ATTEMPT counting up', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'echo attempt=$AWS_BATCH_JOB_ATTEMPT; [ "$AWS_BATCH_JOB_ATTEMPT" = 2 ]', {
      retryStrategy: { attempts: 3 },
    });
    const done = await waitForStatus(cloud, jobId, 'SUCCEEDED');
    expect(done.attempts?.map((a) => a.container?.exitCode)).toEqual([1, 0]);
    expect(cloud.service.job(jobId)?.stdout).toBe('attempt=2\n');
    expect(statusesOf(cloud, jobId)).toEqual([
      'SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING',
      'RUNNABLE', 'STARTING', 'RUNNING', 'SUCCEEDED',
    ]);
  });

  it('terminates an attempt that exceeds timeout.attemptDurationSeconds', async () => {
    const cloud = await startCloud();
    const begun = Date.now();
    const jobId = await submit(cloud, 'sleep 30', { timeout: { attemptDurationSeconds: 1 } });
    const failed = await waitForStatus(cloud, jobId, 'FAILED');
    expect(failed.statusReason).toBe('Job attempt duration exceeded timeout');
    expect(Date.now() - begun).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - begun).toBeLessThan(5000);
    expect(isProcessAlive(cloud.service.job(jobId)!.pid!)).toBe(false);
  });
});

describe('local Batch: cancellation behaves as on AWS', () => {
  it('TerminateJob on a running job kills the whole process group and ends it FAILED with the reason', async () => {
    // Prepare: a shell that starts a grandchild and waits for it.
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'sleep 30 & echo grandchild=$!; wait');
    await waitForStatus(cloud, jobId, 'RUNNING');
    const stdout = await waitFor(() => printed(cloud.service.job(jobId)!.stdout, 'grandchild'), 5000, 'grandchild pid');
    const grandchild = Number(stdout);
    const view = cloud.service.job(jobId)!;
    expect(view.pid).toBe(view.pgid);
    expect(isProcessAlive(view.pid!)).toBe(true);
    expect(isProcessAlive(grandchild)).toBe(true);
    // Act
    await cloud.client.send(new TerminateJobCommand({ jobId, reason: 'cancelled by valence' }));
    const failed = await waitForStatus(cloud, jobId, 'FAILED');
    // Assess
    expect(failed.statusReason).toBe('cancelled by valence');
    expect(failed.container?.exitCode).toBe(143);
    expect(isProcessAlive(view.pid!)).toBe(false);
    expect(isProcessAlive(grandchild)).toBe(false);
    expect(statusesOf(cloud, jobId).slice(-2)).toEqual(['RUNNING', 'FAILED']);
  });

  it('TerminateJob sends SIGKILL to the group after the grace period when SIGTERM is ignored', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'trap "" TERM; sleep 30 & echo grandchild=$!; wait', {
      containerOverrides: { environment: [{ name: 'VALENCE_TERMINATE_GRACE_MS', value: '1000' }] },
    });
    await waitForStatus(cloud, jobId, 'RUNNING');
    const grandchild = Number(await waitFor(() => printed(cloud.service.job(jobId)!.stdout, 'grandchild'), 5000, 'pid'));
    const begun = Date.now();
    await cloud.client.send(new TerminateJobCommand({ jobId, reason: 'stop now' }));
    await sleep(150);
    expect((await describe1(cloud, jobId)).status).toBe('RUNNING');
    expect(isProcessAlive(grandchild)).toBe(true);
    const failed = await waitForStatus(cloud, jobId, 'FAILED');
    expect(Date.now() - begun).toBeGreaterThanOrEqual(1000);
    expect(failed.statusReason).toBe('stop now');
    expect(failed.container?.exitCode).toBe(137);
    expect(isProcessAlive(grandchild)).toBe(false);
  });

  it('CancelJob is a silent no-op on a RUNNING job: the process keeps running', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'sleep 30');
    await waitForStatus(cloud, jobId, 'RUNNING');
    const pid = cloud.service.job(jobId)!.pid!;
    // Act
    const out = await cloud.client.send(new CancelJobCommand({ jobId, reason: 'too late' }));
    await sleep(300);
    // Assess
    expect(out.$metadata.httpStatusCode).toBe(200);
    const job = await describe1(cloud, jobId);
    expect(job.status).toBe('RUNNING');
    expect(job.statusReason).toBeUndefined();
    expect(isProcessAlive(pid)).toBe(true);
    await cloud.client.send(new TerminateJobCommand({ jobId, reason: 'cleanup' }));
    await waitForStatus(cloud, jobId, 'FAILED');
    expect(isProcessAlive(pid)).toBe(false);
  });

  it('CancelJob on a RUNNABLE job fails it with the reason, and its command never runs', async () => {
    // Prepare: a long RUNNABLE phase, and a command that would leave a marker file.
    const cloud = await startCloud({ delays: { submittedMs: 10, pendingMs: 10, runnableMs: 800, startingMs: 10 } });
    const marker = join(workDir, `runnable-${Date.now()}`);
    const jobId = await submit(cloud, `touch ${marker}`);
    await waitForStatus(cloud, jobId, 'RUNNABLE');
    // Act
    await cloud.client.send(new CancelJobCommand({ jobId, reason: 'not needed' }));
    const failed = await waitForStatus(cloud, jobId, 'FAILED');
    await sleep(1000);
    // Assess
    expect(failed.statusReason).toBe('not needed');
    expect(existsSync(marker)).toBe(false);
    expect(cloud.service.job(jobId)?.spawnCount).toBe(0);
    expect(statusesOf(cloud, jobId)).toEqual(['SUBMITTED', 'PENDING', 'RUNNABLE', 'FAILED']);
  });

  it('TerminateJob on a SUBMITTED job cancels it before it starts; cancelling an ended job changes nothing', async () => {
    const cloud = await startCloud({ delays: { submittedMs: 500, pendingMs: 10, runnableMs: 10, startingMs: 10 } });
    const marker = join(workDir, `submitted-${Date.now()}`);
    const jobId = await submit(cloud, `touch ${marker}`);
    await cloud.client.send(new TerminateJobCommand({ jobId, reason: 'early' }));
    const failed = await waitForStatus(cloud, jobId, 'FAILED');
    await cloud.client.send(new CancelJobCommand({ jobId, reason: 'again' }));
    await sleep(600);
    expect((await describe1(cloud, jobId)).statusReason).toBe('early');
    expect(failed.statusReason).toBe('early');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('local Batch: array jobs', () => {
  it('runs each child with its AWS_BATCH_JOB_ARRAY_INDEX and summarises them on the parent', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'echo index=$AWS_BATCH_JOB_ARRAY_INDEX id=$AWS_BATCH_JOB_ID', { arrayProperties: { size: 3 } });
    const parent = await waitForStatus(cloud, jobId, 'SUCCEEDED');
    expect(parent.arrayProperties).toMatchObject({ size: 3, statusSummary: { SUCCEEDED: 3, RUNNING: 0 } });
    const children = await cloud.client.send(new DescribeJobsCommand({ jobs: [0, 1, 2].map((i) => `${jobId}:${i}`) }));
    expect(children.jobs?.map((c) => [c.status, c.arrayProperties?.index])).toEqual([
      ['SUCCEEDED', 0],
      ['SUCCEEDED', 1],
      ['SUCCEEDED', 2],
    ]);
    for (const i of [0, 1, 2]) expect(cloud.service.job(`${jobId}:${i}`)?.stdout).toBe(`index=${i} id=${jobId}:${i}\n`);
    const listed = await cloud.client.send(new ListJobsCommand({ arrayJobId: jobId, jobStatus: 'SUCCEEDED' }));
    expect(listed.jobSummaryList?.map((s) => s.jobId).sort()).toEqual([0, 1, 2].map((i) => `${jobId}:${i}`));
    // The parent never runs itself: SUBMITTED, PENDING, then the outcome.
    expect(statusesOf(cloud, jobId)).toEqual(['SUBMITTED', 'PENDING', 'SUCCEEDED']);
  });

  it('terminating one child stops only it; terminating the parent stops the rest and the parent ends FAILED', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'sleep 30 & echo grandchild=$!; wait', { arrayProperties: { size: 3 } });
    const ids = [0, 1, 2].map((i) => `${jobId}:${i}`);
    for (const id of ids) await waitForStatus(cloud, id, 'RUNNING');
    const grandchildren = await Promise.all(
      ids.map(async (id) => Number(await waitFor(() => printed(cloud.service.job(id)!.stdout, 'grandchild'), 5000, 'pid'))),
    );
    // Act 1: terminate child 1 only.
    await cloud.client.send(new TerminateJobCommand({ jobId: ids[1]!, reason: 'just this one' }));
    const child1 = await waitForStatus(cloud, ids[1]!, 'FAILED');
    // Assess 1
    expect(child1.statusReason).toBe('just this one');
    expect(isProcessAlive(grandchildren[1]!)).toBe(false);
    expect(isProcessAlive(grandchildren[0]!)).toBe(true);
    expect(isProcessAlive(grandchildren[2]!)).toBe(true);
    const parentMid = await describe1(cloud, jobId);
    expect(parentMid.status).toBe('PENDING');
    expect(parentMid.arrayProperties?.statusSummary).toMatchObject({ RUNNING: 2, FAILED: 1 });
    // Act 2: terminate the parent.
    await cloud.client.send(new TerminateJobCommand({ jobId, reason: 'all of it' }));
    const parent = await waitForStatus(cloud, jobId, 'FAILED');
    // Assess 2
    expect(parent.statusReason).toBe('all of it');
    expect(parent.arrayProperties?.statusSummary).toMatchObject({ FAILED: 3, RUNNING: 0 });
    for (const id of [ids[0]!, ids[2]!]) expect((await describe1(cloud, id)).statusReason).toBe('all of it');
    for (const pid of grandchildren) expect(isProcessAlive(pid)).toBe(false);
  });

  it('cancelling a parent cancels children that have not started; the parent ends FAILED', async () => {
    const cloud = await startCloud({ delays: { submittedMs: 10, pendingMs: 10, runnableMs: 600, startingMs: 10 } });
    const marker = join(workDir, `array-${Date.now()}`);
    const jobId = await submit(cloud, `touch ${marker}-$AWS_BATCH_JOB_ARRAY_INDEX`, { arrayProperties: { size: 2 } });
    await waitForStatus(cloud, `${jobId}:1`, 'RUNNABLE');
    await cloud.client.send(new CancelJobCommand({ jobId, reason: 'cancel array' }));
    const parent = await waitForStatus(cloud, jobId, 'FAILED');
    await sleep(700);
    expect(parent.statusReason).toBe('cancel array');
    expect(existsSync(`${marker}-0`) || existsSync(`${marker}-1`)).toBe(false);
    expect(cloud.service.jobs().filter((j) => j.parentJobId === jobId).map((j) => j.spawnCount)).toEqual([0, 0]);
  });
});

describe('local Batch: lifecycle of the service', () => {
  it('ListJobs defaults to RUNNING jobs of the queue', async () => {
    const cloud = await startCloud();
    const running = await submit(cloud, 'sleep 30');
    const quick = await submit(cloud, 'exit 0');
    await waitForStatus(cloud, running, 'RUNNING');
    await waitForStatus(cloud, quick, 'SUCCEEDED');
    const list = await cloud.client.send(new ListJobsCommand({ jobQueue: 'local-queue' }));
    expect(list.jobSummaryList?.map((j) => j.jobId)).toEqual([running]);
    const succeeded = await cloud.client.send(new ListJobsCommand({ jobQueue: 'local-queue', jobStatus: 'SUCCEEDED' }));
    expect(succeeded.jobSummaryList?.map((j) => j.jobId)).toEqual([quick]);
  });

  it('stop() kills every running process group', async () => {
    const cloud = await startCloud();
    const jobId = await submit(cloud, 'sleep 30 & echo grandchild=$!; wait');
    await waitForStatus(cloud, jobId, 'RUNNING');
    const grandchild = Number(await waitFor(() => printed(cloud.service.job(jobId)!.stdout, 'grandchild'), 5000, 'pid'));
    const pid = cloud.service.job(jobId)!.pid!;
    await stopCloud(cloud);
    expect(isProcessAlive(pid)).toBe(false);
    expect(isProcessAlive(grandchild)).toBe(false);
  });
});
