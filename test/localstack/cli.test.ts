import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runLocalCloudCli } from '../../localstack/cli.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
});

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('valence local', () => {
  it('prints the endpoint, serves until SIGTERM, then stops cleanly and frees the port', async () => {
    const script = `import('./localstack/cli.ts').then((m) => m.runLocalCloudCli(['local', '--port', '0'])).then((code) => process.exit(code));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const endpoint = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no endpoint printed; stdout: ${stdout}`)), 30_000);
      child.stdout.on('data', () => {
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (match?.[1] && stdout.includes('Press Ctrl+C')) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
    expect(stdout).toContain(`export AWS_ENDPOINT_URL=${endpoint}`);
    const token = /x-valence-admin-token: (\S+)/.exec(stdout)?.[1];
    expect(token).toBeDefined();
    expect((await fetch(`${endpoint}/_valence/health`)).status).toBe(403);
    const health = (await (await fetch(`${endpoint}/_valence/health`, { headers: { 'x-valence-admin-token': token! } })).json()) as { status: string };
    expect(health.status).toBe('ok');

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('stopped');
    expect(await portIsClosed(Number(new URL(endpoint).port))).toBe(true);
  });

  it('rejects bad arguments with usage and exit code 2', async () => {
    const errors: string[] = [];
    expect(await runLocalCloudCli(['--port', 'eighty'], { stderr: (line) => errors.push(line), stdout: () => {} })).toBe(2);
    expect(errors.join('\n')).toContain('Usage: valence local');
    expect(await runLocalCloudCli(['--bogus'], { stderr: (line) => errors.push(line), stdout: () => {} })).toBe(2);
  });

  it('stops when its signal is aborted (embedding)', async () => {
    const lines: string[] = [];
    const controller = new AbortController();
    let port = 0;
    const code = await runLocalCloudCli(['--port', '0'], {
      stdout: (line) => lines.push(line),
      signal: controller.signal,
      onReady: (cloud) => {
        port = cloud.port;
        controller.abort();
      },
    });
    expect(code).toBe(0);
    expect(lines.at(-1)).toBe('stopped');
    expect(await portIsClosed(port)).toBe(true);
  });
});
