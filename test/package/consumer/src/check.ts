// A consumer module type-checked with the consumer's own tsc under the strictest flags
// (tsconfig.strict.json, skipLibCheck false): valence's published declarations must hold up
// under them. valence/cdk is left to the CDK app's own tsc (bin/, lib/): aws-cdk-lib's
// declarations do not pass exactOptionalPropertyTypes with skipLibCheck false themselves.
import { connect, electron, lattice, isCancellation, NodeStatus, TERMINAL_NODE_STATUSES, ValenceError, type DispatchResult, type DispatchRun } from 'valence';
import { startLocalCloud, type LocalCloud } from 'valence/local';

const double = electron((x: number) => x * 2);
export const doubled = lattice({ name: 'doubled' }, (x: number) => double(x));

export async function run(): Promise<number | undefined> {
  const cloud: LocalCloud = await startLocalCloud({ port: 0, workflows: 'src/local-workflows.mjs' });
  const client = connect({ endpoint: cloud.endpoint, region: cloud.region });
  try {
    const handle: DispatchRun<number> = await client.dispatch(doubled)(21);
    const id: string = handle.id;
    const result: DispatchResult<number> = await client.getResult<number>(id, { wait: true });
    if (TERMINAL_NODE_STATUSES.has(NodeStatus.COMPLETED) && result.error instanceof ValenceError) throw result.error;
    // The handle's result is typed by the lattice's return type.
    const typed: number = await handle.result();
    return typed === result.result ? typed : undefined;
  } catch (error) {
    if (isCancellation(error)) return undefined;
    throw error;
  } finally {
    client.close();
    await cloud.stop();
  }
}
