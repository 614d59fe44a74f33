/**
 * The table of where the suite's CPU goes, from the log test/setup/cpu-per-file.ts writes:
 *
 *   VALENCE_CPU_LOG=/tmp/cpu.jsonl npm test
 *   node --import tsx bench/cpu-per-file.ts /tmp/cpu.jsonl [ROWS]
 *
 * Each line of the log holds a fork's CPU so far; a fork of the `shared` project runs several
 * files, so a file's CPU is what its fork used since the previous file it ran (the first file
 * of a fork also carries the fork's start-up). Prints the top ROWS (default 20) and the total.
 */
import { readFileSync } from 'node:fs';

/** One line of the log. */
interface CpuLine {
  readonly file: string;
  readonly self: number;
  readonly children: number;
  readonly wallMs: number;
  readonly pid: number;
}

const [log, rows = '20'] = process.argv.slice(2);
if (log === undefined) throw new Error('usage: node --import tsx bench/cpu-per-file.ts LOG [ROWS]');
const lines = readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as CpuLine);
const before = new Map<number, { self: number; children: number }>();
const files = lines.map((line) => {
  const previous = before.get(line.pid) ?? { self: 0, children: 0 };
  before.set(line.pid, { self: line.self, children: line.children });
  const self = line.self - previous.self;
  const children = line.children - previous.children;
  return { file: line.file.replace(/^.*?\/(test\/)/, '$1'), self, children, cpu: self + children, wallS: line.wallMs / 1000 };
});
files.sort((a, b) => b.cpu - a.cpu);
const sum = (pick: (f: (typeof files)[number]) => number, of = files): number => of.reduce((total, f) => total + pick(f), 0);
console.log('| # | file | CPU s | own s | children s | wall s |');
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
files.slice(0, Number(rows)).forEach((f, index) => {
  console.log(`| ${index + 1} | ${f.file} | ${f.cpu.toFixed(1)} | ${f.self.toFixed(1)} | ${f.children.toFixed(1)} | ${f.wallS.toFixed(0)} |`);
});
const rest = files.slice(Number(rows));
console.log(`| | the other ${rest.length} files | ${sum((f) => f.cpu, rest).toFixed(1)} | | | |`);
console.log(`| | all ${files.length} files, ${before.size} forks | ${sum((f) => f.cpu).toFixed(1)} | ${sum((f) => f.self).toFixed(1)} | ${sum((f) => f.children).toFixed(1)} | |`);
