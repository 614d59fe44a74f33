// Redispatch on the local cloud, through the public client and the CLI: what completed is
// not run again (the electrons' own logs prove it), what was cancelled reruns with its
// descendants, a dry run decides exactly what the real redispatch then does and runs nothing,
// new arguments map nodes by position, and an edited-and-redeployed electron reruns with
// everything below it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployWorkflows } from '../../localstack/deploy.ts';
import type { Lattice } from '../../sdk/model/lattice.ts';
import { RedispatchError, type RedispatchPlan } from '../../sdk/client/index.ts';
import { beats, waitFor } from '../cancel/observe.ts';
import { runCli } from '../cli/helpers.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { createAwsClients } from '../../sdk/aws.ts';
import { runtimeConfigFromOutputs } from '../../sdk/runtime/config.ts';
import { runtimeContextFrom, type RuntimeContext } from '../../sdk/runtime/context.ts';
import { totalTwice, wide } from './fixtures/workflows.ts';

const SDK = fileURLToPath(new URL('../../sdk/model/index.ts', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));

/** A workflows module whose `scale` electron a test edits and redeploys. */
const editedModule = (factor: number): string => `
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { electron, lattice } from ${JSON.stringify(SDK)};
export * from ${JSON.stringify(FIXTURE)};
const base = electron(function base(dir: string) { appendFileSync(join(dir, 'edit.log'), 'base\\n'); return 2; });
const scale = electron(function scale(dir: string, x: number) { appendFileSync(join(dir, 'edit.log'), 'scale\\n'); return x * ${factor}; });
const other = electron(function other(dir: string) { appendFileSync(join(dir, 'edit.log'), 'other\\n'); return 5; });
const report = electron(function report(dir: string, a: number, b: number) { appendFileSync(join(dir, 'edit.log'), 'report\\n'); return a + b; });
export const edited = lattice({ name: 'redispatch-edited' }, (dir: string) => report(dir, scale(dir, base(dir)), other(dir)));
`;

// Generous ceilings: on a shared 2-core machine a cold step handler can take tens of seconds.
const LONG = 300_000;
const TEST_MS = 900_000;

let h: RuntimeHarness;
let modulePath: string;
let moduleDir: string | undefined;
beforeAll(async () => {
  // One cloud for every test: the fixture module, re-exported by a module a test edits.
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  moduleDir = mkdtempSync(join(tmpdir(), 'valence-redispatch-'));
  // An ES module, as the fixtures it re-exports are (else tsx loads it as CommonJS, with a second copy of the SDK).
  writeFileSync(join(moduleDir, 'package.json'), '{ "type": "module" }');
  modulePath = join(moduleDir, 'workflows.ts');
  writeFileSync(modulePath, editedModule(3));
  h = await startHarness({}, modulePath);
}, 120_000);
afterAll(async () => {
  await h?.close();
  // The edited workflows module lives outside the harness's directory: removed here, or every run leaves one in /tmp.
  if (moduleDir) (await import('node:fs')).rmSync(moduleDir, { recursive: true, force: true });
});

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);
const actions = (plan: RedispatchPlan): string[] => plan.nodes.map((n) => n.action);
const ranNodes = (plan: RedispatchPlan): number[] => plan.nodes.filter((n) => n.action === 'run').map((n) => n.nodeId);

/** Dispatches `wide` (3 work nodes, hold, total) and cancels `hold` once the work nodes ran: total is cancelled with it. */
async function cancelledWide(dir: string): Promise<string> {
  const { id } = await h.client.dispatch(wide)(dir, 3);
  await waitFor('three work nodes ran and hold beats', () => lines(join(dir, 'ran.log')).filter((l) => l.startsWith('work')).length === 3 && beats(join(dir, 'hold.beat')) > 2, LONG);
  await waitFor('work nodes completed', async () => (await h.client.getResult(id)).nodes.slice(0, 3).every((n) => n.status === 'COMPLETED'), LONG);
  const report = await h.client.cancel(id, { taskIds: [3], reason: 'wrong input' });
  expect(new Set(report.cancelled.map((c) => c.id))).toEqual(new Set([3, 4]));
  const result = await h.client.getResult(id, { wait: true, timeoutMs: LONG });
  expect(result.nodes.map((n) => n.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'CANCELLED', 'CANCELLED']);
  return id;
}

const freshDir = async (name: string): Promise<string> => {
  const { mkdirSync } = await import('node:fs');
  const dir = join(h.dir, name);
  mkdirSync(dir);
  return dir;
};

describe('cancel, then redispatch with reuse', () => {
  let dir: string;
  let first: string;
  let second: string;

  it('dry run: the completed nodes would be reused, the cancelled ones run; nothing runs', async () => {
    dir = await freshDir('reuse');
    first = await cancelledWide(dir);
    writeFileSync(join(dir, 'release'), '');
    const before = lines(join(dir, 'ran.log'));
    const plan = await h.client.redispatch(first, { dryRun: true });
    expect(plan).toMatchObject({ redispatchOf: first, lattice: 'redispatch-wide', dryRun: true, newNodes: [], redrive: { used: false } });
    expect(actions(plan)).toEqual(['reuse', 'reuse', 'reuse', 'run', 'run']);
    expect(plan.nodes.slice(0, 3).map((n) => n.from)).toEqual([0, 1, 2].map((nodeId) => ({ dispatchId: first, nodeId })));
    expect(plan.nodes[3]?.reason).toBe('it ended CANCELLED');
    expect(plan.nodes[4]?.reason).toMatch(/CANCELLED|parent 3 runs again/);
    // A dry run is not a dispatch anyone ran: no electron logged, and it is not listed.
    expect(lines(join(dir, 'ran.log'))).toEqual(before);
    expect((await h.client.listDispatches({ limit: 50 })).map((d) => d.dispatchId)).not.toContain(plan.dispatchId);
  }, TEST_MS);

  it('runs only what the dry run said, and the result is right', async () => {
    const before = lines(join(dir, 'ran.log'));
    const plan = await h.client.redispatch(first);
    second = plan.dispatchId;
    const result = await h.client.getResult<number>(second, { wait: true, timeoutMs: LONG });
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(0 + 1 + 4 + 100);
    // Observed: the work electrons did not run again; hold and total did.
    expect(lines(join(dir, 'ran.log')).slice(before.length)).toEqual(['hold', 'total']);
    expect(ranNodes(plan)).toEqual([3, 4]);
    const dispatch = await (await connectCtx()).store.requireDispatch(second);
    expect(dispatch.redispatchOf).toBe(first);
    const items = await (await connectCtx()).store.listNodes(second);
    expect(items.map((n) => n.reusedFrom?.nodeId)).toEqual([0, 1, 2, undefined, undefined]);
    // By reference: the reused node carries the earlier result (inline text here), no new S3 object was written.
    expect(items[2]?.output).toBe(items[2] && (await (await connectCtx()).store.getNode(first, 2))?.output);
  }, TEST_MS);

  it('new arguments build a new graph; nodes map by position and the new ones are named', async () => {
    const before = lines(join(dir, 'ran.log'));
    const dry = await h.client.redispatch(second, { args: [dir, 4], dryRun: true });
    expect(actions(dry)).toEqual(['reuse', 'reuse', 'reuse', 'run', 'run', 'run']);
    expect(dry.newNodes).toEqual([5]);
    expect(dry.nodes[4]?.reason).toBe('another electron ran at this position (total)');
    expect(dry.nodes[3]?.reason).toBe('another electron ran at this position (hold)');
    // Reuse points at the node that produced the result, not at the reuse of it.
    expect(dry.nodes[0]?.from).toEqual({ dispatchId: first, nodeId: 0 });
    const plan = await h.client.redispatch(second, { args: [dir, 4] });
    const result = await h.client.getResult<number>(plan.dispatchId, { wait: true, timeoutMs: LONG });
    expect(result.result).toBe(0 + 1 + 4 + 9 + 100);
    expect(lines(join(dir, 'ran.log')).slice(before.length).sort()).toEqual(['hold', 'total', 'work 3']);
  }, TEST_MS);

  it('replaceElectrons swaps one electron: only that node reruns', async () => {
    const before = lines(join(dir, 'ran.log'));
    const plan = await h.client.redispatch(second, { replaceElectrons: { total: totalTwice } });
    expect(ranNodes(plan)).toEqual([4]);
    const result = await h.client.getResult<number>(plan.dispatchId, { wait: true, timeoutMs: LONG });
    expect(result.status).toBe('COMPLETED');
    expect(result.result).toBe(2 * 105);
    expect(lines(join(dir, 'ran.log')).slice(before.length)).toEqual(['totalTwice']);
  }, TEST_MS);

  it('reuse: false reruns everything', async () => {
    const plan = await h.client.redispatch(second, { reuse: false, dryRun: true });
    expect(actions(plan)).toEqual(['run', 'run', 'run', 'run', 'run']);
  }, TEST_MS);
});

describe('bad redispatch requests', () => {
  it('are refused with a clear error and write nothing', async () => {
    const dir = await freshDir('bad');
    writeFileSync(join(dir, 'release'), '');
    const id = await h.client.dispatch(wide)(dir, 1);
    await h.client.getResult(id, { wait: true, timeoutMs: LONG });
    const count = (await h.client.listDispatches({ limit: 100 })).length;
    await expect(h.client.redispatch(id, { replaceElectrons: { nowhere: totalTwice } })).rejects.toThrow(/no node of lattice "redispatch-wide" runs an electron named "nowhere"/);
    await expect(h.client.redispatch(id, { replaceElectrons: { total: (() => 1) as never } })).rejects.toBeInstanceOf(RedispatchError);
    await expect(h.client.redispatch(id, { args: [dir] })).rejects.toThrow(/takes 2 argument\(s\), got 1/);
    await expect(h.client.redispatch('no-such-dispatch')).rejects.toThrow(/no-such-dispatch/);
    expect((await h.client.listDispatches({ limit: 100 })).length).toBe(count);
  }, TEST_MS);
});

describe('an electron edited and redeployed', () => {
  it('reruns with its descendants only; the dry run said so first', async () => {
    const dir = await freshDir('edit');
    const module = (await import(modulePath)) as { edited: Lattice<[string], number> };
    const id = await h.client.dispatch(module.edited)(dir);
    expect((await h.client.getResult<number>(id, { wait: true, timeoutMs: LONG })).result).toBe(2 * 3 + 5);
    expect(lines(join(dir, 'edit.log')).sort()).toEqual(['base', 'other', 'report', 'scale']);

    // Nothing changed yet: everything would be reused.
    expect(actions(await h.client.redispatch(id, { dryRun: true }))).toEqual(['reuse', 'reuse', 'reuse', 'reuse']);

    writeFileSync(modulePath, editedModule(4));
    await deployWorkflows(h.cloud, modulePath, { sweeper: false });
    const dry = await h.client.redispatch(id, { dryRun: true });
    // Nodes: 0 base, 1 scale (edited), 2 other, 3 report (below scale).
    expect(actions(dry)).toEqual(['reuse', 'run', 'reuse', 'run']);
    expect(dry.nodes[1]?.reason).toBe('the electron changed (its source, name, executor options, retries or timeout)');
    expect(dry.nodes[3]?.reason).toBe('parent 1 runs again');
    expect(lines(join(dir, 'edit.log'))).toHaveLength(4);

    const plan = await h.client.redispatch(id);
    const result = await h.client.getResult<number>(plan.dispatchId, { wait: true, timeoutMs: LONG });
    expect(result.result).toBe(2 * 4 + 5);
    expect(lines(join(dir, 'edit.log')).slice(4).sort()).toEqual(['report', 'scale']);
    const items = await (await connectCtx()).store.listNodes(plan.dispatchId);
    expect(items.map((n) => n.reusedFrom !== undefined)).toEqual([true, false, true, false]);
    expect(items[1]?.reuseRefused).toBe(dry.nodes[1]?.reason);
  }, TEST_MS);
});

describe('valence redispatch', () => {
  it('prints the dry-run plan and starts a redispatch, as separate processes', async () => {
    const dir = await freshDir('cli');
    const first = await cancelledWide(dir);
    writeFileSync(join(dir, 'release'), '');
    const endpoint = ['--endpoint', h.cloud.endpoint];
    const env = { ...process.env, AWS_ACCESS_KEY_ID: h.cloud.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: h.cloud.credentials.secretAccessKey, AWS_REGION: h.cloud.region };
    const before = lines(join(dir, 'ran.log'));
    const dry = await runCli(['redispatch', first, '--dry-run', ...endpoint], { env, timeoutMs: LONG });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`dry run of a redispatch of ${first} (redispatch-wide): 3 reused, 2 to run; nothing ran`);
    expect(dry.stdout).toMatch(/\s3\s+hold\s+run\s+it ended CANCELLED/);
    expect(lines(join(dir, 'ran.log'))).toEqual(before);

    const run = await runCli(['redispatch', first, '--json', ...endpoint], { env, timeoutMs: LONG });
    expect(run.code, run.stderr).toBe(0);
    const plan = JSON.parse(run.stdout) as RedispatchPlan;
    const result = await h.client.getResult<number>(plan.dispatchId, { wait: true, timeoutMs: LONG });
    expect(result.result).toBe(105);
    expect(lines(join(dir, 'ran.log')).slice(before.length)).toEqual(['hold', 'total']);

    const bad = await runCli(['redispatch', first, '--args', '{"not": "an array"}', ...endpoint], { env, timeoutMs: LONG });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--args must be a JSON array');
  }, TEST_MS);
});

let ctx: RuntimeContext | undefined;
/** A runtime context on the same stack, to read node items as the runtime wrote them. */
async function connectCtx(): Promise<RuntimeContext> {
  ctx ??= runtimeContextFrom(runtimeConfigFromOutputs(await h.client.outputs(), 'valence'), createAwsClients({ endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials }));
  return ctx;
}
afterAll(() => ctx?.aws.destroy());
