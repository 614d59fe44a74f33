import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalCloudStartError, startLocalCloud } from '../../localstack/index.ts';
import type { LocalCloud } from '../../localstack/index.ts';

const running: LocalCloud[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const cloud of running.splice(0)) await cloud.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(options: Parameters<typeof startLocalCloud>[0] = {}): Promise<LocalCloud> {
  const cloud = await startLocalCloud({ port: 0, ...options });
  running.push(cloud);
  return cloud;
}

/** Resolves with 'connected' or the connect error code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

describe('local cloud lifecycle', () => {
  it('starts quickly on a free port and accepts requests at once', async () => {
    // Warm the module cache so the measurement is the start itself, as in a long-lived process.
    await (await start()).stop();
    running.length = 0;
    const started = performance.now();
    const cloud = await start();
    const elapsed = performance.now() - started;
    expect(cloud.port).toBeGreaterThan(0);
    expect(cloud.endpoint).toBe(`http://127.0.0.1:${cloud.port}`);
    // The target is < 1 s (see bench/localcloud-start.ts); this ceiling only catches regressions on a slow CI box.
    expect(elapsed).toBeLessThan(5_000);
    expect((await cloud.clients.dynamodb.send(new ListTablesCommand({}))).TableNames).toEqual([]);
  });

  it('stop() releases the port: nothing listens afterwards, and stopping twice is harmless', async () => {
    const cloud = await start();
    await cloud.clients.dynamodb.send(new ListTablesCommand({}));
    expect(await tryConnect(cloud.port)).toBe('connected');
    await cloud.stop();
    await cloud.stop();
    expect(await tryConnect(cloud.port)).toBe('ECONNREFUSED');
    // The port can be taken again at once.
    const again = await start({ port: cloud.port });
    expect(again.port).toBe(cloud.port);
  });

  it('refuses a port that is in use with a PortInUse error', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      await expect(startLocalCloud({ port })).rejects.toSatisfy((error: unknown) => error instanceof LocalCloudStartError && error.reason === 'PortInUse' && error.code === 'LOCAL_CLOUD_PORT_IN_USE');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('keeps tables and objects across restarts when given a data directory', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'valence-cloud-'));
    dirs.push(dataDir);
    const first = await start({ dataDir });
    await first.clients.dynamodb.send(
      new CreateTableCommand({
        TableName: 'kept',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    );
    await first.clients.s3.send(new CreateBucketCommand({ Bucket: 'kept-bucket' }));
    await first.clients.s3.send(new PutObjectCommand({ Bucket: 'kept-bucket', Key: 'k', Body: 'still here' }));
    await first.stop();
    const second = await start({ dataDir });
    expect((await second.clients.dynamodb.send(new ListTablesCommand({}))).TableNames).toEqual(['kept']);
    const object = await second.clients.s3.send(new GetObjectCommand({ Bucket: 'kept-bucket', Key: 'k' }));
    expect(await object.Body!.transformToString()).toBe('still here');
  });

  it('starts empty without a data directory', async () => {
    const first = await start();
    await first.clients.s3.send(new CreateBucketCommand({ Bucket: 'gone-bucket' }));
    await first.stop();
    const second = await start();
    await expect(second.clients.s3.send(new GetObjectCommand({ Bucket: 'gone-bucket', Key: 'k' }))).rejects.toMatchObject({ name: 'NoSuchBucket' });
  });

  it('gives deployed code an environment that points back at the local cloud', async () => {
    const cloud = await start({ environment: { VALENCE_TABLE: 'valence-nodes' } });
    cloud.setEnvironment({ VALENCE_BUCKET: 'valence-payloads' });
    expect(cloud.environment()).toMatchObject({
      AWS_ENDPOINT_URL: cloud.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
      VALENCE_TABLE: 'valence-nodes',
      VALENCE_BUCKET: 'valence-payloads',
    });
  });
});
