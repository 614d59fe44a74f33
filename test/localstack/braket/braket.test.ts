import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import {
  BraketClient,
  CancelJobCommand,
  CancelQuantumTaskCommand,
  CreateJobCommand,
  CreateQuantumTaskCommand,
  GetDeviceCommand,
  GetJobCommand,
  GetQuantumTaskCommand,
  SearchJobsCommand,
  SearchQuantumTasksCommand,
  type CreateJobCommandInput,
} from '@aws-sdk/client-braket';
import { createBraketService, type BraketServiceOptions, type LocalBraketService } from '../../../localstack/braket/index.ts';
import { createS3Service, type LocalS3Service } from '../../../localstack/s3/index.ts';
import { isProcessAlive } from '../../../localstack/core/process-group.ts';
import { clientConfig, recordingEvents, recordingHooks, serve, sleep, waitFor, type ServedService } from '../batch/harness.ts';

const SV1 = 'arn:aws:braket:::device/quantum-simulator/amazon/sv1';
const BELL = `OPENQASM 3;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cnot q[0], q[1];
c = measure q;`;

interface Cloud {
  readonly service: LocalBraketService;
  readonly server: ServedService;
  readonly client: BraketClient;
  readonly events: ReturnType<typeof recordingEvents>;
  readonly hooks: ReturnType<typeof recordingHooks>;
}

const started: Cloud[] = [];
const workDir = mkdtempSync(join(tmpdir(), 'valence-braket-test-'));

/** The local cloud's S3 service behind HTTP: Braket writes results into it, tests read them over the wire. */
let s3: { readonly service: LocalS3Service; readonly server: ServedService; readonly client: S3Client };
beforeAll(async () => {
  const service = createS3Service();
  const server = await serve(service, recordingHooks());
  await service.createBucket('results-bucket');
  await service.createBucket('b');
  s3 = { service, server, client: new S3Client({ ...clientConfig(server.endpoint), forcePathStyle: true }) };
});
afterAll(async () => {
  s3.client.destroy();
  await s3.service.stop();
  await s3.server.close();
});

/** Keys in the local S3 under a task's output directory, listed over HTTP. */
async function outputKeys(arn: string): Promise<string[]> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: 'results-bucket', Prefix: `tasks/${arn.split('/').at(-1)!}/` }));
  return (listed.Contents ?? []).map((o) => o.Key!);
}

async function startCloud(options: Partial<BraketServiceOptions> = {}): Promise<Cloud> {
  const hooks = recordingHooks();
  const events = recordingEvents();
  const service = createBraketService({
    hooks,
    events,
    region: 'us-east-1',
    accountId: '000000000000',
    writeObject: (bucket, key, body) => s3.service.writeObject(bucket, key, body),
    queueDelayMs: 10,
    runMs: 10,
    cancelGraceMs: 500,
    environment: () => ({ LOCAL_CLOUD_ENDPOINT: 'http://127.0.0.1:4566' }),
    ...options,
  });
  const server = await serve(service, hooks);
  const cloud: Cloud = { service, server, client: new BraketClient(clientConfig(server.endpoint)), events, hooks };
  started.push(cloud);
  return cloud;
}

afterEach(async () => {
  for (const cloud of started.splice(0)) {
    cloud.client.destroy();
    await cloud.service.stop();
    await cloud.server.close();
  }
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

function program(source: string): string {
  return JSON.stringify({ braketSchemaHeader: { name: 'braket.ir.openqasm.program', version: '1' }, source });
}

async function createTask(cloud: Cloud, source: string, shots = 100): Promise<string> {
  const out = await cloud.client.send(
    new CreateQuantumTaskCommand({
      deviceArn: SV1,
      shots,
      outputS3Bucket: 'results-bucket',
      outputS3KeyPrefix: 'tasks',
      action: program(source),
    }),
  );
  return out.quantumTaskArn!;
}

async function waitForTask(cloud: Cloud, arn: string, status: string, timeoutMs = 5000) {
  return waitFor(
    async () => {
      const task = await cloud.client.send(new GetQuantumTaskCommand({ quantumTaskArn: arn }));
      return task.status === status ? task : undefined;
    },
    timeoutMs,
    `task ${arn} to be ${status}`,
  );
}

async function waitForJob(cloud: Cloud, arn: string, status: string, timeoutMs = 5000) {
  return waitFor(
    async () => {
      const job = await cloud.client.send(new GetJobCommand({ jobArn: arn }));
      return job.status === status ? job : undefined;
    },
    timeoutMs,
    `job ${arn} to be ${status}`,
  );
}

function taskStatuses(cloud: Cloud, arn: string): string[] {
  return cloud.events.events
    .filter((e) => e['detail-type'] === 'Braket Task State Change' && e.detail.quantumTaskArn === arn)
    .map((e) => e.detail.status as string);
}

function jobStatuses(cloud: Cloud, arn: string): string[] {
  return cloud.events.events
    .filter((e) => e['detail-type'] === 'Braket Job State Change' && e.detail.jobArn === arn)
    .map((e) => e.detail.status as string);
}

describe('local Braket: quantum tasks', () => {
  it('runs a Bell circuit: about half 00, half 11, nothing else; results.json where Braket writes it', async () => {
    // Prepare
    const cloud = await startCloud();
    // Act
    const arn = await createTask(cloud, BELL, 1000);
    const task = await waitForTask(cloud, arn, 'COMPLETED');
    // Assess
    const taskId = arn.split('/').at(-1)!;
    expect(arn).toMatch(/^arn:aws:braket:us-east-1:000000000000:quantum-task\/[0-9a-f-]{36}$/);
    expect(task).toMatchObject({ deviceArn: SV1, shots: 1000, outputS3Bucket: 'results-bucket', outputS3Directory: `tasks/${taskId}` });
    expect(task.createdAt).toBeInstanceOf(Date);
    expect(task.endedAt!.getTime()).toBeGreaterThanOrEqual(task.createdAt!.getTime());
    expect(await outputKeys(arn)).toEqual([`tasks/${taskId}/results.json`]);
    const object = await s3.client.send(new GetObjectCommand({ Bucket: 'results-bucket', Key: `tasks/${taskId}/results.json` }));
    const result = JSON.parse(await object.Body!.transformToString()) as {
      braketSchemaHeader: { name: string };
      measurements: number[][];
      measuredQubits: number[];
      measurementProbabilities: Record<string, number>;
      taskMetadata: { id: string; shots: number; deviceId: string };
    };
    expect(result.braketSchemaHeader.name).toBe('braket.task_result.gate_model_task_result');
    expect(result.measuredQubits).toEqual([0, 1]);
    expect(result.taskMetadata).toMatchObject({ id: arn, shots: 1000, deviceId: SV1 });
    expect(result.measurements).toHaveLength(1000);
    const counts = new Map<string, number>();
    for (const row of result.measurements) counts.set(row.join(''), (counts.get(row.join('')) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(['00', '11']);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThanOrEqual(400);
      expect(n).toBeLessThanOrEqual(600);
    }
    expect(result.measurementProbabilities['00']).toBeCloseTo(counts.get('00')! / 1000, 12);
    expect(taskStatuses(cloud, arn)).toEqual(['CREATED', 'QUEUED', 'RUNNING', 'COMPLETED']);
    const last = cloud.events.events.at(-1)!;
    expect(last).toMatchObject({ source: 'aws.braket', resources: [arn] });
    expect(last.detail).toMatchObject({ deviceArn: SV1, shots: 1000, outputS3Bucket: 'results-bucket', outputS3Directory: `tasks/${taskId}` });
  });

  it('fails a task whose program does not parse, naming the line', async () => {
    const cloud = await startCloud();
    const arn = await createTask(cloud, 'OPENQASM 3;\nqubit[2] q;\nfrobnicate q[0];');
    const task = await waitForTask(cloud, arn, 'FAILED');
    expect(task.failureReason).toMatch(/line 3: unknown gate or statement 'frobnicate'/);
    expect(await outputKeys(arn)).toEqual([]);
    expect(taskStatuses(cloud, arn)).toEqual(['CREATED', 'QUEUED', 'RUNNING', 'FAILED']);
  });

  it('cancels a QUEUED task: CANCELLING then CANCELLED, and it never runs', async () => {
    const cloud = await startCloud({ queueDelayMs: 1000 });
    const arn = await createTask(cloud, BELL);
    await waitForTask(cloud, arn, 'QUEUED');
    // Act
    const out = await cloud.client.send(new CancelQuantumTaskCommand({ quantumTaskArn: arn }));
    // Assess
    expect(out).toMatchObject({ quantumTaskArn: arn, cancellationStatus: 'CANCELLING' });
    await waitForTask(cloud, arn, 'CANCELLED');
    await sleep(1100);
    expect((await cloud.client.send(new GetQuantumTaskCommand({ quantumTaskArn: arn }))).status).toBe('CANCELLED');
    expect(taskStatuses(cloud, arn)).toEqual(['CREATED', 'QUEUED', 'CANCELLING', 'CANCELLED']);
    expect(await outputKeys(arn)).toEqual([]);
  });

  it('cancels a RUNNING task: no result is ever written', async () => {
    const cloud = await startCloud({ runMs: 800 });
    const arn = await createTask(cloud, BELL);
    await waitForTask(cloud, arn, 'RUNNING');
    await cloud.client.send(new CancelQuantumTaskCommand({ quantumTaskArn: arn }));
    await waitForTask(cloud, arn, 'CANCELLED');
    await sleep(900);
    expect(taskStatuses(cloud, arn)).toEqual(['CREATED', 'QUEUED', 'RUNNING', 'CANCELLING', 'CANCELLED']);
    expect(await outputKeys(arn)).toEqual([]);
  });

  it('answers ConflictException when cancelling a task that already ended', async () => {
    const cloud = await startCloud();
    const arn = await createTask(cloud, BELL);
    await waitForTask(cloud, arn, 'COMPLETED');
    const err = await cloud.client.send(new CancelQuantumTaskCommand({ quantumTaskArn: arn })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
    expect((await cloud.client.send(new GetQuantumTaskCommand({ quantumTaskArn: arn }))).status).toBe('COMPLETED');
  });

  it('answers ResourceNotFoundException and ValidationException as Braket does', async () => {
    const cloud = await startCloud();
    const missing = await cloud.client
      .send(new GetQuantumTaskCommand({ quantumTaskArn: 'arn:aws:braket:us-east-1:000000000000:quantum-task/nope' }))
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
    const badShots = await cloud.client
      .send(new CreateQuantumTaskCommand({ deviceArn: SV1, shots: -1, outputS3Bucket: 'b', outputS3KeyPrefix: 'p', action: program(BELL) }))
      .catch((e: unknown) => e);
    expect(badShots).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    const badAction = await cloud.client
      .send(new CreateQuantumTaskCommand({ deviceArn: SV1, shots: 1, outputS3Bucket: 'b', outputS3KeyPrefix: 'p', action: '{"source":"x"}' }))
      .catch((e: unknown) => e);
    expect(badAction).toMatchObject({ name: 'ValidationException' });
  });

  it('is idempotent on clientToken and searches by status and device', async () => {
    const cloud = await startCloud();
    const input = { deviceArn: SV1, shots: 10, outputS3Bucket: 'b', outputS3KeyPrefix: 'p', action: program(BELL), clientToken: 'token-1' };
    const a = await cloud.client.send(new CreateQuantumTaskCommand(input));
    const b = await cloud.client.send(new CreateQuantumTaskCommand(input));
    expect(b.quantumTaskArn).toBe(a.quantumTaskArn);
    const other = await createTask(cloud, BELL, 10);
    await waitForTask(cloud, a.quantumTaskArn!, 'COMPLETED');
    await waitForTask(cloud, other, 'COMPLETED');
    const byStatus = await cloud.client.send(
      new SearchQuantumTasksCommand({ filters: [{ name: 'status', operator: 'EQUAL', values: ['COMPLETED'] }] }),
    );
    expect(byStatus.quantumTasks?.map((t) => t.quantumTaskArn).sort()).toEqual([a.quantumTaskArn, other].sort());
    const none = await cloud.client.send(
      new SearchQuantumTasksCommand({ filters: [{ name: 'deviceArn', operator: 'EQUAL', values: ['arn:aws:braket:::device/qpu/x/y'] }] }),
    );
    expect(none.quantumTasks).toEqual([]);
    expect(cloud.hooks.counts.get('CreateQuantumTask')).toBe(3);
  });

  it('describes devices', async () => {
    const cloud = await startCloud();
    const device = await cloud.client.send(new GetDeviceCommand({ deviceArn: SV1 }));
    expect(device).toMatchObject({ deviceArn: SV1, deviceType: 'SIMULATOR', deviceStatus: 'ONLINE' });
  });
});

describe('local Braket: hybrid jobs', () => {
  function jobInput(name: string, entryPoint: string, extra: Partial<CreateJobCommandInput> = {}): CreateJobCommandInput {
    return {
      jobName: name,
      roleArn: 'arn:aws:iam::000000000000:role/braket',
      algorithmSpecification: { scriptModeConfig: { entryPoint, s3Uri: 's3://code/source.tar.gz' } },
      outputDataConfig: { s3Path: 's3://results/jobs' },
      instanceConfig: { instanceType: 'ml.m5.large', volumeSizeInGb: 30 },
      deviceConfig: { device: SV1 },
      hyperParameters: { depth: '3' },
      ...extra,
    };
  }

  it('runs the entry point as a process and completes on exit 0', async () => {
    const cloud = await startCloud();
    const { jobArn } = await cloud.client.send(
      new CreateJobCommand(jobInput('ok-job', 'echo name=$AMZN_BRAKET_JOB_NAME; echo device=$AMZN_BRAKET_DEVICE_ARN; cat "$AMZN_BRAKET_HP_FILE"')),
    );
    expect(jobArn).toBe('arn:aws:braket:us-east-1:000000000000:job/ok-job');
    const job = await waitForJob(cloud, jobArn!, 'COMPLETED');
    expect(job.startedAt).toBeInstanceOf(Date);
    expect(job.events?.map((e) => e.eventType)).toEqual(['QUEUED_FOR_EXECUTION', 'RUNNING', 'COMPLETED']);
    const view = cloud.service.hybridJobs()[0]!;
    expect(view.stdout).toBe(`name=ok-job\ndevice=${SV1}\n{"depth":"3"}`);
    expect(jobStatuses(cloud, jobArn!)).toEqual(['QUEUED', 'RUNNING', 'COMPLETED']);
    const found = await cloud.client.send(new SearchJobsCommand({ filters: [{ name: 'status', operator: 'EQUAL', values: ['COMPLETED'] }] }));
    expect(found.jobs?.map((j) => j.jobArn)).toEqual([jobArn]);
  });

  it('fails a job whose process exits non-zero', async () => {
    const cloud = await startCloud();
    const { jobArn } = await cloud.client.send(new CreateJobCommand(jobInput('bad-job', 'echo oops >&2; exit 2')));
    const job = await waitForJob(cloud, jobArn!, 'FAILED');
    expect(job.failureReason).toBe('AlgorithmError: the job exited with code 2: oops');
  });

  it('CancelJob on a RUNNING job kills its whole process group and ends it CANCELLED', async () => {
    const cloud = await startCloud();
    const { jobArn } = await cloud.client.send(new CreateJobCommand(jobInput('long-job', 'sleep 30 & echo grandchild=$!; wait')));
    await waitForJob(cloud, jobArn!, 'RUNNING');
    const grandchild = Number(
      await waitFor(() => /grandchild=(\d+)/.exec(cloud.service.hybridJobs()[0]!.stdout)?.[1], 5000, 'grandchild pid'),
    );
    const pid = cloud.service.hybridJobs()[0]!.pid!;
    expect(isProcessAlive(grandchild)).toBe(true);
    // Act
    const out = await cloud.client.send(new CancelJobCommand({ jobArn: jobArn! }));
    // Assess
    expect(out).toMatchObject({ jobArn, cancellationStatus: 'CANCELLING' });
    const job = await waitForJob(cloud, jobArn!, 'CANCELLED');
    expect(job.endedAt).toBeInstanceOf(Date);
    expect(isProcessAlive(pid)).toBe(false);
    expect(isProcessAlive(grandchild)).toBe(false);
    expect(jobStatuses(cloud, jobArn!)).toEqual(['QUEUED', 'RUNNING', 'CANCELLING', 'CANCELLED']);
    const again = await cloud.client.send(new CancelJobCommand({ jobArn: jobArn! })).catch((e: unknown) => e);
    expect(again).toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
  });

  it('CancelJob on a QUEUED job ends it CANCELLED without ever starting it', async () => {
    const cloud = await startCloud({ queueDelayMs: 600 });
    const marker = join(workDir, `queued-job-${Date.now()}`);
    const { jobArn } = await cloud.client.send(new CreateJobCommand(jobInput('queued-job', `touch ${marker}`)));
    await cloud.client.send(new CancelJobCommand({ jobArn: jobArn! }));
    await waitForJob(cloud, jobArn!, 'CANCELLED');
    await sleep(700);
    expect(existsSync(marker)).toBe(false);
    expect(cloud.service.hybridJobs()[0]!.spawnCount).toBe(0);
    expect(jobStatuses(cloud, jobArn!)).toEqual(['QUEUED', 'CANCELLING', 'CANCELLED']);
  });

  it('stops a job that exceeds stoppingCondition.maxRuntimeInSeconds', async () => {
    const cloud = await startCloud();
    const { jobArn } = await cloud.client.send(
      new CreateJobCommand(jobInput('slow-job', 'sleep 30', { stoppingCondition: { maxRuntimeInSeconds: 1 } })),
    );
    const job = await waitForJob(cloud, jobArn!, 'FAILED', 6000);
    expect(job.failureReason).toMatch(/maximum runtime of 1 seconds/);
    expect(isProcessAlive(cloud.service.hybridJobs()[0]!.pid!)).toBe(false);
  });
});
