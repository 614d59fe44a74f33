// Commands and mistakes that need no stack: help, a lattice's graph in its three forms, and
// bad input caught before anything is contacted.
import { describe, expect, it } from 'vitest';
import { compileLattice } from '../../sdk/compiler/index.ts';
import { validateAsl } from '../sdk/compiler/harness.ts';
import { arith } from './fixtures/workflows.ts';
import { WORKFLOWS, expectInputError, json, runCli, type CliRun } from './helpers.ts';

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
    // Exactly what the compiler makes of that lattice for the default stack, and a valid state machine.
    const stepHandlerArn = 'arn:aws:lambda:us-east-1:000000000000:function:valence-step';
    expect(asl).toEqual(JSON.parse(JSON.stringify(compileLattice(arith, { stepHandlerArn }).definition)));
    expect(validateAsl(asl).errors).toEqual([]);
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

describe('bad input caught before any request', () => {
  it('gets one line with the fix and exit code 2', async () => {
    // No cloud listens here, and none is needed: these fail before the first request.
    const endpoint = ['--endpoint', 'http://127.0.0.1:9'];
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['cancel', 'x', '--task', 'two'], /--task "two" is not a task id/],
      [['status'], /status needs a dispatch ID/],
      [['graph', 'arith', '--workflows', 'no/such/file.ts'], /workflows module .*no\/such\/file\.ts does not exist/],
      [['graph', 'arith', '--asl', '--dot', ...W], /--asl or --dot, not both/],
      [['list', '--endpoint', 'not a url'], /is not a URL/],
      [['dispatch', 'nope', '1', ...W], /unknown lattice "nope" in .*available: arith, failing, inner, nested, slow/],
      [['dispatch', 'arith', '{oops', ...W], /argument 1 \("\{oops"\) is not valid JSON.*Quote strings/],
      [['dispatch', 'arith', '1', '2', ...W], /takes 1 argument\(s\), got 2/],
      [['list', '--bogus', ...endpoint], /Unknown option '--bogus'.*valence list --help/],
    ];
    const runs: CliRun[] = [];
    for (let i = 0; i < cases.length; i += 4) runs.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => runCli(args)))));
    runs.forEach((run, index) => expectInputError(run, cases[index]![1]));
  });
});
