// `npx cdk synth` runs the real app offline: bundles the handlers with the local esbuild (no
// Docker), stages the job image's build context without building it, and writes templates.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './support.ts';
import { OUTPUT } from '../../sdk/contract.ts';

const outdir = mkdtempSync(join(tmpdir(), 'valence-cdk-synth-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** Generous: the target is < 10 s on an idle 2-core machine; shared CI machines are slower. */
const CEILING_MS = 120_000;

describe('npx cdk synth', () => {
  it('synthesizes the app offline, with bundled handlers and a staged job image', () => {
    // GIVEN no network: no notices, no version check, no telemetry; no Docker on this machine
    const env = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true', DOCKER: '/nonexistent/docker' };
    const started = Date.now();
    // WHEN
    const result = spawnSync(
      'npx',
      ['cdk', 'synth', '--quiet', '--no-notices', '--no-version-reporting', '--output', outdir, '-c', 'workflows=test/infra/fixtures/workflows.ts', '-c', 'stackName=valence-synth-test'],
      { cwd: REPO, env, encoding: 'utf8', timeout: CEILING_MS },
    );
    const elapsed = Date.now() - started;
    console.log(`cdk synth took ${elapsed} ms`);
    // THEN
    expect(result.error).toBeUndefined();
    expect(result.stderr.slice(-4000)).not.toMatch(/Error|docker/i);
    expect(result.status).toBe(0);
    expect(elapsed).toBeLessThan(CEILING_MS);
    const template = JSON.parse(readFileSync(join(outdir, 'valence-synth-test.template.json'), 'utf8')) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>; Outputs: Record<string, unknown> };
    expect(Object.keys(template.Outputs).sort()).toEqual(Object.values(OUTPUT).sort());
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Runtime === 'nodejs22.x');
    expect(functions).toHaveLength(4);
    // Each handler's asset is an esbuild bundle (ESM) with its source map.
    const assets = JSON.parse(readFileSync(join(outdir, 'valence-synth-test.assets.json'), 'utf8')) as { files: Record<string, { source: { path: string } }>; dockerImages: Record<string, { source: { directory: string } }> };
    const bundles = Object.values(assets.files).map((f) => join(outdir, f.source.path)).filter((p) => existsSync(join(p, 'index.mjs')));
    expect(bundles).toHaveLength(4);
    for (const bundle of bundles) expect(existsSync(join(bundle, 'index.mjs.map'))).toBe(true);
    // The step handler bundle carries the workflows module (its lattice names are in it).
    expect(bundles.some((b) => readFileSync(join(b, 'index.mjs'), 'utf8').includes('infra-fixture-pipeline'))).toBe(true);
    // The job image is staged, not built: a Dockerfile and one bundle of the job runner with
    // the workflows module (its lattice names are in it), not the project's sources or node_modules.
    const image = Object.values(assets.dockerImages)[0]!;
    const context = join(outdir, image.source.directory);
    expect(readdirSync(context).sort()).toEqual(['Dockerfile', 'job.mjs', 'job.mjs.map']);
    expect(readFileSync(join(context, 'job.mjs'), 'utf8')).toContain('infra-fixture-pipeline');
    expect(readFileSync(join(context, 'Dockerfile'), 'utf8')).toMatch(/^CMD \["node", "\/app\/job\.mjs"\]$/m);
  }, CEILING_MS + 30_000);
});
