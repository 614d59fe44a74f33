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
