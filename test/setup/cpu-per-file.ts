/**
 * Records the CPU one test file cost, for finding where the suite's CPU goes. Active only
 * when `VALENCE_CPU_LOG` names a file: then, after the file's tests, one JSON line is
 * appended to it with the fork's own CPU (user and system) and that of the child processes
 * it waited for (`cutime`/`cstime` in /proc/self/stat), in seconds, so far. A file of the
 * `isolated` project runs in a fresh fork, so its line is that file's alone, the fork's
 * start-up included; a fork of the `shared` project runs several files one after another,
 * and bench/cpu-per-file.ts takes the differences. Children still running at the end are not
 * counted (the kernel adds a child's time only when it is reaped).
 *
 * Summarize with `node --import tsx bench/cpu-per-file.ts <log>`.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';

const log = process.env['VALENCE_CPU_LOG'];

/** The fork's CPU seconds so far: its own and its reaped children's, from /proc/self/stat. */
function cpuSeconds(): { self: number; children: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = (index: number): number => Number(fields[index - 3]) / 100;
  return { self: tick(14) + tick(15), children: tick(16) + tick(17) };
}

if (log !== undefined && log !== '') {
  let started = 0;
  let file = 'unknown';
  beforeAll(({}, suite) => {
    started = Date.now();
    file = 'filepath' in suite ? suite.filepath : suite.name;
  });
  afterAll(() => {
    const { self, children } = cpuSeconds();
    appendFileSync(log, `${JSON.stringify({ file, self, children, wallMs: Date.now() - started, pid: process.pid })}\n`);
  });
}
