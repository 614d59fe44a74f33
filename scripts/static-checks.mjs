#!/usr/bin/env node
// The type check and the lint, on one TypeScript program per tsconfig, in this one process.
//
// `npm run typecheck` (tsc) and `npm run lint` (eslint's type-aware rules) each build a program
// of the same ~300 files and type-check them: run as two processes, the parse, bind and check
// were done twice (about 40 s and 70 s of CPU). Here each program is built once, its
// diagnostics are what `tsc --noEmit` reports, and eslint is handed the same programs
// (`parserOptions.programs`), so its rules ask a checker that has already done the work.
// The two programs are those of `npm run typecheck`: tsconfig.json and ui/web/tsconfig.json
// (the dashboard's browser code, with the DOM library). The lint reads eslint.config.mjs as
// `eslint .` does; only where it gets its type information from changes.
//
// Both always run to the end, so one run shows every error; the exit code is non-zero if
// either failed. `npm run typecheck` and `npm run lint` still run each on its own.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The program `tsc -p <config>` builds, with the config file's own errors. */
function programOf(configPath) {
  const errors = [];
  const config = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => errors.push(diagnostic),
  });
  if (config === undefined) return { program: undefined, errors };
  errors.push(...config.errors);
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options, projectReferences: config.projectReferences });
  return { program, errors };
}

const formatHost = { getCanonicalFileName: (name) => name, getCurrentDirectory: () => root, getNewLine: () => '\n' };

let typecheckStarted = Date.now();
const programs = [];
let typeErrors = 0;
let typeOutput = '';
for (const config of ['tsconfig.json', 'ui/web/tsconfig.json']) {
  const { program, errors } = programOf(join(root, config));
  // What `tsc --noEmit` reports: options, syntax, globals and semantics, in that order.
  const diagnostics = [...errors, ...(program ? ts.getPreEmitDiagnostics(program) : [])];
  if (program) programs.push(program);
  typeErrors += diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error).length;
  if (diagnostics.length > 0) typeOutput += ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost);
}
const typecheckMs = Date.now() - typecheckStarted;

const lintStarted = Date.now();
let lintOutput = '';
let lintFailed = false;
try {
  // projectService off: type information comes from the programs above (a file in both, such
  // as ui/shared/*, is read from the first, tsconfig.json's, as the project service would).
  const eslint = new ESLint({ cwd: root, overrideConfig: { languageOptions: { parserOptions: { projectService: false, programs } } } });
  const results = await eslint.lintFiles(['.']);
  lintFailed = results.some((result) => result.errorCount > 0 || result.fatalErrorCount > 0);
  lintOutput = await (await eslint.loadFormatter('stylish')).format(results);
} catch (error) {
  lintFailed = true;
  lintOutput = `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`;
}
const lintMs = Date.now() - lintStarted;

// Printed whole and in a fixed order, so the two outputs never interleave.
for (const [name, failed, output, ms] of [
  ['typecheck', typeErrors > 0, typeOutput, typecheckMs],
  ['lint', lintFailed, lintOutput, lintMs],
]) {
  if (output.trim() !== '') process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
  console.log(`${name}: ${failed ? 'failed' : 'ok'} in ${(ms / 1000).toFixed(1)} s`);
}
process.exit(typeErrors > 0 || lintFailed ? 1 : 0);
