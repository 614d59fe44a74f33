#!/usr/bin/env node
// The type check and the lint, side by side. Each is one single-threaded process that spends
// most of its time building a TypeScript program, so on two cores running them together
// takes about as long as the slower one instead of the sum. Both always run to the end, so
// one run shows every error; the exit code is non-zero if either failed.
import { spawn } from 'node:child_process';

const checks = [
  ['typecheck', 'npm', ['run', '-s', 'typecheck']],
  ['lint', 'npm', ['run', '-s', 'lint']],
];

const results = await Promise.all(
  checks.map(
    ([name, command, args]) =>
      new Promise((resolve) => {
        const started = Date.now();
        const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', (chunk) => (output += chunk));
        child.stderr.on('data', (chunk) => (output += chunk));
        child.on('error', (e) => resolve({ name, code: 1, output: `${output}${e.message}\n`, ms: Date.now() - started }));
        child.on('close', (code) => resolve({ name, code: code ?? 1, output, ms: Date.now() - started }));
      }),
  ),
);

for (const { name, code, output, ms } of results) {
  // Printed whole and in a fixed order, so the two outputs never interleave.
  if (output.trim() !== '') process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
  console.log(`${name}: ${code === 0 ? 'ok' : `failed (exit ${code})`} in ${(ms / 1000).toFixed(1)} s`);
}
process.exit(results.some((r) => r.code !== 0) ? 1 : 0);
