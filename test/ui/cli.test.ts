// `valence ui` as a user runs it: prints the URL (loopback, with a token), opens nothing,
// serves the page against the local cloud, and stops cleanly on SIGTERM.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, cleanEnv, runCli } from '../cli/helpers.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness();
}, 60_000);
afterAll(async () => h?.close());

describe('valence ui', () => {
  it('prints a tokened 127.0.0.1 URL, serves the dashboard, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'ui', '--endpoint', h.cloud.endpoint], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed; stderr: ${stderr}`)), 60_000);
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString();
          const m = /valence ui: (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32})/.exec(stdout);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      const first = await fetch(url, { redirect: 'manual' });
      expect(first.status).toBe(303);
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
      const list = await fetch(new URL('/api/dispatches', url), { headers: { cookie } });
      expect(list.status).toBe(200);
      expect(Array.isArray(await list.json())).toBe(true);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  }, 90_000);

  it('refuses a bad --port and a stack that does not exist, with one line and exit 2', async () => {
    const port = await runCli(['ui', '--port', 'abc', '--endpoint', h.cloud.endpoint]);
    expect([port.code, port.stderr.trim()]).toEqual([2, 'valence: --port must be a positive number, got "abc"']);
    const stack = await runCli(['ui', '--stack', 'nope', '--endpoint', h.cloud.endpoint]);
    expect(stack.code).toBe(2);
    expect(stack.stderr).toMatch(/No stack named "nope"/);
  }, 60_000);
});
