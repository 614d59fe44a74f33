/**
 * `valence redispatch ID`: run a dispatch again, reusing what completed (see
 * sdk/client/redispatch.ts), or with `--dry-run` only print what would rerun and what would
 * be reused.
 */
import type { ValenceClient } from '../../client/index.ts';
import type { PlannedNode, RedispatchOptions, RedispatchPlan } from '../../client/redispatch.ts';
import type { Lattice } from '../../model/lattice.ts';
import { CliUsageError, ExitCode } from '../errors.ts';

/** Parsed flag values, as `node:util` parseArgs gives them. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** What the command borrows from the CLI's main module. */
export interface RedispatchCommandDeps {
  readonly withClient: <T>(values: FlagValues, use: (client: ValenceClient) => Promise<T>) => Promise<T>;
  readonly findLattice: (values: FlagValues, name: string) => Promise<Lattice>;
  readonly print: (text: string) => void;
}

/** The command's usage text. */
export const REDISPATCH_USAGE = `Usage: valence redispatch ID [--args JSON] [--dry-run] [--no-reuse] [--workflows FILE]

Starts a new dispatch of the lattice dispatch ID ran, linked to it, and prints its id. Nodes
whose earlier result matches (same deployed electron source, name, executor options, retries
and timeout, same inputs) are not run again; cancelled, failed and never-started nodes rerun,
and so does everything downstream of them.
  --args JSON      new lattice arguments, as one JSON array ('["data", 5]'); needs the
                   workflows module that defines the lattice
  --dry-run        print, per task, whether it would be reused (and from where) or run (and
                   why); runs nothing
  --no-reuse       rerun every task
  --workflows FILE module exporting the lattice (default: $VALENCE_WORKFLOWS); with it, the
                   graph is built from the module's lattice instead of the old dispatch's graph`;

/** Runs `valence redispatch`. */
export async function runRedispatch(
  deps: RedispatchCommandDeps,
  args: { readonly positionals: readonly string[]; readonly values: FlagValues },
): Promise<number> {
  const [dispatchId, ...extra] = args.positionals;
  if (dispatchId === undefined) throw new CliUsageError('redispatch needs a dispatch ID; see valence redispatch --help');
  if (extra.length > 0) throw new CliUsageError(`redispatch takes one dispatch ID, got also ${extra.map((e) => JSON.stringify(e)).join(' ')}`);
  const newArgs = args.values['args'] === undefined ? undefined : parseArgsJson(args.values['args'] as string);
  return deps.withClient(args.values, async (client) => {
    let lattice: Lattice | undefined;
    if (newArgs !== undefined || args.values['workflows'] !== undefined) {
      const old = await client.getResult(dispatchId);
      lattice = await deps.findLattice(args.values, old.lattice);
    }
    const options: RedispatchOptions = {
      ...(newArgs === undefined ? {} : { args: newArgs }),
      ...(lattice === undefined ? {} : { lattice }),
      ...(args.values['no-reuse'] ? { reuse: false } : {}),
      ...(args.values['dry-run'] ? { dryRun: true } : {}),
    };
    const plan = await client.redispatch(dispatchId, options);
    deps.print(args.values['json'] ? JSON.stringify(plan, null, 2) : renderPlan(plan).join('\n'));
    return ExitCode.Ok;
  });
}

function parseArgsJson(text: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliUsageError(`--args ${JSON.stringify(text)} is not valid JSON: ${(error as Error).message}. Pass one JSON array, e.g. --args '["data", 5]'`);
  }
  if (!Array.isArray(value)) throw new CliUsageError(`--args must be a JSON array of the lattice's arguments, got ${JSON.stringify(value)}`);
  return value;
}

/** The plan as lines: a header, then one line per task. */
export function renderPlan(plan: RedispatchPlan): string[] {
  const reused = plan.nodes.filter((n) => n.action === 'reuse').length;
  const header = plan.dryRun
    ? `dry run of a redispatch of ${plan.redispatchOf} (${plan.lattice}): ${reused} reused, ${plan.nodes.length - reused} to run; nothing ran`
    : `redispatched ${plan.lattice}: ${plan.dispatchId} (${reused} reused, ${plan.nodes.length - reused} to run)`;
  const width = Math.max(4, ...plan.nodes.map((n) => n.name.length));
  const line = (n: PlannedNode): string => `  ${String(n.nodeId).padStart(3)}  ${n.name.padEnd(width)}  ${n.action.padEnd(5)}  ${n.isNew ? 'new; ' : ''}${n.reason}`;
  return [header, ...plan.nodes.map(line)];
}
