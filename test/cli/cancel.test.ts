// `valence cancel` and `valence local`, driven as separate processes against local clouds.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';
import { BIN, ROOT, WORKFLOWS, cleanEnv, json, runCli, statusUntil, type StatusJson } from './helpers.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let cloud: LocalCloud;
let endpoint: string[];
const W = ['--workflows', WORKFLOWS];

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0, workflows: WORKFLOWS });
  endpoint = ['--endpoint', cloud.endpoint];
});
afterAll(async () => {
  await cloud?.stop();
});

describe('valence cancel', () => {
  it('cancels one running task and its descendant; the independent task completes', async () => {
    const id = (await runCli(['dispatch', 'slow', '30', ...W, ...endpoint])).stdout.trim();
    await statusUntil(endpoint, id, (s) => s.nodes[0]?.status === 'RUNNING' && s.nodes[2]?.status === 'COMPLETED');

    const run = await runCli(['cancel', id, '--task', '0', '--reason', 'not needed any more', '--json', ...endpoint]);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { dispatchId: string; cancelled: { id: number; status: string; method: string }[]; executionStopped: boolean };
    expect(report.dispatchId).toBe(id);
    expect(report.executionStopped).toBe(false);
    const byId = new Map(report.cancelled.map((c) => [c.id, c]));
    expect(byId.get(0)).toMatchObject({ status: 'CANCELLED', method: 'signal' });
    expect(byId.get(1)?.status).toBe('CANCELLED');
    expect(byId.has(2)).toBe(false);

    const result = await runCli(['result', id, ...endpoint]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('ended CANCELLED');
    const status = json<StatusJson>(await runCli(['status', id, '--json', ...endpoint]));
    expect(status.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED', 'COMPLETED']);
    expect(status.nodes[0]?.cancelledBy).toBe('signal');
    expect(status.cancelRequests).toEqual([expect.objectContaining({ reason: 'not needed any more', targets: [0] })]);
  });

  it('cancels a whole dispatch (text report), and a second cancel reports everything already terminal', async () => {
    const id = (await runCli(['dispatch', 'slow', '30', ...W, ...endpoint])).stdout.trim();
    await statusUntil(endpoint, id, (s) => s.nodes[0]?.status === 'RUNNING');

    const run = await runCli(['cancel', id, ...endpoint]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`for ${id} (execution stopped)`);
    expect(run.stdout).toMatch(/cancelled\s+0\s+wait\s+RUNNING -> CANCELLED via signal/);
    expect(run.stdout).toMatch(/cancelled\s+1\s+double\s+NEW_OBJECT -> CANCELLED via not-started/);

    const again = JSON.parse((await runCli(['cancel', id, '--json', ...endpoint])).stdout) as { cancelled: unknown[]; alreadyTerminal: { id: number; status: string }[] };
    expect(again.cancelled).toEqual([]);
    expect(again.alreadyTerminal.sort((a, b) => a.id - b.id)).toEqual([
      { id: 0, status: 'CANCELLED' },
      { id: 1, status: 'CANCELLED' },
      { id: 2, status: 'COMPLETED' },
    ]);
    expect(json<StatusJson>(await runCli(['status', id, '--json', ...endpoint])).status).toBe('CANCELLED');
  });

  it('cancels a task inside a sublattice by path (3/0 style)', async () => {
    const id = (await runCli(['dispatch', 'nested', '30', ...W, ...endpoint])).stdout.trim();
    await statusUntil(endpoint, id, (s) => s.nodes[1]?.child?.nodes[0]?.status === 'RUNNING');
    const report = JSON.parse((await runCli(['cancel', id, '--task', '1/0', '--json', ...endpoint])).stdout) as { cancelled: { id: string; method: string }[] };
    expect(report.cancelled.find((c) => c.id === '1/0')?.method).toBe('signal');
    const status = await statusUntil(endpoint, id, (s) => s.status !== 'RUNNING');
    expect(status.nodes[1]?.child?.nodes.map((n) => n.status)).toEqual(['CANCELLED', 'CANCELLED']);
  });
});

describe('valence local', () => {
  it('runs the local cloud in the foreground (--json: one line to connect); other commands use it; SIGINT stops it (exit 0)', async () => {
    const child = spawn(process.execPath, [BIN, 'local', '--port', '0', '--json', '--workflows', WORKFLOWS], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const ready = await new Promise<{ endpoint: string; region: string; accessKeyId: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no endpoint printed: ${stdout}`)), 45_000);
        child.stdout.on('data', () => {
          if (!stdout.includes('\n')) return;
          clearTimeout(timer);
          resolve(JSON.parse(stdout.split('\n')[0]!) as { endpoint: string; region: string; accessKeyId: string });
        });
      });
      expect(ready).toMatchObject({ endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) as unknown, region: 'us-east-1', accessKeyId: 'test' });
      const local = ready.endpoint;
      const id = (await runCli(['dispatch', 'arith', '4', ...W, '--endpoint', local])).stdout.trim();
      // Through the environment a user would export, with no --endpoint flag.
      const result = await runCli(['result', id], { env: cleanEnv({ AWS_ENDPOINT_URL: local }) });
      expect(result.stdout.trim()).toBe('10');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stdout.trim().split('\n')).toHaveLength(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
