/**
 * Lattice shape: whether the graph a lattice runs can depend on its arguments' values.
 *
 * A lattice body runs with placeholder parameters at deploy (its `template()`). Two things
 * make that template unsafe to run for every dispatch:
 *
 * 1. the body uses a parameter as a value (`range(n)`, `dir + '/x'`, `x.length`): the
 *    placeholder's traps throw `VALIDATION_PLACEHOLDER_AS_VALUE` for a parameter, so the
 *    template cannot even be built;
 * 2. the body tests a parameter's truthiness (`flag ? a(x) : b(x)`, `if (flag)`, `flag && …`):
 *    no Proxy trap sees truthiness (a placeholder object is always truthy), so the template
 *    builds, but it is the graph of the `true` branch only.
 *
 * The rule, sound for both: at dispatch the body is built once more with the real arguments
 * (`build(...args)`, runs no electron) and compared with the template whose parameters are
 * replaced by those arguments (both normalized so a constant container reads the same either
 * way). Equal: the deployed state machine runs exactly this graph (**static**). Different, or
 * no template: the lattice is **argument-shaped** for this dispatch and the real-argument graph
 * runs on the generic graph runner. So a dispatch never runs a graph other than the one its
 * arguments build. Cost: one extra evaluation of the body per dispatch on the client (no
 * electron runs, no I/O) and one canonical-JSON comparison, linear in the graph's size.
 *
 * @module
 */
import { stringify as stringifyDevalue } from 'devalue';
import { ValidationCode, ValidationError } from '../errors.ts';
import { canonicalJson, resolveArgTemplate, type ArgTemplate, type TransportGraph } from './graph.ts';
import type { GraphCallable, Lattice } from './lattice.ts';

/** Whether a lattice compiles to one fixed state machine or is built per dispatch. */
export const LatticeShape = {
  /** The template does not use any parameter as a value: one compiled state machine. */
  Static: 'static',
  /** The body uses a parameter as a value: the graph is built at dispatch from the real arguments. */
  Argument: 'argument',
} as const;
/** {@link LatticeShape} values. */
export type LatticeShape = (typeof LatticeShape)[keyof typeof LatticeShape];

/**
 * The shape detected at deploy, from the placeholder build alone. `static` here means "may run
 * on its compiled state machine"; a body that branches on a parameter's truthiness is only
 * caught by {@link planGraph} at dispatch, which then runs it argument-shaped.
 * Throws what the build throws for any other problem (an electron output used as a value…).
 */
export function deployShape(lattice: Lattice): LatticeShape {
  return templateOrUndefined(lattice) === undefined ? LatticeShape.Argument : LatticeShape.Static;
}

/** The template, or `undefined` when the body uses a parameter (not a node output) as a value. */
export function templateOrUndefined(lattice: Lattice): TransportGraph<GraphCallable> | undefined {
  try {
    return lattice.template();
  } catch (error) {
    if (isParameterAsValue(error)) return undefined;
    throw error;
  }
}

function isParameterAsValue(error: unknown): boolean {
  return error instanceof ValidationError && error.code === ValidationCode.PLACEHOLDER_AS_VALUE && error.nodeId === undefined;
}

/** What a dispatch runs: the deployed template, or the graph built from its arguments. */
export type GraphPlan =
  | { readonly shape: typeof LatticeShape.Static; readonly graph: TransportGraph<GraphCallable> }
  | { readonly shape: typeof LatticeShape.Argument; readonly graph: TransportGraph<GraphCallable>; readonly reason: string };

/** Decides how a dispatch of `lattice` with `args` runs (see the module comment for the rule). */
export function planGraph(lattice: Lattice, args: readonly unknown[]): GraphPlan {
  const template = templateOrUndefined(lattice);
  const built = lattice.build(...args);
  if (template === undefined) return { shape: LatticeShape.Argument, graph: built, reason: 'the body uses a parameter as a value' };
  if (normalizedText(template, args) === normalizedText(built, args)) return { shape: LatticeShape.Static, graph: template };
  return { shape: LatticeShape.Argument, graph: built, reason: 'the graph built from the arguments differs from the deployed template (the body branches on a parameter)' };
}

function normalizedText(graph: TransportGraph, args: readonly unknown[]): string {
  return canonicalJson({
    nodes: graph.nodes.map((node) => ({ ...node, args: node.args.map((arg) => normalize(arg, args)) })),
    edges: [...graph.edges].map((edge) => JSON.stringify([edge.from, edge.to, edge.arg])).sort(),
    output: normalize(graph.output, args),
  });
}

/**
 * One form for a template whatever way it was built: parameters become constants of the real
 * arguments, and any array or object with no node reference inside becomes one constant.
 */
function normalize(template: ArgTemplate, args: readonly unknown[]): ArgTemplate {
  if (!hasNodeRef(template)) {
    const value = resolveArgTemplate(template, {
      node: () => undefined,
      param: (index) => args[index],
    });
    return { $const: stringifyDevalue(value) };
  }
  if (Array.isArray(template)) return template.map((item: ArgTemplate) => normalize(item, args));
  const record = template as Readonly<Record<string, ArgTemplate>>;
  if ('$node' in record) return template;
  const result: Record<string, ArgTemplate> = {};
  for (const [key, item] of Object.entries(record)) result[key] = normalize(item, args);
  return result;
}

function hasNodeRef(template: ArgTemplate): boolean {
  if (Array.isArray(template)) return template.some((item: ArgTemplate) => hasNodeRef(item));
  const record = template as Readonly<Record<string, unknown>>;
  if ('$node' in record) return true;
  const keys = Object.keys(record);
  if (keys.length === 1 && (keys[0] === '$param' || keys[0] === '$const')) return false;
  return Object.values(record).some((item) => hasNodeRef(item as ArgTemplate));
}
