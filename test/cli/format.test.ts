// Pure pieces of the CLI: JSON output, rows of a dispatch tree, the report, fitting a frame
// into a short terminal, and connection defaults.
import { describe, expect, it } from 'vitest';
import { renderReport, toJson, treeRows, type DispatchTree } from '../../sdk/cli/format.ts';
import { connectionOptions } from '../../sdk/cli/main.ts';
import { watchDispatch } from '../../sdk/cli/watch.ts';
import type { DispatchResult, NodeResult } from '../../sdk/runtime/describe.ts';
import { stripAnsi } from './helpers.ts';

const node = (id: number, name: string, status: NodeResult['status'], extra: Partial<NodeResult> = {}): NodeResult => ({
  id,
  name,
  kind: 'electron',
  status,
  executor: 'lambda',
  attempts: 1,
  cancelRequested: false,
  startedAt: '2026-01-01T00:00:00.000Z',
  endedAt: '2026-01-01T00:00:01.500Z',
  ...extra,
});
/** The node without its start and end times: it never started. */
const unstarted = (n: NodeResult): NodeResult => {
  const { startedAt: _startedAt, endedAt: _endedAt, ...rest } = n;
  return rest;
};

const dispatch = (nodes: NodeResult[], status: DispatchResult['status'] = 'CANCELLED'): DispatchResult => ({
  dispatchId: 'd-1',
  lattice: 'pipeline',
  status,
  result: undefined,
  error: undefined,
  startedAt: '2026-01-01T00:00:00.000Z',
  endedAt: '2026-01-01T00:00:05.000Z',
  cancelRequests: [],
  nodes,
});

describe('toJson', () => {
  it('keeps the values valence serializes readable as JSON', () => {
    const error = Object.assign(new RangeError('too big'), { code: 'E_BIG' });
    const text = toJson({ n: 10n, m: new Map([['a', 1]]), k: new Map([[1, 'x']]), s: new Set([1, 2]), t: new Uint8Array([7, 8]), d: new Date(0), error }, 0);
    expect(JSON.parse(text)).toEqual({
      n: '10',
      m: { a: 1 },
      k: [[1, 'x']],
      s: [1, 2],
      t: [7, 8],
      d: '1970-01-01T00:00:00.000Z',
      error: { name: 'RangeError', message: 'too big', code: 'E_BIG' },
    });
    expect(toJson(undefined)).toBe('null');
  });
});

describe('treeRows and renderReport', () => {
  const child: DispatchTree = {
    result: dispatch([node(0, 'simulate', 'CANCELLED', { cancelledBy: 'signal' }), unstarted(node(1, 'combine', 'CANCELLED', { cancelledBy: 'not-started' }))]),
    children: new Map(),
  };
  const tree: DispatchTree = {
    result: dispatch([
      node(0, 'load', 'COMPLETED'),
      node(1, 'experiments', 'CANCELLED', { kind: 'sublattice', cancelledBy: 'child-dispatch', childDispatchId: 'd-2' }),
      node(2, 'train', 'FAILED', { executor: 'batch', error: { name: 'Error', message: 'out of memory\nstack' } }),
    ]),
    children: new Map([[1, child]]),
  };

  it('lists each sublattice node followed by its children, with paths and depths', () => {
    expect(treeRows(tree).map((r) => [r.path, r.depth, r.runsOn])).toEqual([
      ['0', 0, 'lambda'],
      ['1', 0, 'sublattice'],
      ['1/0', 1, 'lambda'],
      ['1/1', 1, 'lambda'],
      ['2', 0, 'batch'],
    ]);
  });

  it('groups the report by outcome and says how each task was cancelled', () => {
    const report = renderReport(tree).join('\n');
    expect(report).toMatch(/^Completed \(1\):\n\s+0\s+load\s+lambda\s+1\.50s$/m);
    expect(report).toMatch(/^Cancelled \(3\):$/m);
    expect(report).toMatch(/^\s+1\/0\s+simulate\s+lambda\s+signal\s+its AbortSignal fired/m);
    expect(report).toMatch(/^\s+1\/1\s+combine\s+lambda\s+not-started\s+never started/m);
    expect(report).toMatch(/^Failed \(1\):\n\s+2\s+train\s+batch\s+Error: out of memory$/m);
  });
});

describe('the live view on a short terminal', () => {
  it('keeps the frame within the terminal: running and failed rows first, then a count of the rest', async () => {
    const nodes = Array.from({ length: 30 }, (_, i) => node(i, `task${i}`, i === 17 ? 'FAILED' : 'COMPLETED'));
    const written: string[] = [];
    const out = { write: (text: string) => written.push(text), columns: 100, rows: 10 };
    const client = { getResult: () => Promise.resolve(dispatch(nodes, 'FAILED')) } as never;
    await watchDispatch(client, 'd-1', { out, tty: true, color: false, summary: false, intervalMs: 1 });
    const frame = stripAnsi(written.join('')).trimEnd().split('\n');
    expect(frame.length).toBeLessThanOrEqual(9);
    expect(frame.some((line) => /^\s+17\s+task17\s+lambda\s+FAILED/.test(line))).toBe(true);
    expect(frame.at(-1)).toMatch(/… 25 more tasks not shown/);
  });
});

describe('connectionOptions', () => {
  it('gives a loopback endpoint test keys when the environment has none', () => {
    expect(connectionOptions({ endpoint: 'http://127.0.0.1:4566' }, {})).toEqual({
      endpoint: 'http://127.0.0.1:4566',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    expect(connectionOptions({}, { AWS_ENDPOINT_URL: 'http://localhost:4566' }).credentials).toBeDefined();
  });

  it('leaves credentials to the SDK for AWS, remote endpoints, and when keys or a profile are set', () => {
    expect(connectionOptions({}, {})).toEqual({});
    expect(connectionOptions({ endpoint: 'https://example.com' }, {}).credentials).toBeUndefined();
    expect(connectionOptions({ endpoint: 'http://127.0.0.1:4566' }, { AWS_ACCESS_KEY_ID: 'AKIA' }).credentials).toBeUndefined();
    expect(connectionOptions({ endpoint: 'http://127.0.0.1:4566' }, { AWS_PROFILE: 'dev' }).credentials).toBeUndefined();
    expect(connectionOptions({ region: 'eu-west-1', stack: 'mine' }, {})).toEqual({ region: 'eu-west-1', stackName: 'mine' });
  });
});
