/**
 * The executor drivers: one module per way of running a node, each implementing
 * {@link ExecutorDriver}. {@link driverFor} is the only place that picks a driver; the step,
 * cancel and completion handlers and the sweeper ask the driver of a node's kind and never
 * branch on kinds themselves.
 *
 * Loading this module also gives the built-in executors' `cancel(taskMetadata, jobHandle)`
 * its implementation (model code cannot import the runtime).
 *
 * @module
 */
import { createAwsClients, type AwsClients } from '../../aws.ts';
import { provideDriverCancel } from '../../model/executors.ts';
import type { NodeItem } from '../store.ts';
import { batchDriver } from './batch.ts';
import { braketJobDriver } from './braket-job.ts';
import { braketTaskDriver } from './braket-task.ts';
import { childDispatchDriver } from './child-dispatch.ts';
import { customDriver } from './custom.ts';
import type { ExecutorDriver, JobEnd, ServiceEvent } from './driver.ts';
import { inlineDriver } from './inline.ts';
import { asDriverKind, driverKindOf, type DriverKind } from './kinds.ts';
import { localDriver } from './local.ts';

export type { ExecutorDriver } from './driver.ts';
export { DriverKind, driverKindOf, usesCallback } from './kinds.ts';

const DRIVERS: { readonly [K in DriverKind]: ExecutorDriver } = {
  inline: inlineDriver,
  batch: batchDriver,
  'braket-task': braketTaskDriver,
  'braket-job': braketJobDriver,
  local: localDriver,
  'child-dispatch': childDispatchDriver,
  custom: customDriver,
};

/** The driver of a kind. */
export function driverFor(kind: DriverKind): ExecutorDriver {
  return DRIVERS[kind];
}

/** The driver that runs a graph node (its executor's, or the child-dispatch driver for a sublattice). */
export function driverForNode(node: Parameters<typeof driverKindOf>[0]): ExecutorDriver {
  return driverFor(driverKindOf(node));
}

/** The driver that owns a node item's recorded job; undefined while the node has no job handle. */
export function driverForJob(node: NodeItem): ExecutorDriver | undefined {
  const kind = asDriverKind(node.jobKind);
  return node.jobHandle && kind ? driverFor(kind) : undefined;
}

/** The job end a state-change event reports, asking each driver in turn; undefined for events valence does not handle. */
export function jobEndFromEvent(event: ServiceEvent): { readonly driver: ExecutorDriver; readonly handle: string; readonly end: JobEnd } | undefined {
  for (const driver of Object.values(DRIVERS)) {
    const found = driver.endFromEvent(event);
    if (found) return { driver, ...found };
  }
  return undefined;
}

let clients: AwsClients | undefined;
// A built-in executor's cancel, called outside any handler: the configured AWS clients and no deadline.
provideDriverCancel((executor, taskMetadata, jobHandle) =>
  driverForNode({ kind: 'electron', executor }).stopJob(
    { aws: (clients ??= createAwsClients()), signal: new AbortController().signal },
    { ...taskMetadata, jobHandle, executorJson: executor },
    'graceful',
  ),
);
