// The live view (`--watch`): redrawn in place under a pseudo-terminal, one line per change in a pipe.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCloud, type LocalCloud } from '../../localstack/index.ts';
import { BIN, WORKFLOWS, cleanEnv, runCli, runCommand, stripAnsi } from './helpers.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let cloud: LocalCloud;

beforeAll(async () => {
  cloud = await startLocalCloud({ port: 0, workflows: WORKFLOWS });
});
afterAll(async () => {
  await cloud?.stop();
});

/** `script` from util-linux gives the command a pseudo-terminal. */
const hasScript = ((): boolean => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** The status of row `path` in a frame or line (after the path: name, executor, status). */
function statusOf(text: string, path: string): string | undefined {
  const escaped = path.replace('/', '\\/');
  return new RegExp(`^\\s+${escaped}\\s+\\S+\\s+\\S+\\s+(NEW_OBJECT|RUNNING|COMPLETED|FAILED|CANCELLED)`, 'm').exec(text)?.[1];
}

describe('the live view', () => {
  it('under a pseudo-terminal, redraws the frame in place until the dispatch ends', async () => {
    expect(hasScript, 'util-linux `script` is needed to give the CLI a terminal').toBe(true);
    const command = [process.execPath, BIN, 'dispatch', 'nested', '2', '--watch', '--interval', '0.2', '--workflows', WORKFLOWS, '--endpoint', cloud.endpoint].join(' ');
    const env = cleanEnv();
    delete env.NO_COLOR;
    const run = await runCommand('script', ['-qfec', command, '/dev/null'], { env, timeoutMs: 60_000 });
    expect(run.code, run.stdout).toBe(0);

    // Every frame after the first moves the cursor up over the previous one and clears below.
    const raw = run.stdout;
    expect(raw).toMatch(/\u001b\[\d+F\u001b\[0J/);
    expect(raw).toContain('\u001b[32mCOMPLETED'); // statuses are colored on a terminal
    const frames = raw.split('\u001b[0J').slice(1).map(stripAnsi);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const frame of frames) expect(frame).toMatch(/^nested\s+[0-9a-f-]{36}\s+(RUNNING|COMPLETED)/);

    // The sublattice's child rows appear, indented under their node, and their statuses change.
    const childStatuses = frames.map((f) => statusOf(f, '1/0')).filter((s): s is string => s !== undefined);
    expect(childStatuses).toContain('RUNNING');
    expect(childStatuses.at(-1)).toBe('COMPLETED');
    expect(childStatuses.indexOf('RUNNING')).toBeLessThan(childStatuses.lastIndexOf('COMPLETED'));
    const last = frames.at(-1)!;
    expect(last).toMatch(/^\s+1\/0\s+ {2}wait\s+lambda\s+COMPLETED/m);
    expect(last).toMatch(/^\s+1\s+inner\s+sublattice\s+COMPLETED\s+\S+\s+child [0-9a-f]{8}/m);
    expect(last).toMatch(/\[#{24}\] 5\/5 tasks done/);
    // A progress bar that was not full in an earlier frame.
    expect(frames.some((f) => /\[#*-+\] [0-4]\/\d tasks done/.test(f))).toBe(true);
    expect(last).toMatch(/nested COMPLETED after \S+: 5 completed, 0 cancelled, 0 failed\s+result: 5/);
  });

  it('in a pipe, prints one line per change, then the summary; a cancelled run exits 1', async () => {
    const id = (await runCli(['dispatch', 'slow', '30', '--workflows', WORKFLOWS, '--endpoint', cloud.endpoint])).stdout.trim();
    const watching = runCli(['status', id, '--watch', '--interval', '0.2', '--endpoint', cloud.endpoint]);
    // Cancel once the long task runs; the view must show it.
    for (let i = 0; i < 200; i++) {
      const status = JSON.parse((await runCli(['status', id, '--json', '--endpoint', cloud.endpoint])).stdout) as { nodes: { status: string }[] };
      if (status.nodes[0]?.status === 'RUNNING') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const cancelled = await runCli(['cancel', id, '--task', '0', '--endpoint', cloud.endpoint]);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    const run = await watching;
    expect(run.code).toBe(1);
    expect(run.stdout).not.toContain('\u001b[');

    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^\\+\\s*\\S+\\s+slow ${id} RUNNING$`));
    const waitLines = lines.filter((l) => /^\+\s*\S+\s+0\s+wait\s/.test(l));
    expect(waitLines.map((l) => statusOf(l.replace(/^\+\s*\S+/, ''), '0'))).toEqual(['RUNNING', 'CANCELLED']);
    expect(waitLines[1]).toContain('by signal');
    expect(lines.filter((l) => /^\+\s*\S+\s+1\s+double\s/.test(l))).toEqual([expect.stringMatching(/CANCELLED\s+by (not-started|upstream-cancelled)$/)]);
    // No line repeats: each is a change.
    const bodies = lines.map((l) => l.replace(/^\+\s*\S+\s+/, ''));
    expect(new Set(bodies).size).toBe(bodies.length);
    expect(lines.at(-2)).toMatch(new RegExp(`slow ${id} CANCELLED$`));
    expect(lines.at(-1)).toMatch(/^slow CANCELLED after \S+: 1 completed, 2 cancelled \(signal 1, (not-started|upstream-cancelled) 1\), 0 failed$/);
  });
});
