/**
 * The lattices a workflows module exports: each deployed lattice is one state machine.
 */
import { Lattice } from '../../sdk/index.ts';
import { LatticeShape, deployShape, templateOrUndefined } from '../../sdk/model/shape.ts';
import { DriverKind, driverKindOf } from '../../sdk/runtime/drivers/kinds.ts';

/** One exported lattice, with the export that named it first (for error messages). */
export interface ExportedLattice {
  /** The lattice's name: the state machine is `{stackName}-{name}`. */
  readonly name: string;
  readonly exportName: string;
  readonly lattice: Lattice;
  /** `argument`: the body uses a parameter as a value, so there is no state machine; dispatches run on the graph runner. */
  readonly shape: LatticeShape;
}

/**
 * Every distinct lattice among the module's exports, in export order with `default` last (a
 * lattice exported twice, e.g. named and default, is deployed once).
 */
export function latticesOf(exports: Readonly<Record<string, unknown>>): ExportedLattice[] {
  const found = new Map<Lattice, ExportedLattice>();
  const names = Object.keys(exports).sort((a, b) => Number(a === 'default') - Number(b === 'default'));
  for (const exportName of names) {
    const value = exports[exportName];
    if (!(value instanceof Lattice)) continue;
    // instanceof narrows to Lattice<any, any>; every lattice is a Lattice (its defaults) here.
    const lattice = value as Lattice;
    if (!found.has(lattice)) found.set(lattice, { name: lattice.name, exportName, lattice, shape: deployShape(lattice) });
  }
  return [...found.values()];
}

/**
 * Job queues and job definitions that `BatchExecutor` nodes of the lattices name (names or
 * ARNs). The step handler may submit to them and their state changes must reach the
 * completion handler, so infra grants and routes them along with its own queue.
 */
export function batchTargetsOf(lattices: readonly ExportedLattice[]): { readonly jobQueues: string[]; readonly jobDefinitions: string[] } {
  const jobQueues = new Set<string>();
  const jobDefinitions = new Set<string>();
  for (const { lattice } of lattices) {
    // An argument-shaped lattice's nodes are known only at dispatch; its queues must be granted by name elsewhere.
    for (const node of templateOrUndefined(lattice)?.nodes ?? []) {
      if (driverKindOf(node) !== DriverKind.Batch) continue;
      const { jobQueue, jobDefinition } = node.executor.options as { jobQueue?: unknown; jobDefinition?: unknown };
      if (typeof jobQueue === 'string' && jobQueue !== '') jobQueues.add(jobQueue);
      if (typeof jobDefinition === 'string' && jobDefinition !== '') jobDefinitions.add(jobDefinition);
    }
  }
  return { jobQueues: [...jobQueues].sort(), jobDefinitions: [...jobDefinitions].sort() };
}
