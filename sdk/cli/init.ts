/**
 * `valence init DIR`: writes a new project that runs its own demo and its own tests at once —
 * a workflows module with a Lambda, a Batch and a Braket electron, a CDK app, a demo on the
 * local cloud, a test, and a README. The files come from `templates/project/` beside this
 * module (each `NAME.tmpl` becomes `NAME`; `gitignore` becomes `.gitignore`, since npm drops
 * `.gitignore` files from a package).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliUsageError } from './errors.ts';

/** Where the project templates live (shipped with the package). */
export const TEMPLATES_DIR = fileURLToPath(new URL('./templates/project/', import.meta.url));

/** npm package names: lower case, URL-safe, at most 214 characters. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9._~-]{0,213}$/;

/** What {@link scaffoldProject} wrote. */
export interface ScaffoldResult {
  /** The project folder, absolute. */
  readonly dir: string;
  /** The files written, relative to {@link dir}, sorted. */
  readonly files: readonly string[];
}

/**
 * Writes a new project into `target` (created if absent), for valence `valenceVersion`.
 * Refuses a target that exists and is not an empty folder, or whose name is no npm package
 * name, with a {@link CliUsageError}; nothing is written then.
 */
export function scaffoldProject(target: string, valenceVersion: string): ScaffoldResult {
  const dir = resolve(target);
  const name = basename(dir);
  if (!PACKAGE_NAME.test(name)) {
    throw new CliUsageError(`init: the folder name "${name}" is not a valid npm package name; use lower-case letters, digits, "-", "." or "_", e.g. valence init my-project`);
  }
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new CliUsageError(`init target ${dir} exists and is not a folder; name a new or empty folder`);
    const present = readdirSync(dir);
    if (present.length > 0) {
      throw new CliUsageError(`init target ${dir} is not empty (it holds ${present.slice(0, 3).join(', ')}${present.length > 3 ? ', …' : ''}); name a new or empty folder`);
    }
  }
  // Every template is read and filled in before the first file is written.
  const planned = templateFiles(TEMPLATES_DIR).map((file) => ({
    path: outputPath(relative(TEMPLATES_DIR, file)),
    text: readFileSync(file, 'utf8').replaceAll('{{name}}', name).replaceAll('{{valenceVersion}}', valenceVersion),
  }));
  for (const { path, text } of planned) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return { dir, files: planned.map((p) => p.path).sort() };
}

/** Every `.tmpl` file under `dir`. */
function templateFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return templateFiles(path);
    return entry.name.endsWith('.tmpl') ? [path] : [];
  });
}

/** `src/workflows.ts.tmpl` → `src/workflows.ts`; `gitignore.tmpl` → `.gitignore`. */
function outputPath(templatePath: string): string {
  const path = templatePath.slice(0, -'.tmpl'.length);
  return basename(path) === 'gitignore' ? join(dirname(path), '.gitignore') : path;
}
