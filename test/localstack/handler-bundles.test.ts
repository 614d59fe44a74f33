// The local cloud runs each handler as one esbuild bundle. The bundle renames top-level
// functions whose names collide across modules; electrons named by their function must still
// be found under the name the deploy compiled.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { addOne, timesTen } from './fixtures/same-names/workflows.ts';

const WORKFLOWS = fileURLToPath(new URL('./fixtures/same-names/workflows.ts', import.meta.url));
let h: RuntimeHarness;

beforeAll(async () => {
  h = await startHarness({}, WORKFLOWS);
});
afterAll(async () => h?.close());

describe('bundled handlers', () => {
  it('find electrons named by functions of the same name in two modules', async () => {
    // Prepare
    const runs = await Promise.all([h.client.dispatch(addOne)(4), h.client.dispatch(timesTen)(4)]);

    // Act
    const results = await Promise.all(runs.map((run) => h.client.getResult<number>(run.id, { wait: true, timeoutMs: 60_000 })));

    // Assess
    expect(results.map((r) => [r.status, r.result])).toEqual([
      ['COMPLETED', 5],
      ['COMPLETED', 40],
    ]);
    expect(results.map((r) => r.nodes.map((n) => n.name))).toEqual([['step'], ['step']]);
  });
});
