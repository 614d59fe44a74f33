/**
 * What the drivers whose work runs in valence's job runner (Batch, local) share: its
 * environment and the upload of a node's inputs between cancel checks.
 *
 * @module
 */
import { payloadKeys } from '../payloads.ts';
import type { NodeRun } from './driver.ts';

/**
 * Uploads a node's inputs for a job process to read, checking the cancel flag before reading
 * (serializing), before uploading and after: a cancel landing in between stops it there.
 */
export async function uploadInputs(run: NodeRun): Promise<void> {
  await run.checkCancelled();
  const inputs = await run.loadInputs(run.ctx.signal);
  await run.checkCancelled();
  await run.ctx.payloads.putValue(payloadKeys.nodeInputs(run.dispatch.dispatchId, run.node.id), { args: inputs }, run.ctx.signal);
  await run.checkCancelled();
}

/** The environment of valence's job runner (`job-runner.ts`) for one node. */
export function jobEnvironment(run: NodeRun): { name: string; value: string }[] {
  return [
    { name: 'VALENCE_DISPATCH_ID', value: run.dispatch.dispatchId },
    { name: 'VALENCE_NODE_ID', value: String(run.node.id) },
    { name: 'VALENCE_LATTICE', value: run.graph.lattice },
    { name: 'VALENCE_ELECTRON', value: run.node.electron },
    { name: 'VALENCE_ATTEMPT', value: String(run.item.attempts || 1) },
    { name: 'VALENCE_GRACE_SECONDS', value: String(run.node.graceSeconds) },
    { name: 'VALENCE_BUCKET', value: run.ctx.config.bucket },
    { name: 'VALENCE_TABLE', value: run.ctx.config.table },
    ...(run.graph.buildArgs === undefined ? [] : [{ name: 'VALENCE_CHILD_DISPATCH', value: '1' }]),
  ];
}
