/**
 * The sandbox runtime (`runtime.ts`) as plain JavaScript, for functions whose code is
 * JavaScript (a bundle, as Lambda runs it): their sandboxes then load no TypeScript loader.
 *
 * Why: with tsx registered, importing a 3 MB handler bundle cost a cold sandbox about 1.9 s of
 * CPU (tsx transforms every JavaScript file it loads too); without it, about 0.25 s. Lambda has
 * no TypeScript loader either, so a JavaScript handler that imports TypeScript fails here as
 * it would there.
 *
 * In the published build `runtime.js` is already JavaScript. From source it is compiled once
 * with esbuild into the temp folder, under a name that is the hash of its sources (written
 * through a rename, so parallel processes share it). Without esbuild, `undefined`: the
 * sandbox registers tsx as before.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let cached: string | null | undefined;

/** File URL of a JavaScript build of the sandbox runtime, or `undefined` when none can be made. */
export function plainRuntimeUrl(): string | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = build() ?? null;
  return cached ?? undefined;
}

function build(): string | undefined {
  if (!import.meta.url.endsWith('.ts')) return new URL('./runtime.js', import.meta.url).href;
  const sources = ['runtime.ts', 'protocol.ts'].map((name) => fileURLToPath(new URL(`./${name}`, import.meta.url)));
  const hash = createHash('sha256');
  for (const source of sources) hash.update(readFileSync(source));
  const file = join(tmpdir(), `valence-lambda-runtime-${hash.digest('hex').slice(0, 16)}.mjs`);
  if (existsSync(file)) return pathToFileURL(file).href;
  let esbuild: typeof import('esbuild');
  try {
    esbuild = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  } catch {
    return undefined;
  }
  const built = esbuild.buildSync({ entryPoints: [sources[0]!], bundle: true, write: false, format: 'esm', platform: 'node', target: 'node20', logLevel: 'silent' });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, built.outputFiles[0]!.text);
  renameSync(temporary, file);
  return pathToFileURL(file).href;
}
