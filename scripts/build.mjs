// `npm run build` (and `prepack`): the published build in dist/.
//   1. tsc -p tsconfig.build.json: ESM JavaScript, .d.ts and source maps, one file per source
//      (`--no-check`: emitted without a type check).
//   2. The plain-JavaScript entries (.mjs: worker-thread boots that register tsx) are copied
//      with their relative `.ts` imports pointed at the compiled `.js`.
//   3. `valence init`'s project templates are copied beside the compiled CLI.
//   4. The dashboard's web assets are built into dist/ui/dist, so an installed valence never
//      needs esbuild, preact or elkjs to serve `valence ui`.
// Inside the repository nothing needs this build: tests, examples, the demo and the CLI run
// from the TypeScript sources (see ARCHITECTURE.md, "Published build").
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);

// `--no-check` emits without type-checking (tsc's --noCheck), for callers that have just
// type-checked the same sources (the consumer smoke test inside `npm test`); a third less CPU.
const noCheck = process.argv.includes('--no-check');

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), ...(noCheck ? ['--noCheck'] : [])], { cwd: root, stdio: 'inherit' });

/** Every file under `dir` whose name ends with `suffix`. */
function filesUnder(dir, suffix) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name));
}

for (const folder of ['sdk', 'lambdas', 'infra', 'localstack']) {
  for (const file of filesUnder(join(root, folder), '.mjs')) {
    const target = join(dist, relative(root, file));
    const source = readFileSync(file, 'utf8').replace(/(['"])(\.{1,2}\/[^'"]+)\.ts\1/g, '$1$2.js$1');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, source);
  }
}

// What `valence init` writes: its templates, beside the compiled sdk/cli/init.js that reads them.
cpSync(join(root, 'sdk', 'cli', 'templates'), join(dist, 'sdk', 'cli', 'templates'), { recursive: true });

// The dashboard's assets, built from the sources (ui/web) by the repository's own builder.
execFileSync(
  process.execPath,
  ['--import', 'tsx', '-e', `await (await import('./ui/server/build.ts')).buildAssets(${JSON.stringify(join(dist, 'ui', 'dist'))})`],
  { cwd: root, stdio: 'inherit' },
);
