// `valence init`: scaffolds a project from the shipped templates, refuses a non-empty target
// without writing, and the project it writes runs: its own demo dispatches its Lambda → Batch
// and Braket workflow on the local cloud. valence cannot be installed from the registry here,
// so the project's node_modules/valence is a shim that re-exports this repo's sources.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, expectInputError, ROOT, runCli, type CliRun } from './helpers.ts';

const parent = mkdtempSync(join(tmpdir(), 'valence-init-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

const EXPECTED_FILES = ['.gitignore', 'README.md', 'bin/app.ts', 'cdk.json', 'demo.ts', 'package.json', 'src/workflows.ts', 'test/workflows.test.ts', 'tsconfig.json'];

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`]))
    .sort();
}

/** Runs `node --import tsx FILE` in `cwd`, as the project's `npm run demo` does. */
function runTs(cwd: string, file: string, timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('valence init', () => {
  const project = join(parent, 'my-project');

  it('writes the project: package.json on valence, tsconfig, workflows with three executors, the CDK app, demo, test, README', async () => {
    const run = await runCli(['init', project]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(filesUnder(project)).toEqual(EXPECTED_FILES);
    for (const file of EXPECTED_FILES) expect(run.stdout).toContain(`  ${file}`);
    const manifest = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { name: string; type: string; dependencies: Record<string, string>; scripts: Record<string, string> };
    expect(manifest).toMatchObject({ name: 'my-project', type: 'module', dependencies: { valence: `^${version}` } });
    expect(manifest.scripts).toMatchObject({ demo: 'tsx demo.ts', test: 'vitest run' });
    const app = readFileSync(join(project, 'bin/app.ts'), 'utf8');
    expect(app).toContain("import { Orchestrator } from 'valence/cdk';");
    expect(app).toContain("new Orchestrator(this, 'Valence', { workflows: 'src/workflows.ts' })");
    const workflows = readFileSync(join(project, 'src/workflows.ts'), 'utf8');
    expect(workflows).toMatch(/new BatchExecutor\(/);
    expect(workflows).toMatch(/new BraketExecutor\(/);
    expect(readFileSync(join(project, 'demo.ts'), 'utf8')).toContain("from 'valence/local'");
    expect(readFileSync(join(project, 'README.md'), 'utf8')).toMatch(/^# my-project\n/);
    expect(readFileSync(join(project, '.gitignore'), 'utf8')).toContain('node_modules/');
  });

  it('refuses a non-empty target with exit 2 and writes nothing', async () => {
    const taken = join(parent, 'taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'notes.txt'), 'mine\n');
    expectInputError(await runCli(['init', taken]), /init target .*taken is not empty \(it holds notes\.txt\); name a new or empty folder/);
    expect(filesUnder(taken)).toEqual(['notes.txt']);
    expectInputError(await runCli(['init', join(parent, 'Not A Name')]), /not a valid npm package name/);
    expect(readdirSync(parent)).not.toContain('Not A Name');
    expectInputError(await runCli(['init']), /init needs a folder/);
  });

  it("runs the scaffolded project's own demo on the repo's local cloud: Lambda, Batch and Braket nodes complete", async () => {
    // The shim stands in for the installed package: `valence` and `valence/local` are this repo's.
    const shim = join(project, 'node_modules', 'valence');
    mkdirSync(shim, { recursive: true });
    writeFileSync(join(shim, 'package.json'), JSON.stringify({ name: 'valence', type: 'module', exports: { '.': './index.ts', './local': './local.ts' } }));
    writeFileSync(join(shim, 'index.ts'), `export * from ${JSON.stringify(pathToFileURL(join(ROOT, 'sdk/index.ts')).href)};\n`);
    writeFileSync(join(shim, 'local.ts'), `export * from ${JSON.stringify(pathToFileURL(join(ROOT, 'localstack/index.ts')).href)};\n`);

    const demo = await runTs(project, 'demo.ts', 240_000);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/^dispatched [0-9a-f-]{36}\n/);
    const result = JSON.parse(demo.stdout.slice(demo.stdout.indexOf('{'))) as { stats: { min: number; max: number; mean: number }; shots: number; states: string[] };
    // measure(20) → spread on Batch → statistics; bell on Braket → counts of a Bell pair.
    const values = Array.from({ length: 20 }, (_, i) => (i * 37) % 101);
    expect(result.stats).toEqual({ min: Math.min(...values), max: Math.max(...values), mean: values.reduce((a, b) => a + b, 0) / 20 });
    expect(result.shots).toBe(100);
    expect(result.states.length).toBeGreaterThan(0);
    expect(result.states.every((state) => state === '00' || state === '11')).toBe(true);
  }, 300_000);
});
