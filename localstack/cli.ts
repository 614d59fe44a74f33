/**
 * `valence local`: runs the local cloud in the foreground until SIGINT or SIGTERM.
 *
 * It prints the endpoint and the environment a shell needs, so that in another terminal the
 * SDK, the AWS CLI and valence's own CLI talk to the local cloud with no other change.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
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

const USAGE = `Usage: valence local [--workflows FILE | --assembly DIR] [--port N] [--host H] [--data-dir DIR]

Runs valence's local cloud (DynamoDB, S3, Step Functions, Lambda, Batch, Braket, EventBridge,
API Gateway) on one port until Ctrl+C.

  --workflows FILE  module exporting lattices to deploy at start
  --assembly DIR    deploy the CDK cloud assembly in DIR (after \`npx cdk synth\`: cdk.out) instead
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
  let values: { workflows?: string; assembly?: string; port?: string; host?: string; 'data-dir'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        workflows: { type: 'string' },
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

  let cloud: LocalCloud;
  try {
    cloud = await startLocalCloud({
      port,
      ...(values.host ? { host: values.host } : {}),
      ...(values.workflows ? { workflows: resolve(values.workflows) } : {}),
      ...(values.assembly ? { assembly: resolve(values.assembly) } : {}),
      ...(values['data-dir'] ? { dataDir: resolve(values['data-dir']) } : {}),
      // A developer's cloud repairs what a lost event left, as the deployed stack's schedule does.
      sweeper: { intervalMs: 30_000 },
    });
  } catch (error) {
    err(`valence local: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }

  const hosted = Object.entries(cloud.services)
    .filter(([, service]) => service !== undefined)
    .map(([name]) => name);
  out(`valence local cloud listening on ${cloud.endpoint}`);
  out(`services: ${hosted.join(', ')}`);
  if (cloud.assembly) {
    out(`deployed stack ${cloud.assembly.stackName} from ${values.assembly ?? ''}; not created:`);
    for (const s of cloud.assembly.skipped) out(`  ${s.type} ×${s.logicalIds.length}: ${s.reason}`);
  }
  out('In another shell:');
  out(
    `  export AWS_ENDPOINT_URL=${cloud.endpoint} AWS_REGION=${cloud.region} ` +
      `AWS_ACCESS_KEY_ID=${cloud.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${cloud.credentials.secretAccessKey}`,
  );
  out(`Admin API (${cloud.endpoint}/_valence/): send the header ${ADMIN_TOKEN_HEADER}: ${cloud.adminToken}`);
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
    await cloud.stop();
  } catch (error) {
    err(`valence local: stopping failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  out('stopped');
  return 0;
}
