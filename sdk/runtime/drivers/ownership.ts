/**
 * Trusted job handles. A node item's job handle is read from the table, and a principal who
 * may write the table could forge one naming a job valence never started. Before a driver
 * stops a handle, it reads the job's tags back from the service (Batch `DescribeJobs`, Braket
 * `GetQuantumTask` / `GetJob`) and refuses unless they say this stack and this dispatch
 * started it; the refusal is the node's stop error, which the cancel result and the sweeper
 * report. The IAM statements that stop jobs are conditioned on the same `valence:stack` tag
 * (infra/private/permissions.ts), so the check holds even if this code were bypassed.
 *
 * @module
 */
import { ForeignJobHandleError } from '../../errors.ts';

/** The tag keys valence puts on every Batch job, Braket quantum task and hybrid job it submits. */
export const JOB_TAG = {
  stack: 'valence:stack',
  dispatch: 'valence:dispatch',
  node: 'valence:node',
} as const;

/** The tags of one submission: its stack, dispatch and node. */
export function jobTags(stackName: string, dispatchId: string, nodeId: number): Record<string, string> {
  return { [JOB_TAG.stack]: stackName, [JOB_TAG.dispatch]: dispatchId, [JOB_TAG.node]: String(nodeId) };
}

/** Who must have started a job for valence to stop it: the dispatch, and the stack when known. */
export interface ExpectedOwner {
  readonly dispatchId: string;
  /** Unset only where the caller has no stack configuration (`Executor.cancel`); the IAM condition still checks it. */
  readonly stackName?: string;
}

/**
 * Throws {@link ForeignJobHandleError} unless `tags` (as the service returned them) name the
 * expected dispatch and stack. A job without tags (started by someone else) is refused too.
 */
export function assertOwnedJob(handle: string, tags: Readonly<Record<string, string>> | undefined, owner: ExpectedOwner): void {
  const dispatch = tags?.[JOB_TAG.dispatch];
  const stack = tags?.[JOB_TAG.stack];
  const stackOk = owner.stackName === undefined || stack === owner.stackName;
  if (dispatch === owner.dispatchId && stackOk) return;
  throw new ForeignJobHandleError(
    handle,
    `Refused to stop ${handle}: its tags (${JOB_TAG.stack}=${stack ?? '∅'}, ${JOB_TAG.dispatch}=${dispatch ?? '∅'}) do not say ` +
      `that ${owner.stackName === undefined ? '' : `stack ${owner.stackName}, `}dispatch ${owner.dispatchId} started it`,
  );
}
