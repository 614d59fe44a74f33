// The typed run handle beside the id-based functions: run.result() is typed by the lattice's
// return type, run.cancel() and run.status() need no id, and the handle stands in for its id
// in getResult/cancel, template strings and JSON.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { DispatchEndedError, dispatchIdOf, type DispatchRun } from '../../sdk/client/index.ts';
import { ErrorCode } from '../../sdk/errors.ts';
import { beating, chain, failing, nShape } from './fixtures/workflows.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';

const WORKFLOWS = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, WORKFLOWS);
}, 120_000);
afterAll(() => h?.close());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('dispatch handle', () => {
  it('result() resolves with the lattice value, typed by its return type', async () => {
    // Prepare / Act
    const run = await h.client.dispatch(chain)(3);
    const total = await run.result({ timeoutMs: 60_000 });
    // Assess: chain is double(double(add(x, 1))).
    expectTypeOf(run).toEqualTypeOf<DispatchRun<number>>();
    expectTypeOf(run.result).returns.resolves.toEqualTypeOf<number>();
    expectTypeOf(h.client.dispatch(nShape)).returns.resolves.toEqualTypeOf<DispatchRun<{ a: { label: string; start: number; end: number }; b: { label: string; start: number; end: number }; c: { label: string; start: number; end: number }; d: { label: string; start: number; end: number } }>>();
    expect(total).toBe(16);
    expect(run.id).toMatch(UUID);
    expect(run.lattice).toBe('chain');
  }, 90_000);

  it('stands in for its id: getResult, template strings, String() and JSON', async () => {
    const run = await h.client.dispatch(chain)(1);
    const byHandle = await h.client.getResult<number>(run, { wait: true, timeoutMs: 60_000 });
    const byId = await h.client.getResult<number>(run.id);
    expect(byHandle).toMatchObject({ dispatchId: run.id, status: 'COMPLETED', result: 8 });
    expect(byId).toMatchObject({ dispatchId: run.id, status: 'COMPLETED', result: 8 });
    // A template string is what user code writes with ids; the lint rule would steer it to run.id.
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions
    expect(`${run}`).toBe(run.id);
    expect(String(run)).toBe(run.id);
    expect(JSON.parse(JSON.stringify({ run })) as unknown).toEqual({ run: run.id });
    expect(dispatchIdOf(run)).toBe(run.id);
    expect((await run.status()).status).toBe('COMPLETED');
  }, 90_000);

  it('cancel() stops the run: its heartbeat ends, its dependent never starts, and result() rejects', async () => {
    const dir = mkdtempSync(join(h.dir, 'beat-'));
    const beats = (): number => (existsSync(join(dir, 'beat')) ? readFileSync(join(dir, 'beat'), 'utf8').split('\n').length : 0);
    const run = await h.client.dispatch(beating)(dir);
    const deadline = Date.now() + 60_000;
    while (beats() < 3) {
      if (Date.now() > deadline) throw new Error('the long task never started beating');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const report = await run.cancel({ reason: 'handle test' });
    const error: unknown = await run.result({ timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(report.dispatchId).toBe(run.id);
    expect(error).toBeInstanceOf(DispatchEndedError);
    expect(error).toMatchObject({ code: ErrorCode.DISPATCH_ENDED, message: /ended CANCELLED/ });
    // Observed: the heartbeat stopped (no beat in a second), and the dependent never started.
    const stopped = beats();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(beats()).toBe(stopped);
    const ended = await run.status();
    expect(ended.status).toBe('CANCELLED');
    expect(ended.nodes.find((n) => n.id === 0)?.status).toBe('CANCELLED');
    expect(ended.nodes.find((n) => n.id === 1)?.startedAt).toBeUndefined();
  }, 120_000);

  it('result() rejects with the failed node error when the dispatch FAILED', async () => {
    const run = await h.client.dispatch(failing)(h.dir, 2);
    const error: unknown = await run.result({ timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DispatchEndedError);
    expect(error).toMatchObject({ message: /ended FAILED: TypeError: boom/, dispatch: { status: 'FAILED' } });
  }, 90_000);
});
