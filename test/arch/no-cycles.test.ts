// No module of sdk/, lambdas/, infra/ or localstack/ imports itself in a circle, counting
// type-only and dynamic imports too (a type cycle is still a design cycle). madge resolves the
// `.ts` specifiers through the project's tsconfig, offline.
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const FOLDERS = ['sdk', 'lambdas', 'infra', 'localstack'] as const;

async function importGraph(folders: readonly string[]): Promise<madge.MadgeInstance> {
  return madge([...folders], {
    baseDir: ROOT,
    fileExtensions: ['ts', 'mjs'],
    tsConfig: `${ROOT}tsconfig.json`,
    detectiveOptions: { ts: { skipTypeImports: false, skipAsyncImports: false }, es6: { skipTypeImports: false } },
  });
}

describe('the import graph', () => {
  it('has no cycle in sdk/, lambdas/, infra/ or localstack/', async () => {
    const graph = await importGraph(FOLDERS);
    // Resolution works: the runtime's modules are found with their imports (a graph of
    // unresolved files would have no cycle to find).
    expect(graph.obj()['sdk/runtime/cancel.ts']).toEqual(expect.arrayContaining(['sdk/runtime/completion.ts', 'sdk/runtime/drivers/index.ts']));
    // Only package imports may go unresolved (packages are outside the graph).
    expect(graph.warnings().skipped.filter((specifier) => specifier.startsWith('.') || specifier.startsWith('/'))).toEqual([]);
    expect(graph.circular().map((cycle) => cycle.join(' -> '))).toEqual([]);
  }, 120_000);

  it('finds a cycle of type-only imports (control)', async () => {
    const graph = await importGraph(['test/arch/fixtures/cycle']);
    expect(graph.circular()).toEqual([['test/arch/fixtures/cycle/a.ts', 'test/arch/fixtures/cycle/b.ts']]);
  }, 60_000);
});
