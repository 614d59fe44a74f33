/**
 * Builds the web app (`ui/web/`) into `ui/dist/` with esbuild: one ES module bundle, the
 * stylesheet, the page, and elkjs's layout worker (layouts run off the page's main thread).
 *
 * `valence ui` builds on demand when `ui/dist/` is missing or older than a source file;
 * `npm run build:ui` (and `prepack`) build it ahead, so a packed install ships the assets.
 *
 * @module
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the web app's sources are. */
export const WEB_DIR = fileURLToPath(new URL('../web/', import.meta.url));
/** Where the built assets go (and where the server serves them from). */
export const DIST_DIR = fileURLToPath(new URL('../dist/', import.meta.url));
const SHARED_DIR = fileURLToPath(new URL('../shared/', import.meta.url));

function newestSource(): number {
  let newest = 0;
  for (const dir of [WEB_DIR, SHARED_DIR]) {
    // The published build ships the assets without the web sources: nothing to compare.
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) newest = Math.max(newest, statSync(join(dir, name)).mtimeMs);
  }
  return newest;
}

/** True when `ui/dist/` is missing or older than the newest file of `ui/web/` or `ui/shared/`. */
export function assetsStale(outdir = DIST_DIR): boolean {
  const stamp = join(outdir, 'app.js');
  return !existsSync(stamp) || statSync(stamp).mtimeMs < newestSource();
}

/**
 * Builds the assets into `outdir`. They are written beside it first and renamed into place one
 * file at a time (an atomic step each), so a server reading `outdir` while another process
 * builds never serves half a file.
 */
export async function buildAssets(outdir = DIST_DIR): Promise<void> {
  const { build } = await import('esbuild');
  mkdirSync(outdir, { recursive: true });
  const target = outdir;
  outdir = mkdtempSync(join(outdir, '..', '.dist-build-'));
  try {
    await writeAssets(build, outdir);
    // app.js last: its mtime is what assetsStale() compares.
    for (const name of ['elk-worker.js', 'style.css', 'index.html', 'app.js']) renameSync(join(outdir, name), join(target, name));
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

async function writeAssets(build: typeof import('esbuild').build, outdir: string): Promise<void> {
  await build({
    entryPoints: { app: join(WEB_DIR, 'main.ts') },
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    outdir,
    logLevel: 'warning',
  });
  copyFileSync(join(WEB_DIR, 'index.html'), join(outdir, 'index.html'));
  copyFileSync(join(WEB_DIR, 'style.css'), join(outdir, 'style.css'));
  const require = createRequire(import.meta.url);
  copyFileSync(require.resolve('elkjs/lib/elk-worker.min.js'), join(outdir, 'elk-worker.js'));
}

/** Builds the assets unless they are up to date. */
export async function ensureAssets(outdir = DIST_DIR): Promise<void> {
  if (assetsStale(outdir)) await buildAssets(outdir);
}
