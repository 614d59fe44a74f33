#!/usr/bin/env node
// `npm test`: the static checks (type check and lint) and the test suite, at once.
//
// The suite is CPU-bound on two cores but not busy all the time: its integration tests wait
// on timers, processes and heartbeats. The static checks (about 45 s of CPU, one program for both) run at
// the lowest priority (nice 19), so they take only the CPU the suite leaves idle and do not
// slow the timing-sensitive tests; run one after the other, the two took about a minute longer.
// The static checks' output is printed whole after the suite's, so the two never interleave.
// The exit code is non-zero if either failed.
import { spawn } from 'node:child_process';
import { constants, setPriority } from 'node:os';

/** Runs `command` with inherited or buffered output; resolves with its exit code and output. */
function start(command, args, { buffer, nice }) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: buffer ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    if (nice !== undefined) {
      try {
        setPriority(child.pid, nice);
      } catch {
        // Not permitted here: it runs at normal priority, which is only slower.
      }
    }
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    child.on('error', (e) => resolve({ code: 1, output: `${output}${e.message}\n` }));
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

const started = Date.now();
// niceness is inherited by the children the checks start (npm, tsc, eslint).
const staticChecks = start(process.execPath, ['scripts/static-checks.mjs'], { buffer: true, nice: constants.priority.PRIORITY_LOW });
const suite = await start('npm', ['run', '-s', 'test:unit'], { buffer: false });
const checks = await staticChecks;
if (checks.output.trim() !== '') process.stdout.write(checks.output.endsWith('\n') ? checks.output : `${checks.output}\n`);
console.log(`static checks: ${checks.code === 0 ? 'ok' : `failed (exit ${checks.code})`}; test suite: ${suite.code === 0 ? 'ok' : `failed (exit ${suite.code})`}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
process.exit(checks.code !== 0 || suite.code !== 0 ? 1 : 0);
