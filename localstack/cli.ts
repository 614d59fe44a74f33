/**
 * `valence local`: runs the local cloud in the foreground until SIGINT or SIGTERM.
 *
 * It prints the endpoint and the environment a shell needs, so that in another terminal the
 * SDK, the AWS CLI and valence's own CLI talk to the local cloud with no other change.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ENV } from '../sdk/contract.ts';
import { defaultLatticeRegistry } from '../sdk/model/lattice.ts';
import { importWorkflows } from '../sdk/runtime/workflows.ts';
import type { LocalDeployment } from './deploy.ts';
import { ADMIN_TOKEN_HEADER, DEFAULT_HOST, DEFAULT_PORT, startLocalCloud } from './index.ts';
import type { LocalCloud } from './index.ts';

/** Where the CLI writes, and how a caller other than a terminal stops it. */
export interface LocalCloudCliIo {
  readonly stdout?: (line: string) => void;
  readonly stderr?: (line: string) => void;
  /** Stops the cloud as SIGINT would (for tests and embedding). */
  readonly signal?: AbortSignal;
  /** Called once the cloud is up. */
  readonly onReady?: (cloud: LocalCloud) => void;
}

const USAGE = `Usage: valence local [--workflows FILE [--watch] | --assembly DIR] [--port N] [--host H] [--data-dir DIR]

Runs valence's local cloud (DynamoDB, S3, Step Functions, Lambda, Batch, Braket, EventBridge,
API Gateway) on one port until Ctrl+C, and prints the stack and lattices it deployed.

  --workflows FILE  module exporting lattices to deploy at start (default: $${ENV.workflows})
  --watch           redeploy whenever that module changes
  --assembly DIR    deploy the CDK cloud assembly in DIR (after \`npx cdk synth\`: cdk.out), with IAM enforced, instead
  --port N          TCP port; 0 picks a free one (default ${DEFAULT_PORT})
  --host H          interface to listen on (default ${DEFAULT_HOST})
  --data-dir DIR    keep DynamoDB tables and S3 buckets in DIR across restarts`;

/**
 * Runs `valence local` with `argv` (the arguments after `local`; a leading `local` is skipped).
 * Resolves with the process exit code once the cloud has stopped.
 */
export async function runLocalCloudCli(argv: readonly string[], io: LocalCloudCliIo = {}): Promise<number> {
  const out = io.stdout ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = io.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  const args = argv[0] === 'local' ? argv.slice(1) : [...argv];
  let values: { workflows?: string; watch?: boolean; assembly?: string; port?: string; host?: string; 'data-dir'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        workflows: { type: 'string' },
        watch: { type: 'boolean' },
        assembly: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    err(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    err(`--port must be an integer from 0 to 65535, got ${values.port}\n\n${USAGE}`);
    return 2;
  }

  if (values.assembly !== undefined && (values.workflows !== undefined || values.watch)) {
    err(`valence local: --assembly deploys what cdk synth made; it cannot be combined with --workflows or --watch\n\n${USAGE}`);
    return 2;
  }
  const assembly = values.assembly === undefined ? undefined : resolve(values.assembly);
  if (assembly && !existsSync(assembly)) {
    err(`valence local: cloud assembly ${assembly} does not exist; run npx cdk synth first, or pass --assembly DIR`);
    return 2;
  }
  // As `valence dispatch` does: the flag, else $VALENCE_WORKFLOWS (not with an assembly, which holds its own).
  const given = assembly ? undefined : (values.workflows ?? process.env[ENV.workflows]);
  const workflows = given ? resolve(given) : undefined;
  if (workflows && !existsSync(workflows)) {
    err(`valence local: workflows module ${workflows} does not exist; pass --workflows FILE`);
    return 2;
  }
  if (values.watch && !workflows) {
    err(`valence local: --watch needs a workflows module to watch; pass --workflows FILE or set ${ENV.workflows}\n\n${USAGE}`);
    return 2;
  }

  let cloud: LocalCloud;
  try {
    cloud = await startLocalCloud({
      port,
      ...(values.host ? { host: values.host } : {}),
      ...(values['data-dir'] ? { dataDir: resolve(values['data-dir']) } : {}),
      // A developer's cloud repairs what a lost event left, as the deployed stack's schedule does.
      ...(assembly ? { assembly, sweeper: { intervalMs: 30_000 } } : {}),
    });
  } catch (error) {
    err(`valence local: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  // The deploy is done here rather than by startLocalCloud, so that --watch can redeploy it.
  let deployment: LocalDeployment | undefined;
  if (workflows) {
    try {
      deployment = await deployOnce(cloud, workflows);
    } catch (error) {
      err(`valence local: deploying ${workflows} failed: ${error instanceof Error ? error.message : String(error)}`);
      await cloud.stop().catch(() => {});
      return 1;
    }
  }

  const hosted = Object.entries(cloud.services)
    .filter(([, service]) => service !== undefined)
    .map(([name]) => name);
  out(`valence local cloud listening on ${cloud.endpoint}`);
  out(`services: ${hosted.join(', ')}`);
  if (cloud.assembly) {
    out(`deployed stack ${cloud.assembly.stackName} from ${assembly ?? ''}; not created:`);
    for (const s of cloud.assembly.skipped) out(`  ${s.type} ×${s.logicalIds.length}: ${s.reason}`);
  }
  out('In another shell:');
  out(
    `  export AWS_ENDPOINT_URL=${cloud.endpoint} AWS_REGION=${cloud.region} ` +
      `AWS_ACCESS_KEY_ID=${cloud.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${cloud.credentials.secretAccessKey}`,
  );
  out(`Admin API (${cloud.endpoint}/_valence/): send the header ${ADMIN_TOKEN_HEADER}: ${cloud.adminToken}`);
  if (deployment) out(deployedLine(deployment, workflows!));
  let watcher: { close(): Promise<void> } | undefined;
  if (values.watch && workflows) {
    let version = 0;
    watcher = watchModule(workflows, async () => {
      version += 1;
      try {
        // A fresh copy of the module (its URL made new), into a registry emptied of the old one's lattices.
        defaultLatticeRegistry.clear();
        const module = await importWorkflows(`${pathToFileURL(workflows).href}?valence-watch=${version}`);
        await deployment?.stop();
        deployment = await deployOnce(cloud, workflows, module);
        out(`re${deployedLine(deployment, workflows)}`);
      } catch (error) {
        err(`valence local: redeploying ${workflows} failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}; fix it and save again`);
      }
    });
    out(`watching ${workflows}: saving it redeploys`);
  }
  out('Press Ctrl+C to stop.');
  io.onReady?.(cloud);

  await new Promise<void>((done) => {
    const finish = () => {
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      io.signal?.removeEventListener('abort', finish);
      done();
    };
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    if (io.signal?.aborted) finish();
    else io.signal?.addEventListener('abort', finish, { once: true });
  });
  out('stopping…');
  try {
    await watcher?.close();
    await deployment?.stop();
    await cloud.stop();
  } catch (error) {
    err(`valence local: stopping failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  out('stopped');
  return 0;
}

/** Deploys `workflows` as the stack `valence` (a developer's cloud sweeps every 30 s, as the deployed stack's schedule does). */
async function deployOnce(cloud: LocalCloud, workflows: string, module?: Record<string, unknown>): Promise<LocalDeployment> {
  // Imported only when needed: deploying loads the SDK compiler and the workflows module.
  const { deployWorkflows } = await import('./deploy.ts');
  return deployWorkflows(cloud, workflows, { sweeper: { intervalMs: 30_000 }, ...(module ? { module } : {}) });
}

/** What a deploy made, in one line: the stack and its lattices. */
function deployedLine(deployment: LocalDeployment, workflows: string): string {
  const lattices = Object.keys(deployment.stateMachines).sort();
  return `deployed stack "${deployment.stackName}" from ${workflows}: ${lattices.length} lattice(s): ${lattices.join(', ') || '(none)'}`;
}

/** How long a burst of file events is waited out before one redeploy (editors write a file in several steps). */
const WATCH_DEBOUNCE_MS = 200;

/**
 * Calls `onChange` once after each burst of changes to `file`, never two at a time. The folder
 * is watched, not the file: editors that save by renaming a new file over the old one would
 * end a watch on the file itself.
 */
function watchModule(file: string, onChange: () => Promise<void>): { close(): Promise<void> } {
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const watcher: FSWatcher = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(onChange);
    }, WATCH_DEBOUNCE_MS);
  });
  return {
    async close() {
      clearTimeout(timer);
      watcher.close();
      await running;
    },
  };
}
