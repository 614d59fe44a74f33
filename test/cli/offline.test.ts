// Commands that need no stack: help, and a lattice's graph in its three forms.
import { describe, expect, it } from 'vitest';
import { WORKFLOWS, json, runCli } from './helpers.ts';

const W = ['--workflows', WORKFLOWS];

describe('valence graph', () => {
  it('prints the graph as text, JSON, Graphviz and the compiled state machine, with no stack running', async () => {
    const text = await runCli(['graph', 'slow', ...W]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^slow: 3 nodes/);
    expect(text.stdout).toMatch(/1\s+double\s+lambda\s+<- 0/);

    const graph = json<{ nodes: { id: number; name: string }[]; edges: unknown[] }>(await runCli(['graph', 'slow', '--json', ...W]));
    expect(graph.nodes.map((n) => n.name)).toEqual(['wait', 'double', 'add']);

    const dot = await runCli(['graph', 'nested', '--dot', ...W]);
    expect(dot.stdout).toMatch(/^digraph "nested" \{/);
    expect(dot.stdout).toContain('n0 -> n1');

    const asl = json<{ StartAt: string; States: Record<string, { Type: string; Resource?: string }> }>(await runCli(['graph', 'arith', '--asl', ...W]));
    expect(asl.States[asl.StartAt]).toBeDefined();
    expect(JSON.stringify(asl)).toContain('arn:aws:lambda:us-east-1:000000000000:function:valence-step');
  });
});

describe('help', () => {
  it('--help prints usage and exits 0; no command prints usage and exits 2', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['local', 'dispatch', 'status', 'result', 'list', 'cancel', 'graph']) expect(help.stdout).toContain(`  ${command} `);
    const cancelHelp = await runCli(['cancel', '--help']);
    expect(cancelHelp.code).toBe(0);
    expect(cancelHelp.stdout).toContain('--task N');
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: valence <command>');
  });
});
