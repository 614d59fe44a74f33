// The sweeper's metrics: one CloudWatch EMF line per run with the re-cancel count and the age
// of the oldest cancel request still open, under the namespace, dimension and names the
// Orchestrator's alarms read (infra/private/monitoring.ts).
import { GetFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSweeperHandler } from '../../lambdas/sweeper.ts';
import { ValenceMetric, VALENCE_NAMESPACE } from '../../infra/private/monitoring.ts';
import { runtimeContextFromEnv, type RuntimeContext } from '../../sdk/runtime/context.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';

let h: RuntimeHarness;
let ctx: RuntimeContext;

beforeAll(async () => {
  h = await startHarness();
  const sweeper = await h.cloud.clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'valence-sweeper' }));
  ctx = runtimeContextFromEnv({
    aws: { endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials },
    env: { ...sweeper.Environment?.Variables },
  });
}, 60_000);

afterAll(async () => {
  ctx?.aws.destroy();
  await h?.close();
});

interface Emf {
  readonly _aws: { readonly CloudWatchMetrics: readonly { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  readonly Stack: string;
  readonly [metric: string]: unknown;
}

/** Runs the sweeper handler once (leaving younger-than-an-hour cancel requests open) and returns what it printed. */
async function sweepOnce(): Promise<Emf[]> {
  const lines: string[] = [];
  const handler = createSweeperHandler({ ctx, print: (line) => lines.push(line) });
  await handler({ staleCancelSeconds: 3600 }, { getRemainingTimeInMillis: () => 60_000 });
  return lines.map((line) => JSON.parse(line) as Emf);
}

describe('the sweeper metrics', () => {
  it('prints 0 for both when nothing was re-cancelled and no request is open', async () => {
    const [line, ...more] = await sweepOnce();
    expect(more).toEqual([]);
    expect(line!._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: VALENCE_NAMESPACE,
        Dimensions: [['Stack']],
        Metrics: [
          { Name: ValenceMetric.SweeperRecancels, Unit: 'Count' },
          { Name: ValenceMetric.OldestUnfinishedCancelSeconds, Unit: 'Seconds' },
        ],
      },
    ]);
    expect(line!.Stack).toBe(ctx.config.stackName);
    expect(line![ValenceMetric.SweeperRecancels]).toBe(0);
    expect(line![ValenceMetric.OldestUnfinishedCancelSeconds]).toBe(0);
  });

  it('reports the age of the oldest open cancel request', async () => {
    // GIVEN two open requests, 90 s and 20 s old, that no handler is working on
    const at = (secondsAgo: number): string => new Date(Date.now() - secondsAgo * 1000).toISOString();
    await ctx.store.openCancelRequest('metrics-a', { requestId: 'r-old', requestedAt: at(90), requestedBy: 'test', reason: 'old', targets: [] });
    await ctx.store.openCancelRequest('metrics-b', { requestId: 'r-new', requestedAt: at(20), requestedBy: 'test', reason: 'new', targets: [] });
    // WHEN the sweeper runs (and leaves them open: they are younger than its stale age)
    const [line] = await sweepOnce();
    // THEN the metric is the older one's age
    const age = line![ValenceMetric.OldestUnfinishedCancelSeconds] as number;
    expect(age).toBeGreaterThanOrEqual(90);
    expect(age).toBeLessThan(150);
  });
});
