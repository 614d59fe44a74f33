import { startLocalCloud } from './localstack/index.ts';
import { connect } from './sdk/client/index.ts';
import './bench/fixtures/workflows.ts';
import { defaultLatticeRegistry } from './sdk/model/index.ts';
import { randomDag, SLEEP_RANGE, criticalPathMs } from './bench/dag.ts';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const cloud = await startLocalCloud({ port: 0, workflows: new URL('./bench/fixtures/workflows.ts', import.meta.url).pathname, environment: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
const client = connect({ endpoint: cloud.endpoint, region: cloud.region, credentials: cloud.credentials });
const run = async (l: any, ...args: unknown[]) => { const t0 = Date.now(); const id = await client.dispatch(l)(...args); const r = await client.getResult(id, { wait: true, timeoutMs: 600000 }); return { t0, ms: Date.now() - t0, r, id }; };
for (let i = 0; i < 3; i++) console.log('warm', (await run(defaultLatticeRegistry.get('benchWarm'))).ms);
for (const name of ['benchDag1000', 'benchDag1001', 'benchSleep2000', 'benchSleep2001']) {
const { t0, ms, r } = await run(defaultLatticeRegistry.get(name));
const seed = Number(name.slice(-4));
const dag = randomDag(seed, 100, seed >= 2000 ? SLEEP_RANGE : undefined);
const start = new Map<number, number>(), end = new Map<number, number>();
for (const n of r.nodes) { start.set(n.id as number, Date.parse(n.startedAt!)); end.set(n.id as number, Date.parse(n.endedAt!)); }
const gaps = [], durs = [];
for (let i = 0; i < 100; i++) { const ready = Math.max(t0, ...dag.parents[i]!.map((p) => end.get(p)!)); gaps.push(start.get(i)! - ready); durs.push(end.get(i)! - start.get(i)! - dag.durationsMs[i]!); }
const s = (a: number[]) => { const b = [...a].sort((x, y) => x - y); return `p50 ${b[50]} p90 ${b[90]} max ${b[99]}`; };
console.log(name, ms, 'cp', criticalPathMs(dag), 'gap', s(gaps), 'extra dur', s(durs));
}
client.close(); await cloud.stop();
