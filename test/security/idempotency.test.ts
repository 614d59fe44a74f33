// taskContext().idempotencyKey: the same for two attempts of one node, different for other
// nodes and dispatches. Observed on the local cloud through the idempotency example, whose
// electron charges, then fails its first attempt and is retried.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';
import { order } from '../../examples/idempotency.ts';
import { idempotencyKeyOf, runWithTaskContext, taskContext } from '../../sdk/model/context.ts';

const EXAMPLE = new URL('../../examples/idempotency.ts', import.meta.url).pathname;
let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness({}, EXAMPLE);
}, 60_000);
afterAll(async () => h?.close());

describe('taskContext().idempotencyKey', () => {
  it('is derived from dispatch and node only', () => {
    const read = (dispatchId: string, nodeId: number, attempt: number) =>
      runWithTaskContext({ dispatchId, nodeId, attempt, signal: new AbortController().signal }, () => taskContext().idempotencyKey);
    expect(read('d1', 1, 1)).toBe(read('d1', 1, 2));
    expect(read('d1', 1, 1)).not.toBe(read('d1', 2, 1));
    expect(read('d1', 1, 1)).not.toBe(read('d2', 1, 1));
    expect(read('d1', 1, 1)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('lets a retried electron charge once: two attempts of a node share a key, nodes and dispatches do not', async () => {
    const keysOf = async (ledger: string) => {
      const result = await h.client.getResult((await h.client.dispatch(order)(ledger)).id, { wait: true, timeoutMs: 120_000 });
      expect(result.status).toBe('COMPLETED');
      expect(result.result).toEqual([{ customer: 'ada', cents: 500 }, { customer: 'grace', cents: 700 }]);
      const lines = readFileSync(join(ledger, 'attempts.log'), 'utf8').trim().split('\n').map((l) => l.split(' '));
      const byCustomer = (c: string) => lines.filter((l) => l[0] === c);
      // Each node ran twice (attempts 1 and 2) with one key.
      for (const c of ['ada', 'grace']) {
        expect(byCustomer(c).map((l) => l[1]).sort()).toEqual(['1', '2']);
        expect(new Set(byCustomer(c).map((l) => l[2])).size).toBe(1);
      }
      // …and charged once each.
      expect(readdirSync(ledger).filter((f) => f.endsWith('.charge'))).toHaveLength(2);
      return { id: result.dispatchId, ada: byCustomer('ada')[0]![2]!, grace: byCustomer('grace')[0]![2]! };
    };
    const first = await keysOf(join(h.dir, 'ledger-1'));
    const second = await keysOf(join(h.dir, 'ledger-2'));
    expect(first.ada).not.toBe(first.grace);
    expect(first.ada).not.toBe(second.ada);
    expect(first.ada).toBe(idempotencyKeyOf(first.id, 0));
  }, 240_000);
});
