/**
 * What the drivers whose work runs in valence's job runner (Batch, local) share: its
 * environment and the upload of a node's inputs between cancel checks.
 *
 * @module
 */
import { ENV, JOB_ENV } from '../../contract.ts';
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
    { name: JOB_ENV.dispatchId, value: run.dispatch.dispatchId },
    { name: JOB_ENV.nodeId, value: String(run.node.id) },
    { name: JOB_ENV.lattice, value: run.graph.lattice },
    { name: JOB_ENV.electron, value: run.node.electron },
    { name: JOB_ENV.attempt, value: String(run.item.attempts || 1) },
    { name: JOB_ENV.graceSeconds, value: String(run.node.graceSeconds) },
    { name: ENV.bucket, value: run.ctx.config.bucket },
    { name: ENV.table, value: run.ctx.config.table },
    ...(run.graph.buildArgs === undefined ? [] : [{ name: JOB_ENV.childDispatch, value: '1' }]),
  ];
}
