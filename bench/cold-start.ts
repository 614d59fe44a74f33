/**
 * Benchmark: CPU the local cloud spends on cold Lambda sandboxes, with the handlers run as
 * bundles (the default: localstack/handler-bundles.ts) against the baseline of the same run
 * with `VALENCE_LOCAL_BUNDLE=0` (handlers from source through tsx, as before 2026-12-01).
 *
 * Each side runs in its own child process (its CPU is `process.cpuUsage()`, which counts every
 * worker thread of that process): start a local cloud with the runtime fixtures, then a chain
 * of 3 (cold, then warm) and a fan-out of 100 (cold, then warm). Prints JSON and writes
 * bench/results/cold-start.json, with the load average before and after.
 *
 * Run: `node --import tsx bench/cold-start.ts`
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const STEPS = ['start', 'chain cold', 'chain warm', 'fanout cold', 'fanout warm'] as const;

/** CPU seconds and wall ms of each step, in one child process. */
type Sample = Record<(typeof STEPS)[number], { cpuS: number; wallMs: number }>;

async function child(): Promise<void> {
  const { startHarness } = await import('../test/runtime/harness.ts');
  const wf = await import('../test/runtime/fixtures/workflows.ts');
  const sample: Partial<Sample> = {};
  const measure = async (step: (typeof STEPS)[number], run: () => Promise<unknown>) => {
    const cpu = process.cpuUsage();
    const started = Date.now();
    await run();
    const used = process.cpuUsage(cpu);
    sample[step] = { cpuS: (used.user + used.system) / 1e6, wallMs: Date.now() - started };
  };
  let h: Awaited<ReturnType<typeof startHarness>> | undefined;
  await measure('start', async () => (h = await startHarness()));
  const harness = h!;
  const done = async (run: { id: string }) => {
    const result = await harness.client.getResult(run.id, { wait: true, timeoutMs: 300_000 });
    if (result.status !== 'COMPLETED') throw new Error(`dispatch ${run.id} ended ${result.status}`);
  };
  await measure('chain cold', async () => done(await harness.client.dispatch(wf.chain)(3)));
  await measure('chain warm', async () => done(await harness.client.dispatch(wf.chain)(3)));
  await measure('fanout cold', async () => done(await harness.client.dispatch(wf.fanout)()));
  await measure('fanout warm', async () => done(await harness.client.dispatch(wf.fanout)()));
  await harness.close();
  process.stdout.write(`${JSON.stringify(sample)}\n`);
}

function side(bundle: boolean): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child'], {
      cwd: root,
      env: { ...process.env, VALENCE_LOCAL_BUNDLE: bundle ? '1' : '0', POWERTOOLS_LOG_LEVEL: 'ERROR', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.once('error', reject);
    proc.once('close', (code) => {
      const line = out.trim().split('\n').at(-1);
      if (code !== 0 || !line) reject(new Error(`child (bundle ${bundle}) exited ${code}`));
      else resolve(JSON.parse(line) as Sample);
    });
  });
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  // The baseline first, then the bundles: a bundle cache built by an earlier run is what a
  // developer's second `valence local` sees; the first build is in `start`.
  const source = await side(false);
  const bundled = await side(true);
  const loadAfter = loadavg();
  const rows = STEPS.map((step) => ({
    step,
    sourceCpuS: Number(source[step].cpuS.toFixed(2)),
    bundledCpuS: Number(bundled[step].cpuS.toFixed(2)),
    ratio: Number((bundled[step].cpuS / source[step].cpuS).toFixed(2)),
    sourceWallMs: source[step].wallMs,
    bundledWallMs: bundled[step].wallMs,
  }));
  const total = (sample: Sample) => STEPS.reduce((sum, step) => sum + sample[step].cpuS, 0);
  const result = {
    benchmark: 'cold-start',
    date: new Date().toISOString(),
    load: { before: loadBefore.map((l) => Number(l.toFixed(2))), after: loadAfter.map((l) => Number(l.toFixed(2))) },
    rows,
    totalCpuS: { source: Number(total(source).toFixed(2)), bundled: Number(total(bundled).toFixed(2)) },
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/cold-start.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
}

if (process.argv.includes('--child')) await child();
else await main();
