// valence as a user gets it: `npm pack`, installed into a fresh project outside the repository
// (an app made by `cdk init app --language typescript`), then used the way the README says,
// under Node 20 (this process's) and Node 22 (the npm registry's node@22 package, the Lambda
// runtime's version). One pack and one install serve both versions; the CDK app is synthesized
// once, under Node 22.
//
// The install is the real one for valence and its own dependencies (from the npm cache); the
// optional peers a CDK app or the local cloud adds (aws-cdk-lib, constructs, esbuild, tsx, the
// emulators, the CDK CLI, typescript) are linked from the repository's node_modules after the
// SDK-only install has been measured, which keeps this file near a minute.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'test', 'package', 'consumer');
const CACHE = join(ROOT, 'node_modules', '.cache', 'valence-consumer');
/** What only the CDK app or the local cloud needs: none of it may come with `npm install valence`. */
const NOT_IN_SDK_INSTALL = ['@cloud-copilot', 'aws-cdk-lib', 'aws-cdk', 'constructs', 'cdk-nag', 'esbuild', 'tsx', 'dynalite', 's3rver', 'aws-local-stepfunctions', 'typescript', 'preact', 'elkjs'];
/** The peers a user adds for `valence/cdk` and `valence/local` (and the tools `cdk init`'s app runs), linked from the repository. */
const PEERS = ['aws-cdk-lib', 'constructs', 'esbuild', 'tsx', 'dynalite', 's3rver', 'aws-local-stepfunctions', '@cloud-copilot/iam-simulate', 'aws-cdk', 'typescript', '@types/node'];
const BINS: Readonly<Record<string, string>> = { tsc: 'typescript/bin/tsc', tsx: 'tsx/dist/cli.mjs', esbuild: 'esbuild/bin/esbuild', cdk: 'aws-cdk/bin/cdk' };

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of every child: nothing of this process's AWS settings, vitest or loaders. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', NO_COLOR: '1' };
  for (const key of Object.keys(env)) if (key.startsWith('AWS_') || key.startsWith('VITEST') || key === 'NODE_OPTIONS' || key === 'VALENCE_WORKFLOWS') delete env[key];
  return { ...env, ...extra };
}

/** Runs a command in its own process group; the whole group is killed if it outlives `timeoutMs`. */
function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new Error(`${command} ${args.join(' ')} did not finish in ${options.timeoutMs ?? 120_000} ms:\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Ran> {
  const ran = await run(command, args, options);
  if (ran.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${ran.code}:\n${ran.stdout}\n${ran.stderr}`);
  return ran;
}

/** Newest modification time of the files under `path`. */
function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

/** Kilobytes under `path`, as `du -sk` counts them (symlinks not followed). */
async function kilobytes(path: string): Promise<number> {
  const { stdout } = await ok('du', ['-sk', path], { cwd: ROOT });
  return Number(stdout.split(/\s/)[0]);
}

/** The build in dist/ is current when it is newer than every source it is built from. */
function distIsCurrent(): boolean {
  const stamp = join(ROOT, 'dist', 'sdk', 'index.js');
  if (!existsSync(stamp)) return false;
  const sources = ['sdk', 'lambdas', 'infra', 'localstack', 'ui/server', 'ui/shared', 'ui/web', 'scripts/build.mjs', 'tsconfig.build.json'];
  return statSync(stamp).mtimeMs > Math.max(...sources.map((source) => newest(join(ROOT, source))));
}

/** `cdk init app --language typescript --generate-only` (offline), made once per CDK CLI version. */
async function cdkInitApp(): Promise<string> {
  const version = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'aws-cdk', 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(CACHE, `cdk-init-${version}`, 'app');
  if (existsSync(join(dir, 'cdk.json'))) return dir;
  const scratch = mkdtempSync(join(tmpdir(), 'valence-cdk-init-'));
  const app = join(scratch, 'app');
  mkdirSync(app);
  await ok(process.execPath, [join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk'), 'init', 'app', '--language', 'typescript', '--generate-only'], { cwd: app });
  mkdirSync(dirname(dir), { recursive: true });
  cpSync(app, dir, { recursive: true });
  rmSync(scratch, { recursive: true, force: true });
  return dir;
}

/**
 * A Node 22 binary: `VALENCE_NODE22` (what .ci/run installs from the npm registry's node@22),
 * else the one installed into the cache by an earlier run, else installed there now.
 */
async function node22(): Promise<string> {
  const fromEnv = process.env.VALENCE_NODE22;
  if (fromEnv) return fromEnv;
  const prefix = join(CACHE, 'node22');
  const bin = join(prefix, 'node_modules', '.bin', 'node');
  if (!existsSync(bin)) await ok('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', 'node@22'], { cwd: ROOT, timeoutMs: 300_000 });
  return bin;
}

let work: string;
let app: string;
let tarball: string;
let tarballFiles: string[];
let sdkInstallKb: number;
let sdkPackages: string[];
let sdkImport: Ran;
let localImport: Ran;
let localCommand: Ran;
const versions: { label: string; node: string }[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'valence-consumer-'));
  versions.push({ label: 'Node 20', node: process.execPath }, { label: 'Node 22', node: await node22() });

  // 1. The package: built when the sources changed since dist/, then packed (without running prepack again).
  // `--no-check`: the test command's static checks type-check these same sources.
  if (!distIsCurrent()) await ok(process.execPath, ['scripts/build.mjs', '--no-check'], { cwd: ROOT, timeoutMs: 300_000 });
  const packed = await ok('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
  tarball = join(work, info.filename);
  tarballFiles = info.files.map((file) => file.path);

  // 2. A fresh app, as `cdk init` makes it; it depends on valence alone, and drops jest (not installed here).
  app = join(work, 'app');
  cpSync(await cdkInitApp(), app, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(app, 'package.json'), JSON.stringify({ ...manifest, devDependencies: {}, dependencies: { valence: `file:${relative(app, tarball)}` } }, null, 2));
  const tsconfig = JSON.parse(readFileSync(join(app, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
  tsconfig.compilerOptions.types = ['node'];
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  rmSync(join(app, 'test'), { recursive: true, force: true });
  rmSync(join(app, 'jest.config.js'), { force: true });

  // 3. `npm install valence` (its dependencies from the npm cache), measured before anything else is added.
  await ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app, timeoutMs: 180_000 });
  sdkInstallKb = await kilobytes(join(app, 'node_modules'));
  sdkPackages = readdirSync(join(app, 'node_modules'));
  sdkImport = await run(process.execPath, ['--input-type=module', '-e', "const v = await import('valence'); console.log(typeof v.connect, typeof v.lattice)"], { cwd: app });
  localImport = await run(process.execPath, ['--input-type=module', '-e', "await import('valence/local')"], { cwd: app });
  localCommand = await run(process.execPath, [join(app, 'node_modules', '.bin', 'valence'), 'local', '--port', '0'], { cwd: app, timeoutMs: 30_000 });

  // 4. What a CDK app and the local cloud add, then the consumer's own files.
  for (const name of PEERS) {
    const target = join(app, 'node_modules', name);
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) symlinkSync(join(ROOT, 'node_modules', name), target);
  }
  for (const [bin, path] of Object.entries(BINS)) {
    const link = join(app, 'node_modules', '.bin', bin);
    if (!existsSync(link)) symlinkSync(join('..', path), link);
  }
  cpSync(FIXTURE, app, { recursive: true });
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed valence in a fresh project', () => {
  it('publishes JavaScript, declarations and source maps, and no TypeScript source', () => {
    expect(tarballFiles).toContain('dist/sdk/index.js');
    expect(tarballFiles).toContain('dist/sdk/index.d.ts');
    expect(tarballFiles).toContain('dist/sdk/index.js.map');
    expect(tarballFiles).toContain('dist/infra/orchestrator.js');
    expect(tarballFiles).toContain('dist/localstack/index.js');
    expect(tarballFiles).toContain('dist/ui/dist/app.js');
    expect(tarballFiles).toContain('bin/valence.mjs');
    expect(tarballFiles).toContain('dist/sdk/cli/templates/project/package.json.tmpl');
    expect(tarballFiles.filter((file) => /\.[cm]?tsx?$/.test(file) && !file.endsWith('.d.ts'))).toEqual([]);
    expect(tarballFiles.filter((file) => file.startsWith('test/') || file.startsWith('bench/'))).toEqual([]);
  });

  it('installs the SDK without CDK, esbuild, tsx or the emulators, and the SDK loads without them', () => {
    console.log(`SDK-only install: ${(sdkInstallKb / 1024).toFixed(1)} MB in node_modules (${sdkPackages.length} top-level entries)`);
    for (const name of NOT_IN_SDK_INSTALL) expect(sdkPackages, name).not.toContain(name);
    expect(sdkInstallKb).toBeLessThan(100 * 1024);
    expect(sdkImport.code, sdkImport.stderr).toBe(0);
    expect(sdkImport.stdout.trim()).toBe('function function');
  });

  it('names the missing local-cloud packages in one line, on import and from `valence local`', () => {
    const missing = /valence\/local needs packages that are not installed: dynalite, s3rver, aws-local-stepfunctions, tsx\. Install them with: npm install -D dynalite s3rver aws-local-stepfunctions tsx/;
    expect(localImport.code).not.toBe(0);
    expect(localImport.stderr).toMatch(missing);
    expect(localCommand.code).not.toBe(0);
    expect(localCommand.stderr).toMatch(missing);
    expect(localCommand.stderr.trim().split('\n')).toHaveLength(1);
  });

  it.concurrent('`valence init` from the installed bin writes a project into an empty folder, and refuses a non-empty one', async () => {
    const made = await run(process.execPath, [join(app, 'node_modules', '.bin', 'valence'), 'init', join(work, 'scaffolded')], { cwd: work });
    expect(made.code, made.stdout + made.stderr).toBe(0);
    for (const file of ['package.json', 'tsconfig.json', 'README.md', 'cdk.json']) expect(existsSync(join(work, 'scaffolded', file)), file).toBe(true);
    const workflows = readdirSync(join(work, 'scaffolded', 'src'));
    expect(workflows.length).toBeGreaterThan(0);
    const again = await run(process.execPath, [join(app, 'node_modules', '.bin', 'valence'), 'init', join(work, 'scaffolded')], { cwd: work });
    expect(again.code).toBe(2);
  }, 60_000);

  it.concurrent("type-checks a consumer module with the consumer's own tsc under strict flags and skipLibCheck false", async () => {
    const checked = await run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.strict.json'], { cwd: app, timeoutMs: 230_000 });
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);
  }, 240_000);

  it.concurrent('`valence local` deploys a TypeScript workflows module from the installed bin (tsx registered for it)', async () => {
    const child = spawn(process.execPath, [join(app, 'node_modules', '.bin', 'valence'), 'local', '--workflows', 'src/local-workflows.mts', '--port', '0', '--json'], {
      cwd: app,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 120_000;
      while (!stdout.includes('\n') && child.exitCode === null && Date.now() < deadline) await sleep(100);
      const ready = JSON.parse(stdout.split('\n')[0] || '{}') as { endpoint?: string; region: string; accessKeyId: string; secretAccessKey: string };
      expect(ready.endpoint, stderr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // The TypeScript module was imported and deployed: its lattices are state machines.
      const sfn = new SFNClient({ endpoint: ready.endpoint!, region: ready.region, credentials: { accessKeyId: ready.accessKeyId, secretAccessKey: ready.secretAccessKey } });
      const { stateMachines } = await sfn.send(new ListStateMachinesCommand({}));
      sfn.destroy();
      expect((stateMachines ?? []).map((machine) => machine.name).sort()).toEqual(['valence_graph-runner', 'valence_sum-of-squares', 'valence_ts-only']);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
  }, 240_000);

  // One synth, under Node 22 with `cdk init`'s own app command (`npx tsc && npx tsx
  // bin/app.ts`), as a user runs it and as Lambda's runtime is; a synth costs about 20 s of
  // CPU, and the repository's own `npx cdk synth` (test/infra/synth.test.ts) runs under
  // Node 20. What is Node 20's own here is a CommonJS app requiring the ESM `valence/cdk`
  // (require(esm), Node >= 20.19): checked under both versions, directly.
  it.concurrent("synthesizes the consumer's own CDK app under Node 22: a state machine per lattice, handlers bundled from the package, a small job image", async () => {
    const { label, node } = versions[1]!;
    const out = 'cdk.out';
    const env = cleanEnv({ PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}` });
    const synth = await run(node, [join(app, 'node_modules', 'aws-cdk', 'bin', 'cdk'), 'synth', '--quiet', '--output', out], { cwd: app, env, timeoutMs: 280_000 });
    expect(synth.code, `${label}\n${synth.stdout}\n${synth.stderr}`).toBe(0);
    const template = JSON.parse(readFileSync(join(app, out, 'AppStack.template.json'), 'utf8')) as { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
    const machines = Object.values(template.Resources).filter((resource) => resource.Type === 'AWS::StepFunctions::StateMachine');
    const names = machines.map((machine) => JSON.stringify(machine.Properties?.['StateMachineName']));
    expect(names.some((name) => name.includes('sum-of-squares'))).toBe(true);
    expect(names.some((name) => name.includes('report'))).toBe(true);
    expect(machines.length).toBe(3); // two lattices and the graph runner
    const functions = Object.values(template.Resources).filter((resource) => resource.Type === 'AWS::Lambda::Function' && (resource.Properties?.['Description'] as string | undefined)?.startsWith('valence'));
    expect(functions.map((fn) => fn.Properties?.['Runtime'])).toEqual(['nodejs22.x', 'nodejs22.x', 'nodejs22.x', 'nodejs22.x']);

    // The job image's build context: a Dockerfile and one bundle, not the project.
    const assets = readdirSync(join(app, out)).filter((name) => name.startsWith('asset.') && existsSync(join(app, out, name, 'Dockerfile')));
    expect(assets).toHaveLength(1);
    const context = join(app, out, assets[0]!);
    expect(readdirSync(context).sort()).toEqual(['Dockerfile', 'job.mjs', 'job.mjs.map']);
    const kb = await kilobytes(context);
    console.log(`${label}: job image build context ${(kb / 1024).toFixed(2)} MB (${readdirSync(context).join(', ')})`);
    expect(kb).toBeLessThan(30 * 1024);
  }, 300_000);

  // Each version's runs are independent processes; concurrently, they overlap their waits.
  describe.concurrent.each([
    { index: 0, name: 'Node 20' },
    { index: 1, name: 'Node 22' },
  ])('under $name', ({ index }) => {
    it('runs the local cloud from valence/local under plain node: dispatch, result, cancel, and the heartbeat ends', async () => {
      const { label, node } = versions[index]!;
      const heartbeat = join(work, `heartbeat-${index}.log`);
      const smoke = await run(node, ['src/smoke.mjs', heartbeat], { cwd: app, timeoutMs: 200_000 });
      expect(smoke.code, `${label}\n${smoke.stdout}\n${smoke.stderr}`).toBe(0);
      const seen = JSON.parse(smoke.stdout.trim().split('\n').at(-1)!) as {
        node: string;
        sum: { status: string; result: unknown };
        cancel: { status: string; cancelled: string[]; beatsAtEnd: number; quiet: boolean };
      };
      expect(seen.node).toMatch(index === 0 ? /^v20\./ : /^v22\./);
      expect(seen.sum).toEqual({ status: 'COMPLETED', result: 25 });
      expect(seen.cancel.status).toBe('CANCELLED');
      expect(seen.cancel.cancelled).toEqual(['0:RUNNING']);
      expect(seen.cancel.beatsAtEnd).toBeGreaterThanOrEqual(3);
      expect(seen.cancel.quiet).toBe(true);
      // And from here, after the process that ran it exited: no beat was added.
      const beatsNow = readFileSync(heartbeat, 'utf8').split('\n').filter(Boolean).length;
      await sleep(300);
      expect(readFileSync(heartbeat, 'utf8').split('\n').filter(Boolean).length).toBe(beatsNow);
    }, 240_000);


    it('lets a CommonJS module of the app require valence/cdk and build its Orchestrator', async () => {
      const { label, node } = versions[index]!;
      // The app's package.json has no "type": a .js file there is CommonJS, as `cdk init`'s compiled app is.
      writeFileSync(join(app, `require-cdk-${index}.js`), [
        "const { App, Stack } = require('aws-cdk-lib');",
        "const { Orchestrator } = require('valence/cdk');",
        'console.log(JSON.stringify({ node: process.version, orchestrator: typeof Orchestrator, app: typeof App, stack: typeof Stack }));',
        '',
      ].join('\n'));
      const required = await run(node, [`require-cdk-${index}.js`], { cwd: app, env: cleanEnv() });
      expect(required.code, `${label}\n${required.stdout}\n${required.stderr}`).toBe(0);
      const seen = JSON.parse(required.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
      expect(String(seen['node'])).toMatch(index === 0 ? /^v20\./ : /^v22\./);
      expect(seen).toMatchObject({ orchestrator: 'function', app: 'function', stack: 'function' });
    }, 60_000);
  });
});
