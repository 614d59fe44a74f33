// Runs the `valence` command as a separate process, as a user would.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/valence.mjs', import.meta.url));
export const WORKFLOWS = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));

/** What a finished CLI process left behind. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of a fresh shell: no AWS endpoint or keys, so the CLI's own defaults apply.
 * The one AWS variable kept is the user's own switch for the AWS SDK's Node version notice
 * (valence does not hide it), so that the tests' one-line stderr checks read valence's output.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(AWS_|VALENCE_)/.test(key) || key === 'NODE_OPTIONS' || key.startsWith('VITEST')) continue;
    env[key] = value;
  }
  return { ...env, NO_COLOR: '1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
}

/** Runs `node bin/valence.mjs ...args` (asynchronously: the local cloud lives in this process). */
export function runCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliRun> {
  return runCommand(process.execPath, [BIN, ...args], options);
}

/** Runs any command, collecting its output; kills it after `timeoutMs`. */
export function runCommand(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: ROOT, env: options.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not finish in ${options.timeoutMs ?? 60_000} ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A loopback port nothing listens on. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** Text without terminal escape sequences. */
export const stripAnsi = (text: string): string => text.replace(ANSI, '');

export const json = <T>(run: CliRun): T => {
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout) as T;
};

export interface NodeJson {
  id: number;
  name: string;
  status: string;
  executor: string;
  kind: string;
  cancelledBy?: string;
  child?: { nodes: NodeJson[]; status: string };
}
export interface StatusJson {
  dispatchId: string;
  lattice: string;
  status: string;
  result?: unknown;
  nodes: NodeJson[];
  cancelRequests: { reason?: string; targets: unknown[] }[];
}

/** Polls `valence status --json` until `done` holds. */
export async function statusUntil(endpoint: readonly string[], id: string, done: (s: StatusJson) => boolean, timeoutMs = 45_000): Promise<StatusJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = json<StatusJson>(await runCli(['status', id, '--json', ...endpoint]));
    if (done(status)) return status;
    if (Date.now() > deadline) throw new Error(`status never matched: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** One line on stderr, naming the problem, no stack trace, nothing on stdout, exit 2. */
export function expectInputError(run: CliRun, pattern: RegExp): void {
  expect(run.code, run.stderr).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stderr).toMatch(pattern);
}

