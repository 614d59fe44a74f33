/**
 * Graphviz DOT for transport graphs, for `valence graph`-style inspection.
 *
 * @module
 */
import { TransportGraph } from '../model/graph.ts';
import type { TransportGraphJSON } from '../model/graph.ts';

function quote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/**
 * Render `graph` as a Graphviz `digraph`: one box per node labelled with its id, name and
 * executor (sublattice nodes as 3-D boxes), one arrow per edge labelled with the argument
 * position it feeds.
 *
 * @example
 * ```ts
 * writeFileSync('research.dot', toDot(research.template())); // dot -Tsvg research.dot
 * ```
 */
export function toDot(graph: TransportGraph | TransportGraphJSON): string {
  const json = graph instanceof TransportGraph ? graph.toJSON() : graph;
  const lines = [
    `digraph ${quote(json.lattice.name)} {`,
    '  rankdir=TB;',
    '  node [shape=box, style=rounded, fontname="Helvetica"];',
    '  edge [fontname="Helvetica", fontsize=10];',
  ];
  for (const node of json.nodes) {
    const runsOn = node.kind === 'sublattice' ? `sublattice ${node.sublattice ?? ''}` : node.executor.name;
    const shape = node.kind === 'sublattice' ? ', shape=box3d, style=solid' : '';
    lines.push(`  n${node.id} [label=${quote(`${node.id}: ${node.name}\n(${runsOn})`)}${shape}];`);
  }
  for (const edge of json.edges) {
    lines.push(`  n${edge.from} -> n${edge.to} [label=${quote(String(edge.arg))}];`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
