// A local cloud with the runtime fixtures deployed, and a client connected to it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetExecutionHistoryCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import { startLocalCloud, type LocalCloud, type LocalCloudOptions } from '../../localstack/index.ts';
import { connect, type ValenceClient } from '../../sdk/client/index.ts';
import { ENV } from '../../sdk/contract.ts';

/** A running local cloud with `workflows` deployed, a client, and a scratch directory. */
export interface RuntimeHarness {
  readonly cloud: LocalCloud;
  readonly client: ValenceClient;
  /** A fresh directory electrons write their observations into. */
  readonly dir: string;
  close(): Promise<void>;
}

export const FIXTURES = fileURLToPath(new URL('./fixtures/workflows.ts', import.meta.url));

/** Starts the harness; call `close()` in afterAll. */
export async function startHarness(options: Partial<LocalCloudOptions> = {}, workflows = FIXTURES): Promise<RuntimeHarness> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const dir = mkdtempSync(join(tmpdir(), 'valence-test-'));
  const cloud = await startLocalCloud({
    port: 0,
    workflows,
    batchDelays: { submittedMs: 20, pendingMs: 20, runnableMs: 20, startingMs: 20 },
    ...options,
    environment: { [ENV.leaseMs]: '3000', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...options.environment },
  });
  const client = connect({ endpoint: cloud.endpoint, region: cloud.region, credentials: cloud.credentials });
  return {
    cloud,
    client,
    dir,
    async close() {
      client.close();
      await cloud.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every event of an execution's history, across pages, as the real SDK client reads it. */
export async function executionHistory(cloud: LocalCloud, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await cloud.clients.sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}
