// `npm run demo` runs in the suite: its output must tell the story the README promises.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function runDemo(extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    for (const key of Object.keys(env)) if (key.startsWith('AWS_') || key.startsWith('VITEST') || key === 'NODE_OPTIONS') delete env[key];
    Object.assign(env, extraEnv);
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the demo did not finish in 110 s:\n${stdout}\n${stderr}`));
    }, 110_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The report line of task `path`: name, executor, then what the section says about it. */
const reportLine = (section: string, path: string): string | undefined =>
  section.split('\n').find((line) => new RegExp(`^\\s+${path.replace('/', '\\/')}\\s`).test(line));

describe('npm run demo', () => {
  it('cancels the running sublattice part-way on Lambda, Batch and Braket, reports how, and exits 0', async () => {
    expectTheStory(await runDemo());
  }, 120_000);

  it('tells the same story from the synthesized cloud assembly, with IAM enforced (VALENCE_ASSEMBLY)', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'valence-demo-assembly-'));
    try {
      const env = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true', DOCKER: '/nonexistent/docker' };
      const synth = spawnSync('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--no-version-reporting', '-c', 'workflows=examples/demo-workflows.ts', '--output', outdir], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
      expect(synth.status, synth.stderr.slice(-2000)).toBe(0);
      const run = await runDemo({ VALENCE_ASSEMBLY: outdir });
      expect(run.stdout).toContain(`deploying the cloud assembly ${outdir} (what cdk deploy would ship; IAM enforced)`);
      expectTheStory(run);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  }, 240_000);
});

/** What the demo's output must show: the live view, the cancel, the per-task report, nothing left, in time. */
function expectTheStory({ code, stdout, stderr, ms }: { code: number | null; stdout: string; stderr: string; ms: number }): void {
  expect(code, `${stdout}\n${stderr}`).toBe(0);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(stdout).toMatch(/local cloud up at http:\/\/127\.0\.0\.1:\d+/);
  const id = /dispatched demo-pipeline\(200\): ([0-9a-f-]{36})/.exec(stdout)?.[1];
  expect(id).toBeDefined();

  // The live view (a pipe here: one line per change) showed the experiments running first.
  expect(stdout).toMatch(/^\+\s*\S+\s+3\/0\s+simulate\s+lambda\s+RUNNING/m);
  expect(stdout).toMatch(/^\+\s*\S+\s+3\/1\s+anneal\s+batch\s+RUNNING\s+job\//m);
  expect(stdout).toMatch(/^\+\s*\S+\s+3\/2\s+sampleGhz\s+braket\s+RUNNING\s+quantum-task\//m);
  expect(stdout).toMatch(/>> \S+: cancelling task 3 \(demo-experiments\)/);
  expect(stdout).toMatch(/cancelled\s+3\s+demo-experiments\s+RUNNING -> CANCELLED via child-dispatch/);

  const reportAt = stdout.indexOf(`Final report: demo-pipeline ${id} ended CANCELLED`);
  expect(reportAt, stdout).toBeGreaterThanOrEqual(0);
  const report = stdout.slice(reportAt);
  expect(report.indexOf('Completed (3):')).toBeGreaterThan(0);
  expect(report.indexOf('Cancelled (6):')).toBeGreaterThan(report.indexOf('Completed (3):'));
  const completed = report.slice(report.indexOf('Completed (3):'), report.indexOf('Cancelled ('));
  expect(reportLine(completed, '0')).toMatch(/loadSamples\s+lambda/);
  expect(reportLine(completed, '1')).toMatch(/featurize\s+batch\s+\S+\s+job\//);
  expect(reportLine(completed, '2')).toMatch(/bellPair\s+braket\s+\S+\s+quantum-task\//);

  const cancelled = report.slice(report.indexOf('Cancelled (6):'), report.indexOf('Left running'));
  expect(reportLine(cancelled, '3')).toMatch(/demo-experiments\s+sublattice\s+child-dispatch/);
  expect(reportLine(cancelled, '3/0')).toMatch(/simulate\s+lambda\s+signal\s/);
  expect(reportLine(cancelled, '3/1')).toMatch(/anneal\s+batch\s+TerminateJob\s/);
  expect(reportLine(cancelled, '3/2')).toMatch(/sampleGhz\s+braket\s+CancelQuantumTask\s/);
  // combine is a target of the cancel and waits on targets being stopped: the cancel marks it
  // after the stops go out (issue 13), so a parent that stops first (simulate, by signal) may end
  // it `upstream-cancelled` before its own mark lands. Both say truly that it never ran.
  expect(reportLine(cancelled, '3/3')).toMatch(/combine\s+lambda\s+(not-started|upstream-cancelled)\s/);
  expect(reportLine(cancelled, '4')).toMatch(/summarize\s+lambda\s+(not-started|upstream-cancelled)\s/);
  expect(report).not.toContain('Failed (');
  expect(report).toContain('Left running: 0 Batch jobs, 0 quantum tasks.');

  expect(stdout).toContain('stopping the local cloud');
  // Standalone, `npm run demo` takes about 20-25 s on two cores (the goal is under 60 s);
  // here it shares the machine with the rest of the suite, hence the wider bound.
  const total = Number(/done in ([\d.]+)s$/m.exec(stdout)?.[1]);
  expect(total).toBeLessThan(90);
  expect(ms).toBeLessThan(100_000);
}
