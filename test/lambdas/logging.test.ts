// The step handler's log, as the local Lambda writes it: every line is JSON (Powertools
// Logger) and carries the dispatch id, the node id and the attempt.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cleanEnv } from '../cli/helpers.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/logged-run.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function run(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), SCRIPT], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 200_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface LogLine {
  level: string;
  message: string;
  service: string;
  timestamp: string;
  dispatchId: string;
  nodeId: number | 'none';
  attempt: number | 'none';
  action?: string;
}

describe('step handler logging', () => {
  it('writes one JSON object a line with dispatchId, nodeId and attempt on every line', async () => {
    const { code, stdout, stderr } = await run();
    expect(code, stderr.slice(-2000)).toBe(0);
    const marker = /^DISPATCH (.*)$/m.exec(stdout);
    expect(marker, stdout).not.toBeNull();
    const { id, result } = JSON.parse(marker![1]!) as { id: string; result: number };
    expect(result).toBe(16);
    // The local Lambda writes a function's log to stderr (stdout is the host program's output).
    const logLines = stderr.split('\n').filter((line) => line.includes('"service":"valence"'));
    expect(logLines.length).toBeGreaterThanOrEqual(8);
    const parsed = logLines.map((line) => JSON.parse(line) as LogLine);
    // Every line the handlers wrote is JSON with the three keys ('none' where a step has no node).
    for (const line of parsed) {
      expect(line).toHaveProperty('dispatchId');
      expect(line).toHaveProperty('nodeId');
      expect(line).toHaveProperty('attempt');
      expect(line.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/);
    }
    const ours = parsed.filter((line) => line.dispatchId === id);
    // chain is three nodes, each started and ended on its first attempt, then the finalize step.
    for (const nodeId of [0, 1, 2]) {
      const lines = ours.filter((line) => line.nodeId === nodeId);
      expect(lines.map((line) => line.message)).toEqual(['step started', 'step ended']);
      expect(lines.every((line) => line.attempt === 1 && line.level === 'INFO' && line.action === 'run')).toBe(true);
    }
    expect(ours.filter((line) => line.action === 'finalize').map((line) => [line.nodeId, line.attempt])).toEqual([
      ['none', 'none'],
      ['none', 'none'],
    ]);
  }, 240_000);
});
