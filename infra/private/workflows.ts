/**
 * Finding a workflows module's lattices and generating the step handler's entry file.
 *
 * The step handler must carry the user's workflows in its bundle (an electron runs inside it),
 * so at synth time a tiny entry module that imports both is written under `.valence/` and
 * bundled in place of `lambdas/step.ts`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** A loaded workflows module: where it lives (for bundling) and what it exports (for compiling). */
export interface WorkflowsModule {
  /** Absolute path of the module file. */
  readonly path: string;
  /** The module namespace: every exported lattice becomes a state machine. */
  readonly exports: Readonly<Record<string, unknown>>;
}

/** The folder that holds valence itself (the parent of `infra/`): the repository, or `dist/` of the installed package. */
export const VALENCE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Extension of valence's own modules: `.ts` from source, `.js` in the published build. */
export const OWN_EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** A module of valence's own, by its path under {@link VALENCE_ROOT} without extension (`lambdas/step-handler`). */
export function valenceModule(name: string): string {
  return join(VALENCE_ROOT, `${name}${OWN_EXT}`);
}

const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);

/**
 * Loads a workflows module synchronously, so that `new Orchestrator(this, id, { workflows:
 * 'src/workflows.ts' })` needs no top-level await in the app. The module is `require`d
 * (Node ≥ 20.19 requires ES modules without a flag), so an app that imports the same module
 * itself gets the same instance. A TypeScript module in a process with no TypeScript loader
 * (an app compiled by tsc and run by plain node) is bundled first with esbuild, its packages
 * left external so that `valence` stays the installed one.
 * @param path absolute, or relative to the current directory (the CDK app's)
 */
export function loadWorkflowsSync(path: string): WorkflowsModule {
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    throw new WorkflowsModuleNotFoundError(`Workflows module ${absolute} does not exist (relative paths are resolved against the app's directory, ${process.cwd()})`);
  }
  const require = createRequire(import.meta.url);
  const extension = extname(absolute);
  const loadable = !TYPESCRIPT_EXTENSIONS.has(extension) || extension in require.extensions;
  const file = loadable ? absolute : bundleWorkflows(absolute);
  try {
    return { path: absolute, exports: require(file) as Record<string, unknown> };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_REQUIRE_ASYNC_MODULE') {
      throw new ValenceError(
        ErrorCode.WORKFLOWS_MODULE_UNLOADABLE,
        `Workflows module ${absolute} uses top-level await, so it cannot be loaded synchronously: pass workflows: await loadWorkflows(${JSON.stringify(path)}) instead of its path`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Bundles a TypeScript workflows module into `.valence/workflows/` of its project; returns the bundle's path. */
function bundleWorkflows(absolute: string): string {
  const require = createRequire(import.meta.url);
  let esbuild: typeof import('esbuild');
  try {
    esbuild = require('esbuild') as typeof import('esbuild');
  } catch (error) {
    throw new ValenceError(ErrorCode.WORKFLOWS_MODULE_UNLOADABLE, `Loading the TypeScript workflows module ${absolute} needs esbuild (npm install -D esbuild), or run the app under tsx`, { cause: error });
  }
  const digest = createHash('sha256').update(absolute).digest('hex').slice(0, 16);
  const outfile = join(findProjectRoot(dirname(absolute)), '.valence', 'workflows', `workflows-${digest}.mjs`);
  const built = esbuild.buildSync({ entryPoints: [absolute], outfile, write: false, bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', sourcemap: 'inline', keepNames: true, logLevel: 'error' });
  mkdirSync(dirname(outfile), { recursive: true });
  // Through a rename: a synth running beside this one never requires half a file.
  const temporary = `${outfile}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temporary, built.outputFiles[0]!.contents);
  renameSync(temporary, outfile);
  return outfile;
}

/**
 * Imports a workflows module as written (`.ts` works when the process runs under tsx).
 * @param path absolute, or relative to the current directory
 */
export async function loadWorkflows(path: string): Promise<WorkflowsModule> {
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    throw new WorkflowsModuleNotFoundError(`Workflows module ${absolute} does not exist`);
  }
  const exports = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  return { path: absolute, exports };
}

/** Thrown when the workflows module named by the app's context or environment is missing. */
export class WorkflowsModuleNotFoundError extends ValenceError {
  override readonly name = 'WorkflowsModuleNotFoundError';
  constructor(message: string) {
    super(ErrorCode.WORKFLOWS_MODULE_NOT_FOUND, message);
  }
}

/**
 * The nearest folder at or above `start` that holds a `package.json`: the project whose
 * lockfile the handlers are bundled against and whose files the job image is built from.
 */
export function findProjectRoot(start: string): string {
  const search = (from: string): string | undefined => {
    for (let dir = resolve(from); ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'package.json'))) return dir;
      if (dirname(dir) === dir) return undefined;
    }
  };
  // A module outside any package (a scratch file in /tmp) builds against the current project.
  return search(start) ?? search(process.cwd()) ?? resolve(process.cwd());
}

/**
 * Writes (once per content) the entry module of the step handler bundle and returns its path:
 * `createStepHandler({ workflows })` over the statically imported workflows module.
 */
export function writeStepHandlerEntry(options: { readonly projectRoot: string; readonly workflowsPath: string; readonly stepModulePath: string; readonly jobRunnerFile?: string }): string {
  return writeEntry(options.projectRoot, 'step', [
    '// Generated by valence at synth time: the step handler with the workflows module bundled in.',
    `import * as workflows from ${JSON.stringify(options.workflowsPath)};`,
    `import { createStepHandler } from ${JSON.stringify(options.stepModulePath)};`,
    ...(options.jobRunnerFile ? ["import { fileURLToPath as __valenceFileURLToPath } from 'node:url';"] : []),
    '',
    // LocalExecutor children run the job runner's bundle, copied beside this one into the asset.
    options.jobRunnerFile
      ? `export const handler = createStepHandler({ workflows, jobRunnerPath: __valenceFileURLToPath(new URL(${JSON.stringify(`./${options.jobRunnerFile}`)}, import.meta.url)) });`
      : 'export const handler = createStepHandler({ workflows });',
    '',
  ]);
}

/**
 * Writes the entry of a handler that needs the workflows module only for its side effects
 * (the cancel handler and the sweeper call `executor.cancel()`, so the module's custom
 * executor classes must be registered in their bundle too).
 */
export function writeHandlerWithWorkflowsEntry(options: { readonly projectRoot: string; readonly workflowsPath: string; readonly handlerModulePath: string; readonly name: string }): string {
  return writeEntry(options.projectRoot, options.name, [
    '// Generated by valence at synth time: registers the workflows module\'s executors, then serves the handler.',
    `import ${JSON.stringify(options.workflowsPath)};`,
    `export { handler } from ${JSON.stringify(options.handlerModulePath)};`,
    '',
  ]);
}

/**
 * Writes `lines` under `.valence/handlers/` with a content hash in the name, through a
 * rename, so parallel synths never see a half-written file.
 */
function writeEntry(projectRoot: string, name: string, lines: readonly string[]): string {
  const source = lines.join('\n');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(projectRoot, '.valence', 'handlers');
  const file = join(dir, `${name}-${digest}.ts`);
  if (existsSync(file) && readFileSync(file, 'utf8') === source) return file;
  mkdirSync(dir, { recursive: true });
  const temporary = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(temporary, source);
  renameSync(temporary, file);
  return file;
}
