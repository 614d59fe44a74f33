/**
 * Benchmark: how fast the local cloud starts and how much memory it holds when idle.
 *
 * Each sample runs in a fresh child process (so module loading is counted and RSS belongs to
 * one cloud only). The baseline runs the same way: a bare `http.createServer` on the same
 * Node + tsx, which is the least any local HTTP service costs. Targets (issue 3): start < 1 s,
 * idle RSS < 200 MB.
 *
 * Run: `node --import tsx bench/localcloud-start.ts [--runs N]`; writes
 * bench/results/localcloud-start.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('../', import.meta.url));

/** One child's measurements. */
interface Sample {
  /** Loading the module(s) the process needs before it can start serving. */
  importMs: number;
  /** `startLocalCloud()` (or `listen()`) until it resolves. */
  startMs: number;
  /** From the start call to the first answered HTTP request. */
  firstResponseMs: number;
  /** After start, until a first DynamoDB and a first S3 request are answered (both emulators load lazily). */
  firstDynamoDbAndS3Ms: number;
  /** From spawning the child process to the first answered request (what a user waits). */
  spawnToReadyMs: number;
  /** Resident set size after start, after a GC and a short idle period. */
  idleRssMb: number;
  idleHeapUsedMb: number;
}

// Each child prints one JSON line. `gc` is available through --expose-gc. Requests use
// node:http (fetch would add undici's own load time to both sides).
const HTTP_GET = `
const http = await import('node:http');
const get = (url, headers = {}) => new Promise((resolve, reject) => {
  const req = http.request(url, { method: headers['x-amz-target'] ? 'POST' : 'GET', headers }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
  req.on('error', reject);
  req.end(headers['x-amz-target'] ? '{}' : undefined);
});
`;

const CLOUD_CHILD = `${HTTP_GET}
const t0 = performance.now();
const { startLocalCloud } = await import('./localstack/index.ts');
const t1 = performance.now();
const cloud = await startLocalCloud({ port: 0 });
const t2 = performance.now();
await get(cloud.endpoint + '/_valence/health', { 'x-valence-admin-token': cloud.adminToken });
const t3 = performance.now();
// First use of DynamoDB and S3 loads dynalite and s3rver (they load lazily). Every service
// verifies SigV4, so the requests are signed with the cloud's key pair.
const { SignatureV4 } = await import('@smithy/signature-v4');
const { Sha256 } = await import('@aws-crypto/sha256-js');
const signed = async (service, headers, body) => {
  const url = new URL(cloud.endpoint);
  const signer = new SignatureV4({ credentials: cloud.credentials, region: cloud.region, service, sha256: Sha256, uriEscapePath: service !== 's3' });
  const request = await signer.sign({ method: body === undefined ? 'GET' : 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {}, headers: { host: url.host, ...headers }, body });
  return request.headers;
};
await get(cloud.endpoint + '/', await signed('dynamodb', { 'x-amz-target': 'DynamoDB_20120810.ListTables', 'content-type': 'application/x-amz-json-1.0' }, '{}'));
await get(cloud.endpoint + '/', await signed('s3', {}));
const t4 = performance.now();
await new Promise((r) => setTimeout(r, 300));
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 50));
const m = process.memoryUsage();
console.log(JSON.stringify({ importMs: t1 - t0, startMs: t2 - t1, firstResponseMs: t3 - t1, firstDynamoDbAndS3Ms: t4 - t3, readyAt: performance.timeOrigin + t3, idleRssMb: m.rss / 2 ** 20, idleHeapUsedMb: m.heapUsed / 2 ** 20 }));
await cloud.stop();
`;

const BASELINE_CHILD = `${HTTP_GET}
const t0 = performance.now();
const t1 = performance.now();
const server = http.createServer((req, res) => res.end('{}'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const t2 = performance.now();
await get('http://127.0.0.1:' + server.address().port + '/');
const t3 = performance.now();
await new Promise((r) => setTimeout(r, 300));
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 50));
const m = process.memoryUsage();
console.log(JSON.stringify({ importMs: t1 - t0, startMs: t2 - t1, firstResponseMs: t3 - t1, firstDynamoDbAndS3Ms: 0, readyAt: performance.timeOrigin + t3, idleRssMb: m.rss / 2 ** 20, idleHeapUsedMb: m.heapUsed / 2 ** 20 }));
server.close();
`;

function runChild(script: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const spawnedAt = performance.timeOrigin + performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', '--no-warnings', '--input-type=module', '-e', script], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) {
        reject(new Error(`benchmark child failed (exit ${code}): ${stderr.slice(-2000)}`));
        return;
      }
      const parsed = JSON.parse(line) as Omit<Sample, 'spawnToReadyMs'> & { readyAt: number };
      const { readyAt, ...rest } = parsed;
      resolve({ ...rest, spawnToReadyMs: readyAt - spawnedAt });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return Math.round(value * 10) / 10;
}

function summarize(samples: Sample[]): Record<keyof Sample, number> {
  const keys = Object.keys(samples[0] ?? {}) as (keyof Sample)[];
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]))])) as Record<keyof Sample, number>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
  const runs = Math.max(1, Number(values.runs));
  const cloudSamples: Sample[] = [];
  const baselineSamples: Sample[] = [];
  // Interleave so both see the same machine load.
  for (let i = 0; i < runs; i++) {
    baselineSamples.push(await runChild(BASELINE_CHILD));
    cloudSamples.push(await runChild(CLOUD_CHILD));
  }
  const cloud = summarize(cloudSamples);
  const baseline = summarize(baselineSamples);
  const ratio = (a: number, b: number) => Math.round((a / Math.max(b, 0.1)) * 100) / 100;
  const result = {
    benchmark: 'localcloud-start',
    date: new Date().toISOString(),
    node: process.version,
    // Timings scale with machine load; record it so results from a busy box read as such.
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    cpus: availableParallelism(),
    runs,
    statistic: 'median',
    targets: { startMs: 1000, idleRssMb: 200 },
    localCloud: cloud,
    baseline: { description: 'bare http.createServer in the same Node + tsx process setup', ...baseline },
    ratio: {
      spawnToReady: ratio(cloud.spawnToReadyMs, baseline.spawnToReadyMs),
      idleRss: ratio(cloud.idleRssMb, baseline.idleRssMb),
      importPlusStart: ratio(cloud.importMs + cloud.startMs, baseline.importMs + baseline.startMs),
    },
    meetsTargets: {
      startUnder1s: cloud.importMs + cloud.startMs < 1000,
      startAndFirstDynamoDbAndS3Under1s: cloud.importMs + cloud.startMs + cloud.firstDynamoDbAndS3Ms < 1000,
      idleRssUnder200Mb: cloud.idleRssMb < 200,
    },
    samples: { localCloud: cloudSamples, baseline: baselineSamples },
  };
  const text = JSON.stringify(result, null, 2);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/localcloud-start.json', import.meta.url), `${text}\n`);
  console.log(text);
}

await main();
