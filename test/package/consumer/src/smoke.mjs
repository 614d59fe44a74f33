// Run with plain `node src/smoke.mjs <heartbeat file>`: the local cloud from `valence/local`,
// a dispatch and its result, then a cancel of a running task whose heartbeat must end.
// Prints one JSON line with what it saw.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'valence';
import { startLocalCloud } from 'valence/local';
import { heartbeat, sumOfSquares } from './local-workflows.mjs';

const beats = (file) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0);
async function until(what, check, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const file = process.argv[2];
const cloud = await startLocalCloud({ port: 0, workflows: new URL('./local-workflows.mjs', import.meta.url).href });
const client = connect({ endpoint: cloud.endpoint, region: cloud.region, credentials: cloud.credentials });
try {
  const sumId = await client.dispatch(sumOfSquares)(3, 4);
  const done = await client.getResult(sumId, { wait: true, timeoutMs: 60_000 });

  const beatId = await client.dispatch(heartbeat)(file);
  await until('the first heartbeats', () => beats(file) >= 3);
  const report = await client.cancel(beatId, { reason: 'consumer smoke test' });
  const cancelled = await client.getResult(beatId, { wait: true, timeoutMs: 60_000 });
  // Quiet over 600 ms (12 beat periods), waited for up to 10 s: the worker is gone.
  let quiet = false;
  for (const deadline = Date.now() + 10_000; !quiet && Date.now() < deadline; ) {
    const before = beats(file);
    await sleep(600);
    quiet = beats(file) === before;
  }
  console.log(JSON.stringify({
    node: process.version,
    sum: { status: done.status, result: done.result },
    cancel: { status: cancelled.status, cancelled: report.cancelled.map((n) => `${n.id}:${n.previousStatus}`), beatsAtEnd: beats(file), quiet },
  }));
} finally {
  client.close();
  await cloud.stop();
}
