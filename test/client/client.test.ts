// The client's refusals, each with its ErrorCode and nothing started: no stack, a lattice that
// is not deployed or changed since, and a cancel the API refuses (its HTTP status kept).
import { ListExecutionsCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelRequestError, connect, NotDeployedError, StackNotFoundError, StaleDeployError } from '../../sdk/client/index.ts';
import { ErrorCode } from '../../sdk/errors.ts';
import { electron, lattice, LatticeRegistry } from '../../sdk/index.ts';
import { chain } from '../runtime/fixtures/workflows.ts';
import { startHarness, type RuntimeHarness } from '../runtime/harness.ts';

let h: RuntimeHarness;
beforeAll(async () => {
  h = await startHarness();
}, 120_000);
afterAll(() => h?.close());

const one = electron({ name: 'one' }, () => 1);
const triple = electron({ name: 'triple' }, (x: number) => 3 * x);

/** How many executions the chain's state machine has had. */
async function chainExecutions(): Promise<number> {
  const arn = `arn:aws:states:${h.cloud.region}:${h.cloud.accountId}:stateMachine:valence_chain`;
  return (await h.cloud.clients.sfn.send(new ListExecutionsCommand({ stateMachineArn: arn }))).executions?.length ?? 0;
}

describe('connect', () => {
  it('names an endpoint where nothing answers', async () => {
    const client = connect({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: h.cloud.credentials });
    try {
      await expect(client.outputs()).rejects.toMatchObject({ name: 'StackNotFoundError', code: ErrorCode.ENDPOINT_UNREACHABLE, message: /Nothing answers at http:\/\/127\.0\.0\.1:9/ });
    } finally {
      client.close();
    }
  });

  it('names a stack that does not exist', async () => {
    const client = connect({ endpoint: h.cloud.endpoint, region: h.cloud.region, credentials: h.cloud.credentials, stackName: 'no-such-stack' });
    try {
      const error: unknown = await client.outputs().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StackNotFoundError);
      expect(error).toMatchObject({ code: ErrorCode.STACK_NOT_FOUND, message: /No stack named "no-such-stack"/ });
    } finally {
      client.close();
    }
  });
});

describe('dispatch refusals', () => {
  it('refuses a lattice that is not deployed, and starts nothing', async () => {
    const before = await chainExecutions();
    const absent = lattice({ name: 'never-deployed', registry: new LatticeRegistry() }, () => one());
    const error: unknown = await h.client.dispatch(absent)().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotDeployedError);
    expect(error).toMatchObject({ code: ErrorCode.NOT_DEPLOYED, message: /"never-deployed" is not deployed in stack "valence"/ });
    expect(await h.client.listDispatches({ limit: 100 })).not.toContainEqual(expect.objectContaining({ lattice: 'never-deployed' }));
    expect(await chainExecutions()).toBe(before);
  });

  it('refuses a lattice whose graph changed since the deploy, and starts nothing', async () => {
    const before = await chainExecutions();
    // The deployed `chain` is add → double → double; this one has the same name and another graph.
    const changed = lattice({ name: 'chain', registry: new LatticeRegistry() }, (x: number) => triple(x));
    const error: unknown = await h.client.dispatch(changed)(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaleDeployError);
    expect(error).toMatchObject({ code: ErrorCode.STALE_DEPLOY, message: /changed since it was deployed/ });
    expect(await chainExecutions()).toBe(before);
  });
});

describe('cancel refusals', () => {
  it('keeps the HTTP status of a refused cancel, with the one CANCEL_REFUSED code', async () => {
    const id = await h.client.dispatch(chain)(1);
    await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    const error: unknown = await h.client.cancel(id, { taskIds: [1, 'x'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CancelRequestError);
    expect(error).toMatchObject({ code: ErrorCode.CANCEL_REFUSED, status: 400, message: /taskIds\[1\]/ });
  }, 90_000);
});

describe('API throttling', () => {
  const CANCEL = 'POST /dispatches/{id}/cancel';
  const cancelCalls = (): number => h.cloud.counters()['execute-api']?.[CANCEL] ?? 0;
  /** How many cancel requests the table holds for `id` (the handler records one per request it runs). */
  async function cancelRequests(id: string): Promise<number> {
    const { ScanCommand } = await import('@aws-sdk/client-dynamodb');
    const items = (await h.cloud.clients.dynamodb.send(new ScanCommand({ TableName: 'valence-table' }))).Items ?? [];
    return items.filter((item) => item.pk?.S === `D#${id}` && item.sk?.S?.startsWith('C#')).length;
  }

  it('retries a cancel the API throttled (429), and the cancel runs once', async () => {
    const id = await h.client.dispatch(chain)(2);
    await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    const before = cancelCalls();
    // API Gateway answers 429 before the function runs: two refusals, then through.
    h.cloud.faults.add({ service: 'execute-api', operation: CANCEL, errorRate: 1, maxErrors: 2, error: { status: 429, code: 'TooManyRequestsException', message: 'Too Many Requests' } });
    try {
      const report = await h.client.cancel(id);
      expect(report.dispatchId).toBe(id.id);
      expect(report.alreadyTerminal.length).toBeGreaterThan(0);
    } finally {
      h.cloud.faults.clear();
    }
    expect(cancelCalls() - before).toBe(3);
    expect(await cancelRequests(id.id)).toBe(1);
  }, 90_000);

  it('gives up after five throttled attempts with the 429, and records nothing', async () => {
    const id = await h.client.dispatch(chain)(3);
    await h.client.getResult(id, { wait: true, timeoutMs: 60_000 });
    const before = cancelCalls();
    h.cloud.faults.add({ service: 'execute-api', operation: CANCEL, errorRate: 1, error: { status: 429, code: 'TooManyRequestsException', message: 'Too Many Requests' } });
    let error: unknown;
    try {
      error = await h.client.cancel(id).catch((e: unknown) => e);
    } finally {
      h.cloud.faults.clear();
    }
    expect(error).toBeInstanceOf(CancelRequestError);
    expect(error).toMatchObject({ code: ErrorCode.CANCEL_REFUSED, status: 429 });
    expect(cancelCalls() - before).toBe(5);
    expect(await cancelRequests(id.id)).toBe(0);
  }, 90_000);
});
