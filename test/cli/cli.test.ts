// The `valence` command, driven as a separate process against a local cloud started here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';
import { WORKFLOWS, expectInputError, freePort, json, runCli, type CliRun, type StatusJson } from './helpers.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let cloud: LocalCloud;
let endpoint: string[];
const W = ['--workflows', WORKFLOWS];

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0, workflows: WORKFLOWS });
  endpoint = ['--endpoint', cloud.endpoint];
});
afterAll(async () => {
  await cloud?.stop();
});

describe('valence dispatch / result / status / list', () => {
  it('dispatches with JSON arguments, prints the id, and result prints the value (exit 0)', async () => {
    const dispatched = await runCli(['dispatch', 'arith', '20', ...W, ...endpoint]);
    expect(dispatched.code, dispatched.stderr).toBe(0);
    const id = dispatched.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    const result = await runCli(['result', id, ...endpoint]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('42');

    const resultJson = json<{ status: string; result: number; dispatchId: string }>(await runCli(['result', id, '--json', ...endpoint]));
    expect(resultJson).toMatchObject({ dispatchId: id, status: 'COMPLETED', result: 42 });

    const status = json<StatusJson>(await runCli(['status', id, '--json', ...endpoint]));
    expect(status.lattice).toBe('arith');
    expect(status.nodes.map((n) => [n.id, n.name, n.status, n.executor])).toEqual([
      [0, 'add', 'COMPLETED', 'lambda'],
      [1, 'double', 'COMPLETED', 'lambda'],
    ]);

    const text = await runCli(['status', id, ...endpoint]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/arith\s+\S+\s+COMPLETED/);
    expect(text.stdout).toMatch(/\[#+\] 2\/2 tasks done/);
    expect(text.stdout).toMatch(/^\s+1\s+double\s+lambda\s+COMPLETED/m);
    expect(text.stdout).toContain('result: 42');
  });

  it('dispatch --json prints the id as JSON; list shows dispatches newest first, --limit caps them', async () => {
    const first = json<{ dispatchId: string; lattice: string }>(await runCli(['dispatch', 'arith', '1', '--json', ...W, ...endpoint]));
    expect(first.lattice).toBe('arith');
    const second = json<{ dispatchId: string }>(await runCli(['dispatch', 'arith', '2', '--json', ...W, ...endpoint]));
    await runCli(['result', second.dispatchId, ...endpoint]);

    const list = json<{ dispatchId: string; lattice: string; status: string }[]>(await runCli(['list', '--json', ...endpoint]));
    const ids = list.map((d) => d.dispatchId);
    expect(ids).toContain(first.dispatchId);
    expect(ids.indexOf(second.dispatchId)).toBeLessThan(ids.indexOf(first.dispatchId));
    expect(list.find((d) => d.dispatchId === second.dispatchId)).toMatchObject({ lattice: 'arith', status: 'COMPLETED' });

    expect(json<unknown[]>(await runCli(['list', '--limit', '1', '--json', ...endpoint]))).toHaveLength(1);
    const text = await runCli(['list', ...endpoint]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${second.dispatchId}\\s+arith\\s+COMPLETED`, 'm'));
  });

  it('a failed workflow: result and dispatch --watch exit 1 and name the error', async () => {
    const watched = await runCli(['dispatch', 'failing', '1', '--watch', '--interval', '0.2', ...W, ...endpoint]);
    expect(watched.code, watched.stderr).toBe(1);
    expect(watched.stdout).toMatch(/0\s+boom\s+lambda\s+FAILED\s+RangeError: boom: the input was rejected/);
    expect(watched.stdout).toMatch(/failing FAILED after .*0 completed, 1 cancelled \(upstream-failed 1\), 1 failed/);
    const id = /dispatched failing: (\S+)/.exec(watched.stdout)?.[1];
    expect(id).toBeDefined();

    const result = await runCli(['result', id!, ...endpoint]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`dispatch ${id} (failing) ended FAILED: RangeError: Node 0 (boom) failed: boom: the input was rejected`);
    const resultJson = JSON.parse((await runCli(['result', id!, '--json', ...endpoint])).stdout) as { status: string; error: { name: string; message: string } };
    expect(resultJson.status).toBe('FAILED');
    expect(resultJson.error).toMatchObject({ name: 'RangeError', message: expect.stringContaining('boom: the input was rejected') as unknown });
  });

  it('dispatch --watch --json prints the final state with child dispatches nested', async () => {
    const run = await runCli(['dispatch', 'nested', '1', '--watch', '--json', ...W, ...endpoint]);
    expect(run.code, run.stderr).toBe(0);
    const final = JSON.parse(run.stdout) as StatusJson;
    expect(final).toMatchObject({ lattice: 'nested', status: 'COMPLETED', result: 3 });
    const sub = final.nodes.find((n) => n.kind === 'sublattice');
    expect(sub?.child?.status).toBe('COMPLETED');
    expect(sub?.child?.nodes.map((n) => n.name)).toEqual(['wait', 'double']);
  });
});

describe('exit codes for bad input', () => {
  it('each bad input gets one line with the fix and exit code 2', async () => {
    const port = await freePort();
    const cases: [string[], RegExp][] = [
      // An unknown dispatch id, for each command that takes one.
      [['status', 'no-such-dispatch', ...endpoint], /No dispatch with id "no-such-dispatch".*valence list/],
      [['result', 'no-such-dispatch', ...endpoint], /No dispatch with id "no-such-dispatch".*valence list/],
      [['cancel', 'no-such-dispatch', ...endpoint], /No dispatch with id "no-such-dispatch".*valence list/],
      // No local cloud at the endpoint, and no such stack at a live one.
      [['list', '--endpoint', `http://127.0.0.1:${port}`], new RegExp(`Nothing answers at http://127\\.0\\.0\\.1:${port}.*valence local`)],
      [['list', '--stack', 'other', ...endpoint], /No stack named "other".*--stack/],
    ];
    // A few at a time: each is a Node process, and the machine has two cores.
    const runs: CliRun[] = [];
    for (let i = 0; i < cases.length; i += 4) runs.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => runCli(args)))));
    runs.forEach((run, index) => expectInputError(run, cases[index]![1]));
  });
});
