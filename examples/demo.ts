/**
 * `npm run demo`: valence's cancellation, end to end, on the embedded local cloud.
 *
 * 1. Starts the local cloud (DynamoDB, S3, Step Functions, Lambda, Batch, Braket, …) in this
 *    process and deploys `examples/demo-workflows.ts`, as `cdk deploy` would on AWS.
 * 2. Dispatches `demo-pipeline`: Lambda, Batch and Braket nodes, and a sublattice whose own
 *    nodes run on all three.
 * 3. Shows the live view, and once the sublattice's experiments are under way — a Lambda
 *    electron computing, a Batch job running, a quantum task waiting in the device queue —
 *    cancels that one task. Its child dispatch and the task downstream of it end CANCELLED;
 *    the independent tasks complete.
 * 4. Prints the cancel answer and the final report (how each task was stopped), checks that
 *    no Batch job or quantum task is left running, stops the local cloud, and exits.
 *
 * Exit code 0 when the run went as described, 1 otherwise.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { fileURLToPath } from 'node:url';
import { ListJobsCommand } from '@aws-sdk/client-batch';
import { SearchQuantumTasksCommand } from '@aws-sdk/client-braket';
import { startLocalCloud } from '../localstack/index.ts';
import type { CancelReport } from '../sdk/runtime/cancel.ts';
import { connect } from '../sdk/client/index.ts';
import { renderCancelReport, renderReport, treeRows, watchDispatch, type DispatchTree } from '../sdk/cli/index.ts';
import { demoPipeline } from './demo-workflows.ts';

/** The node of `demo-pipeline` the demo cancels: the `demo-experiments` sublattice. */
export const CANCELLED_TASK = 3;

/**
 * How long a quantum task waits in the local device queue (a real QPU queue is far longer).
 * Long enough that, on a loaded machine, the cancel still reaches the task while it is queued.
 */
const BRAKET_QUEUE_MS = 20_000;
/** Give up (and cancel everything) if the run has not ended by then. */
const DEADLINE_MS = 150_000;

const say = (line = ''): void => void process.stdout.write(`${line}\n`);

/** Runs the demo; resolves with the exit code. */
export async function runDemo(): Promise<number> {
  const started = Date.now();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  const interrupt = new AbortController();
  const onSigint = (): void => interrupt.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);

  say('valence demo: cancel a running task — and everything under it — on Lambda, Batch and Braket');
  const assembly = process.env.VALENCE_ASSEMBLY;
  say(
    assembly
      ? `starting the local cloud and deploying the cloud assembly ${assembly} (what cdk deploy would ship; IAM enforced) …`
      : 'starting the local cloud and deploying examples/demo-workflows.ts …',
  );
  const cloud = await startLocalCloud({
    port: 0,
    // VALENCE_ASSEMBLY=cdk.out runs what `npx cdk synth -c workflows=examples/demo-workflows.ts` produced instead.
    ...(assembly ? { assembly } : { workflows: fileURLToPath(new URL('./demo-workflows.ts', import.meta.url)) }),
    braketQueueDelayMs: BRAKET_QUEUE_MS,
    sweeper: { intervalMs: 30_000 },
  });
  const client = connect({ endpoint: cloud.endpoint, credentials: cloud.credentials });
  let exitCode = 1;
  try {
    say(`local cloud up at ${cloud.endpoint} (${elapsed()})`);
    const { id: dispatchId } = await client.dispatch(demoPipeline)(200);
    say(`dispatched demo-pipeline(200): ${dispatchId}`);
    say();

    const notes: string[] = [];
    let cancelling: Promise<CancelReport> | undefined;
    let readySince: number | undefined;
    let quantumTaskSeen: number | undefined;
    const deadline = AbortSignal.timeout(DEADLINE_MS);

    // Cancel once the three experiments are under way, a moment after all have started,
    // so the cancel lands part-way through their work.
    const decide = (tree: DispatchTree): void => {
      if (cancelling) return;
      const rows = treeRows(tree);
      const row = (path: string) => rows.find((r) => r.path === path)?.node;
      const study = row(String(CANCELLED_TASK));
      if (!study || study.status !== 'RUNNING') return;
      const experiments = [row(`${CANCELLED_TASK}/0`), row(`${CANCELLED_TASK}/1`), row(`${CANCELLED_TASK}/2`)];
      const underWay =
        experiments[0]?.status === 'RUNNING' && experiments.slice(1).every((n) => n?.status === 'RUNNING' && n.jobHandle !== undefined);
      // On a slow machine, do not let the quantum task leave the device queue before the cancel.
      if (experiments[2]?.jobHandle) quantumTaskSeen ??= Date.now();
      const late = Date.now() - started > DEADLINE_MS / 3 || (quantumTaskSeen !== undefined && Date.now() - quantumTaskSeen > BRAKET_QUEUE_MS * 0.5);
      if (!underWay && !late) return;
      readySince ??= Date.now();
      if (Date.now() - readySince < 1_000 && !late) return;
      notes.push(`>> ${elapsed()}: cancelling task ${CANCELLED_TASK} (${study.name}) and everything downstream of it …`);
      cancelling = client.cancel(dispatchId, { taskIds: [CANCELLED_TASK], reason: 'demo: the experiments are no longer needed' });
      cancelling.then(
        (report) => notes.push(`>> ${elapsed()}: cancel answered: ${report.cancelled.map((c) => `${c.id} ${c.method}`).join(', ')}`),
        (error: unknown) => notes.push(`>> cancel failed: ${(error as Error).message}`),
      );
    };

    let tree: DispatchTree;
    try {
      tree = await watchDispatch(client, dispatchId, {
        out: process.stdout,
        intervalMs: 300,
        signal: AbortSignal.any([interrupt.signal, deadline]),
        onSnapshot: decide,
        notes: () => notes,
      });
    } catch (error) {
      say(`\nthe run did not end (${(error as Error).message}); cancelling the whole dispatch`);
      say(renderCancelReport(await client.cancel(dispatchId, { reason: 'demo aborted' })).join('\n'));
      return 1;
    }

    const report = cancelling ? await cancelling : undefined;
    say();
    if (report) {
      say('The cancel answer (what valence did, per task):');
      say(renderCancelReport(report).join('\n'));
      say();
    }
    say(`Final report: ${tree.result.lattice} ${tree.result.dispatchId} ended ${tree.result.status}`);
    say(renderReport(tree).join('\n'));
    say();

    const leftovers = await leftRunning(cloud.clients);
    say(`Left running: ${leftovers.batchJobs} Batch jobs, ${leftovers.quantumTasks} quantum tasks.`);
    const rows = treeRows(tree);
    const cancelled = rows.filter((r) => r.path === String(CANCELLED_TASK) || r.path.startsWith(`${CANCELLED_TASK}/`) || r.path === '4');
    const asExpected =
      tree.result.status === 'CANCELLED' &&
      cancelled.every((r) => r.node.status === 'CANCELLED') &&
      rows.filter((r) => !cancelled.includes(r)).every((r) => r.node.status === 'COMPLETED') &&
      leftovers.batchJobs === 0 &&
      leftovers.quantumTasks === 0;
    exitCode = asExpected ? 0 : 1;
    if (!asExpected) say('Something did not end as expected; see the report above.');
    return exitCode;
  } finally {
    client.close();
    say(`stopping the local cloud … `);
    await cloud.stop();
    process.off('SIGINT', onSigint);
    say(`done in ${elapsed()}${exitCode === 0 ? '' : ' (with problems)'}`);
  }
}

/** Batch jobs and quantum tasks that are still queued or running in the local cloud. */
async function leftRunning(clients: Awaited<ReturnType<typeof startLocalCloud>>['clients']): Promise<{ batchJobs: number; quantumTasks: number }> {
  let batchJobs = 0;
  for (const jobStatus of ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'] as const) {
    const listed = await clients.batch.send(new ListJobsCommand({ jobQueue: 'valence-queue', jobStatus }));
    batchJobs += listed.jobSummaryList?.length ?? 0;
  }
  const tasks = await clients.braket.send(
    new SearchQuantumTasksCommand({ filters: [{ name: 'status', operator: 'EQUAL', values: ['CREATED', 'QUEUED', 'RUNNING', 'CANCELLING'] }] }),
  );
  return { batchJobs, quantumTasks: tasks.quantumTasks?.length ?? 0 };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await runDemo().catch((error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  });
}
