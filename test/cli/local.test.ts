// `valence --version`, and `valence local` as a developer's loop: it names the stack and the
// lattices it deployed, takes the module from VALENCE_WORKFLOWS as `dispatch` does, and with
// --watch redeploys when the module is saved — observed by dispatching the changed lattice.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, ROOT, runCli } from './helpers.ts';

const SDK = pathToFileURL(join(ROOT, 'sdk/index.ts')).href;
const dir = mkdtempSync(join(tmpdir(), 'valence-watch-'));
const MODULE = join(dir, 'workflows.ts');
// A user's project is an ES module package, as the scaffold writes it.
writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
const children: ChildProcessWithoutNullStreams[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A workflows module whose `watched` lattice computes `expression` of x. */
function writeModule(expression: string, extra = ''): void {
  writeFileSync(
    MODULE,
    `import { electron, lattice } from ${JSON.stringify(SDK)};
const compute = electron(function compute(x: number) {
  return ${expression};
});
export const watched = lattice({ name: 'watched' }, (x: number) => compute(x));
${extra}
`,
  );
}

/** Resolves once `pattern` appears in what `read()` returns; rejects after `timeoutMs`. */
async function until(read: () => string, pattern: RegExp, timeoutMs = 90_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(read());
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`never saw ${String(pattern)}; output so far: ${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('valence --version', () => {
  it('prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const run = await runCli(['--version']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${version}\n`);
    expect(run.stderr).toBe('');
  });
});

describe('valence local --watch', () => {
  it('prints what it deployed from VALENCE_WORKFLOWS and redeploys the module when it is saved', async () => {
    // GIVEN a module named only by the environment
    writeModule('x + 1');
    const env = cleanEnv({ VALENCE_WORKFLOWS: MODULE });
    const child = spawn(process.execPath, [BIN, 'local', '--port', '0', '--watch'], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    // THEN it names the stack and the lattice it deployed
    const endpoint = (await until(() => stdout + stderr, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    await until(() => stdout, /Press Ctrl\+C/);
    expect(stdout).toContain(`deployed stack "valence" from ${MODULE}: 1 lattice(s): watched`);
    expect(stdout).toContain(`watching ${MODULE}`);
    const remote = ['--endpoint', endpoint];
    const dispatched = await runCli(['dispatch', 'watched', '4', ...remote], { env });
    expect(dispatched.code, dispatched.stderr).toBe(0);
    const first = dispatched.stdout.trim();
    expect((await runCli(['result', first, ...remote], { env })).stdout.trim()).toBe('5');

    // WHEN the module is saved with another body and one more lattice
    writeModule('x * 10', `export const added = lattice({ name: 'added' }, (x: number) => compute(x));`);
    await until(() => stdout, /redeployed stack "valence" from .*: 2 lattice\(s\): added, watched/);

    // THEN the changed lattice dispatches (its deployed graph matches) and runs the new code
    const second = await runCli(['dispatch', 'watched', '4', ...remote], { env });
    expect(second.code, second.stderr).toBe(0);
    expect((await runCli(['result', second.stdout.trim(), ...remote], { env })).stdout.trim()).toBe('40');
    const added = await runCli(['dispatch', 'added', '2', ...remote], { env });
    expect((await runCli(['result', added.stdout.trim(), ...remote], { env })).stdout.trim()).toBe('20');

    // AND a broken save is named, and the cloud keeps serving
    writeFileSync(MODULE, 'export const broken = ;\n');
    await until(() => stderr, /redeploying .*workflows\.ts failed: .*fix it and save again/);
    expect((await runCli(['result', second.stdout.trim(), ...remote], { env })).stdout.trim()).toBe('40');

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stdout).toContain('stopped');
  }, 240_000);

  it('refuses --watch without a module, with exit 2 and the fix', async () => {
    const run = await runCli(['local', '--port', '0', '--watch']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--watch needs a workflows module to watch; pass --workflows FILE or set VALENCE_WORKFLOWS/);
  });
});
