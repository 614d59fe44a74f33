/**
 * Content addresses of node results, for redispatch: a completed node's result may be reused
 * by a later dispatch only when all three of these match what produced it.
 *
 * - **identity** — the electron as the deployed runtime sees it: its source text
 *   (`fn.toString()` of the code the step handler loaded), its name, its executor (kind and
 *   options), its retries and its timeout. Computed by the runtime, never by the client: a
 *   client's loader (vitest, tsx, a bundler) prints the same function differently, and only the
 *   deployed code decides what would run. Any edit of the deployed source changes it.
 * - **inputHash** — the node's resolved inputs: its argument templates with every parameter
 *   replaced by the argument's value and every parent reference by that parent's output hash
 *   (and the path read from it). Equal hashes mean equal inputs; unequal hashes may still be
 *   equal inputs (two outputs whose read parts agree), which only costs a rerun.
 * - **outputHash** — SHA-256 of the output's serialized text, recorded where the output is stored.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { stringify as stringifyDevalue } from 'devalue';
import { canonicalJson, resolveArgTemplate, type ArgTemplate, type GraphNode } from '../model/graph.ts';

/** The content address of one node run: what produced its result. */
export interface NodeContent {
  /** {@link electronIdentity} of the deployed electron. */
  readonly identity: string;
  /** {@link inputHashOf} its resolved inputs. */
  readonly inputHash: string;
}

/** A node of an earlier dispatch whose stored result a node of a redispatch stands for. */
export interface NodeAddress {
  readonly dispatchId: string;
  readonly nodeId: number;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The electron's identity: source text, name, executor options, retries and timeout. */
export function electronIdentity(node: GraphNode, source: string): string {
  return sha256(
    canonicalJson({
      kind: node.kind,
      electron: node.electron,
      name: node.name,
      source,
      executor: node.executor,
      retries: node.retries,
      timeoutSeconds: node.timeoutSeconds ?? null,
    }),
  );
}

/** The hash of a serialized output (as stored inline or in S3). */
export function outputHashOf(serializedOutput: string): string {
  return sha256(serializedOutput);
}

/**
 * The hash of a node's resolved inputs, or `undefined` when a parent's output hash is not
 * known (it did not complete, or it ended where no hash was recorded).
 */
export function inputHashOf(
  args: readonly ArgTemplate[],
  params: readonly unknown[] | undefined,
  outputHash: (nodeId: number) => string | undefined,
): string | undefined {
  let missing = false;
  const normalized = args.map((arg) =>
    normalize(arg, params, (id) => {
      const hash = outputHash(id);
      if (hash === undefined) missing = true;
      return hash ?? '';
    }),
  );
  return missing ? undefined : sha256(canonicalJson(normalized));
}

/**
 * One form per input value whatever way the template was built: a subtree without node
 * references becomes one constant of its value (so `{ $param: 0 }` with 3, `{ $const: "[3]" }`
 * and an array of constants read the same), a node reference becomes its parent's output hash.
 */
function normalize(template: ArgTemplate, params: readonly unknown[] | undefined, outputHash: (id: number) => string): unknown {
  if (!hasNodeRef(template)) {
    return { $value: stringifyDevalue(resolveArgTemplate(template, { node: () => undefined, param: (index) => params?.[index] })) };
  }
  if (Array.isArray(template)) return template.map((item: ArgTemplate) => normalize(item, params, outputHash));
  const record = template as Readonly<Record<string, unknown>>;
  if ('$node' in record) return { $output: outputHash(record['$node'] as number), $path: record['$path'] ?? [] };
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) result[key] = normalize(item as ArgTemplate, params, outputHash);
  return result;
}

function hasNodeRef(template: unknown): boolean {
  if (Array.isArray(template)) return template.some((item) => hasNodeRef(item));
  if (template === null || typeof template !== 'object') return false;
  const record = template as Readonly<Record<string, unknown>>;
  if ('$node' in record) return true;
  const keys = Object.keys(record);
  if (keys.length === 1 && (keys[0] === '$param' || keys[0] === '$const')) return false;
  return Object.values(record).some((item) => hasNodeRef(item));
}
