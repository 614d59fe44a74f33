/**
 * "Deploying" a workflows module onto the local cloud, resource for resource what
 * `cdk deploy` creates on AWS (see infra/): the table with its indexes, the payload bucket,
 * the four handlers (from code, with the environment infra gives them), one state machine per
 * lattice plus the graph runner, the cancel API, the event rules, a Batch queue and job
 * definition whose command is valence's job runner, the sweeper's schedule, and the stack
 * outputs that `connect({ stackName })` reads.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, UpdateStateMachineCommand } from '@aws-sdk/client-sfn';
import { CreateComputeEnvironmentCommand, CreateJobQueueCommand, DescribeComputeEnvironmentsCommand, DescribeJobQueuesCommand, RegisterJobDefinitionCommand } from '@aws-sdk/client-batch';
import { PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { compileGraphRunner, compileLattice } from '../sdk/compiler/index.ts';
import { bundledHandler } from './handler-bundles.ts';
import { templateOrUndefined } from '../sdk/model/shape.ts';
import { API, ENV, GRAPH_RUNNER_NAME, OUTPUT, TABLE, DEFAULTS, stateMachineName, toEnvironment } from '../sdk/contract.ts';
import { importWorkflows, latticesOf } from '../sdk/runtime/workflows.ts';
import type { LocalCloud } from './cloud.ts';

/** Names of what a local deploy creates. */
export interface LocalDeployment {
  readonly stackName: string;
  readonly tableName: string;
  readonly bucketName: string;
  readonly apiUrl: string;
  readonly stateMachines: Readonly<Record<string, string>>;
  readonly graphRunnerArn: string;
  readonly jobQueueArn: string;
  readonly jobDefinitionArn: string;
  readonly functions: { readonly step: string; readonly cancel: string; readonly completion: string; readonly sweeper: string };
  /** Stops the sweeper's schedule. */
  stop(): Promise<void>;
}

/** Options of {@link deployWorkflows}. */
export interface LocalDeployOptions {
  /** @default 'valence' */
  readonly stackName?: string;
  /**
   * The sweeper's schedule (its EventBridge rate rule on AWS): every `intervalMs`, or `false`
   * for none, so that a test decides when a sweep happens by invoking the sweeper itself.
   * @default { intervalMs: 30000 }
   */
  readonly sweeper?: LocalSweeperSchedule | false;
  /** When lattices, and graphs the graph runner runs, are split into partitions (the compiler's `partition` option). @default the compiler's */
  readonly partition?: false | { readonly above?: number; readonly chunkSize?: number };
  /**
   * Reserved concurrency of the step handler. Unset, it has the account's 1,000, as on AWS; the
   * local pool grows toward that only as fast as sandboxes can start (localstack/lambda/pool.ts).
   * @default process.env.VALENCE_LOCAL_STEP_CONCURRENCY, else unreserved
   */
  readonly stepConcurrency?: number;
  /**
   * Run each handler as one esbuild bundle with the workflows module inside, as `cdk deploy`
   * ships it: a cold sandbox then loads in a fifth of the CPU. `false` (or
   * `VALENCE_LOCAL_BUNDLE=0`) loads them from source through tsx.
   * @default true when esbuild is installed
   */
  readonly bundle?: boolean;
  /** The workflows module already imported (`valence local --watch` passes a fresh import of a changed file). @default imported from `workflowsPath` */
  readonly module?: Record<string, unknown>;
}

/** How often the local deploy runs the sweeper. */
export interface LocalSweeperSchedule {
  /** @default 30000 */
  readonly intervalMs?: number;
}

/** The sweeper's interval when a schedule is asked for without one. */
export const DEFAULT_SWEEP_INTERVAL_MS = 30_000;

const REPO = fileURLToPath(new URL('..', import.meta.url));
// valence's own modules are `.ts` from source and `.js` in the published build (dist/).
const OWN_EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
/** A module of valence's, `name` without its extension. */
const entry = (name: string): string => resolve(REPO, `${name}${OWN_EXT}`);

let typescriptLoader: Promise<void> | undefined;

/**
 * From the published build, a TypeScript workflows module is loaded through tsx, registered
 * here once; from source, the process already runs under a TypeScript loader (tsx, vitest).
 */
function ensureTypeScriptLoader(workflows: string): Promise<void> {
  if (OWN_EXT === '.ts' || !/\.[cm]?tsx?$/.test(workflows)) return Promise.resolve();
  return (typescriptLoader ??= import('tsx/esm/api').then(({ register }) => {
    register();
  }));
}

/** Deploys the lattices of `workflowsPath` onto `cloud`. */
export async function deployWorkflows(cloud: LocalCloud, workflowsPath: string, options: LocalDeployOptions = {}): Promise<LocalDeployment> {
  const stackName = options.stackName ?? DEFAULTS.stackName;
  const workflows = resolve(workflowsPath);
  let module = options.module;
  if (module === undefined) {
    await ensureTypeScriptLoader(workflows);
    module = await importWorkflows(pathToFileURL(workflows).href);
  }
  const lattices = latticesOf(module);
  const { region, accountId } = cloud;
  const tableName = `${stackName}-table`;
  const bucketName = `${stackName}-payloads-${accountId}`;
  const stateMachineArnOf = (name: string): string => `arn:aws:states:${region}:${accountId}:stateMachine:${stateMachineName(stackName, name)}`;
  const stateMachinePrefix = stateMachineArnOf('');
  const graphRunnerArn = stateMachineArnOf(GRAPH_RUNNER_NAME);
  const jobQueue = `${stackName}-queue`;
  const jobDefinition = `${stackName}-node-runner`;

  await createTable(cloud, tableName);
  await cloud.clients.s3.send(new CreateBucketCommand({ Bucket: bucketName })).catch((error: unknown) => {
    if (!/BucketAlready/.test((error as Error).name)) throw error;
  });

  // Batch: a queue and a job definition whose command is the job runner.
  const batch = cloud.clients.batch;
  // A redeploy (`valence local --watch`) finds both from the first deploy, as CloudFormation would keep them.
  const ce =
    (await batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: [`${stackName}-ce`] }))).computeEnvironments?.[0] ??
    (await batch.send(new CreateComputeEnvironmentCommand({ computeEnvironmentName: `${stackName}-ce`, type: 'MANAGED', computeResources: { type: 'FARGATE', maxvCpus: 256, subnets: ['subnet-local'], securityGroupIds: ['sg-local'] } })));
  const queue =
    (await batch.send(new DescribeJobQueuesCommand({ jobQueues: [jobQueue] }))).jobQueues?.[0] ??
    (await batch.send(new CreateJobQueueCommand({ jobQueueName: jobQueue, priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: ce.computeEnvironmentArn! }] })));
  // Queues that electrons name (BatchExecutor's jobQueue) exist too, as the user's would on AWS.
  for (const name of namedJobQueues(lattices)) {
    if (name === jobQueue || name === queue.jobQueueArn) continue;
    await batch.send(new CreateJobQueueCommand({ jobQueueName: name.replace(/^arn:.*job-queue\//, ''), priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: ce.computeEnvironmentArn! }] })).catch((error: unknown) => {
      if (!/already exists/i.test((error as Error).message)) throw error;
    });
  }
  // Each handler as one bundle with the workflows module inside, as `cdk deploy` ships it
  // (see handler-bundles.ts); from source when esbuild is not installed, or when asked. The
  // job runner's bundle comes first: the step handler's bundle names it for LocalExecutors.
  const names = ['step', 'cancel', 'completion', 'sweeper'] as const;
  const bundling = options.bundle !== false && process.env.VALENCE_LOCAL_BUNDLE !== '0';
  const jobBundle = bundling ? await bundledHandler('job', workflows) : undefined;
  const bundles = bundling
    ? await Promise.all(names.map((name) => bundledHandler(name, workflows, jobBundle === undefined ? {} : { jobRunner: jobBundle })))
    : names.map(() => undefined);
  const bundled = Object.fromEntries(names.map((name, i) => [name, bundles[i]])) as Record<(typeof names)[number], string | undefined>;
  const definition = await batch.send(
    new RegisterJobDefinitionCommand({
      jobDefinitionName: jobDefinition,
      type: 'container',
      platformCapabilities: ['FARGATE'],
      containerProperties: {
        image: 'valence-job-runner:local',
        // The job runner's bundle under plain node, as the job image runs `node /app/job.mjs`;
        // from source, tsx's loader as an absolute URL, so job processes load TypeScript whatever their cwd.
        command: jobBundle !== undefined ? [process.execPath, jobBundle] : [process.execPath, '--import', import.meta.resolve('tsx'), entry('sdk/runtime/job-runner')],
        environment: [{ name: ENV.workflows, value: workflows }],
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '2048' },
        ],
      },
    }),
  );

  const environment: Record<string, string> = {
    ...toEnvironment({
      table: tableName,
      bucket: bucketName,
      stackName,
      stateMachinePrefix,
      graphRunnerArn,
      jobQueue: queue.jobQueueArn!,
      jobDefinition: definition.jobDefinitionArn!,
    }),
    [ENV.workflows]: workflows,
  };
  cloud.setEnvironment({ [ENV.table]: tableName, [ENV.bucket]: bucketName, [ENV.stackName]: stackName });

  const lambda = cloud.services.lambda;
  if (!lambda) throw new Error('the local Lambda service is not available');
  // A bundle has the module inside: importing it again by path would load a second copy.
  const { [ENV.workflows]: _inside, ...bundledEnvironment } = environment;
  const fn = (name: (typeof names)[number], extra: { timeoutSeconds?: number; reservedConcurrency?: number } = {}) =>
    lambda.register({
      functionName: `${stackName}-${name}`,
      entry: bundled[name] ?? entry(`lambdas/${name}`),
      environment: bundled[name] ? bundledEnvironment : environment,
      timeoutSeconds: extra.timeoutSeconds ?? 900,
      ...(extra.reservedConcurrency ? { reservedConcurrency: extra.reservedConcurrency } : {}),
    });
  // Unreserved by default, as the CDK stack deploys it: the account's concurrency (see localstack/lambda).
  const stepReserved = options.stepConcurrency ?? (process.env.VALENCE_LOCAL_STEP_CONCURRENCY ? Number(process.env.VALENCE_LOCAL_STEP_CONCURRENCY) : undefined);
  const step = fn('step', stepReserved ? { reservedConcurrency: stepReserved } : {});
  const cancel = fn('cancel', { timeoutSeconds: 29 });
  const completion = fn('completion', { timeoutSeconds: 60 });
  const sweeper = fn('sweeper', { timeoutSeconds: 300, reservedConcurrency: 1 });

  // State machines: one per lattice, and the graph runner for sublattices.
  const sfn = cloud.clients.sfn;
  const roleArn = `arn:aws:iam::${accountId}:role/${stackName}-states`;
  const put = async (name: string, definition: object): Promise<string> => {
    const arn = stateMachineArnOf(name);
    try {
      await sfn.send(new CreateStateMachineCommand({ name: stateMachineName(stackName, name), definition: JSON.stringify(definition), roleArn, type: 'STANDARD' }));
    } catch (error) {
      if ((error as Error).name !== 'StateMachineAlreadyExists') throw error;
      await sfn.send(new UpdateStateMachineCommand({ stateMachineArn: arn, definition: JSON.stringify(definition) }));
    }
    return arn;
  };
  const stateMachines: Record<string, string> = {};
  for (const lattice of lattices) {
    // An argument-shaped lattice has no state machine of its own: each dispatch builds its graph and runs it on the graph runner.
    const template = templateOrUndefined(lattice);
    if (template === undefined) continue;
    const compiled = compileLattice(template, { stepHandlerArn: step, ...(options.partition === undefined ? {} : { partition: options.partition }) });
    stateMachines[lattice.name] = await put(lattice.name, compiled.definition);
  }
  await put(GRAPH_RUNNER_NAME, compileGraphRunner({ stepHandlerArn: step, ...(options.partition === undefined ? {} : { partition: options.partition }) }).definition);

  // The dispatch, cancel and status API, AWS_IAM-authorized.
  const api = cloud.services.apigateway;
  if (!api) throw new Error('the local API Gateway is not available');
  const apiId = api.createRestApi(`${stackName}-api`);
  api.addRoute(apiId, { method: 'POST', path: API.dispatchPath, functionName: `${stackName}-cancel` });
  api.addRoute(apiId, { method: 'POST', path: API.uploadPath, functionName: `${stackName}-cancel` });
  api.addRoute(apiId, { method: 'POST', path: API.cancelPath, functionName: `${stackName}-cancel` });
  api.addRoute(apiId, { method: 'GET', path: API.statusPath, functionName: `${stackName}-cancel` });
  api.addRoute(apiId, { method: 'GET', path: API.cancelReportPath, functionName: `${stackName}-cancel` });
  const apiUrl = api.invokeUrl(apiId, cloud.endpoint, API.stage);

  // State-change events to the completion handler.
  const events = cloud.clients.eventbridge;
  const rules: [string, object][] = [
    [`${stackName}-batch-events`, { source: ['aws.batch'], 'detail-type': ['Batch Job State Change'] }],
    [`${stackName}-braket-events`, { source: ['aws.braket'], 'detail-type': ['Braket Task State Change', 'Braket Job State Change'] }],
  ];
  for (const [name, pattern] of rules) {
    await events.send(new PutRuleCommand({ Name: name, EventPattern: JSON.stringify(pattern), State: 'ENABLED' }));
    await events.send(new PutTargetsCommand({ Rule: name, Targets: [{ Id: 'completion', Arn: completion }] }));
  }

  cloud.services.cloudformation.putStack(stackName, {
    [OUTPUT.apiUrl]: apiUrl,
    [OUTPUT.tableName]: tableName,
    [OUTPUT.bucketName]: bucketName,
    [OUTPUT.stateMachineArnPrefix]: stateMachinePrefix,
    [OUTPUT.graphRunnerArn]: graphRunnerArn,
    [OUTPUT.jobQueueArn]: queue.jobQueueArn!,
  });

  const schedule = scheduleSweeper(() => lambda.invoke(sweeper, {}), options.sweeper ?? {});

  return {
    stackName,
    tableName,
    bucketName,
    apiUrl,
    stateMachines,
    graphRunnerArn,
    jobQueueArn: queue.jobQueueArn!,
    jobDefinitionArn: definition.jobDefinitionArn!,
    functions: { step, cancel, completion, sweeper },
    stop: schedule.stop,
  };
}

/**
 * Runs `sweep` every `schedule.intervalMs` (one at a time; a failed sweep is the next one's
 * to repeat, as with EventBridge's `retryAttempts: 0`), or never when `schedule` is false.
 */
function scheduleSweeper(sweep: () => Promise<unknown>, schedule: LocalSweeperSchedule | false): { readonly stop: () => Promise<void> } {
  if (schedule === false) return { stop: () => Promise.resolve() };
  let sweeping = Promise.resolve();
  const timer = setInterval(() => {
    sweeping = sweeping.then(() => sweep().then(() => undefined, () => undefined));
  }, schedule.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await sweeping;
    },
  };
}

/** The job queues BatchExecutors of these lattices name (templates that cannot be built are skipped). */
function namedJobQueues(lattices: readonly { template(): { nodes: readonly { executor: { kind: string; options: Record<string, unknown> } }[] } }[]): Set<string> {
  const names = new Set<string>();
  for (const lattice of lattices) {
    let nodes;
    try {
      nodes = lattice.template().nodes;
    } catch {
      continue;
    }
    for (const node of nodes) {
      const queue = node.executor.kind === 'batch' ? node.executor.options['jobQueue'] : undefined;
      if (typeof queue === 'string') names.add(queue);
    }
  }
  return names;
}

async function createTable(cloud: LocalCloud, tableName: string): Promise<void> {
  const dynamodb = cloud.clients.dynamodb;
  const { byJobHandle, byList } = TABLE.indexes;
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: TABLE.partitionKey, AttributeType: 'S' },
          { AttributeName: TABLE.sortKey, AttributeType: 'S' },
          { AttributeName: byJobHandle.partitionKey, AttributeType: 'S' },
          { AttributeName: byList.partitionKey, AttributeType: 'S' },
          { AttributeName: byList.sortKey, AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          { IndexName: byJobHandle.name, KeySchema: [{ AttributeName: byJobHandle.partitionKey, KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } },
          {
            IndexName: byList.name,
            KeySchema: [
              { AttributeName: byList.partitionKey, KeyType: 'HASH' },
              { AttributeName: byList.sortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
  } catch (error) {
    if ((error as Error).name !== 'ResourceInUseException') throw error;
  }
  for (let i = 0; i < 100; i++) {
    const table = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    if (table.Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
