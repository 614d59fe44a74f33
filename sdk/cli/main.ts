/**
 * The `valence` command: run the local cloud, dispatch lattices, watch and read dispatches,
 * cancel them, and show what a lattice compiles to.
 *
 * Exit codes: 0 success; 1 the workflow failed or was cancelled (for `--watch` and `result`),
 * or something unexpected broke; 2 a usage or input error, printed as one line with the fix.
 */
import { DEFAULTS, ENV } from '../contract.ts';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ConnectOptions, ValenceClient } from '../client/index.ts';
import { loopbackCredentials } from '../client/connection.ts';
import type { Lattice } from '../model/lattice.ts';
import { CliUsageError, describeFailure, ExitCode } from './errors.ts';
import { cancelProgressBar } from './cancel-progress.ts';
import { scaffoldProject } from './init.ts';
import { renderCancelReport, renderDispatchList, renderFrame, renderGraph, renderSummary, toJson, treeJson } from './format.ts';
import { fetchTree, watchDispatch } from './watch.ts';
import { REDISPATCH_USAGE, runRedispatch } from './commands/redispatch.ts';
// The client (and with it the AWS SDK), the workflows loader and the compiler are imported
// where a command first needs them: `--help`, `init` and input caught by the checks before
// the first request start in a fraction of the time, without loading the AWS SDK.

// valence's own modules: `.ts` from source, `.js` in the published build (dist/).
const OWN_EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** Where the CLI writes; tests and embedders pass their own. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

const CONNECTION_OPTIONS: Record<string, OptionSpec> = {
  endpoint: { type: 'string' },
  region: { type: 'string' },
  stack: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

interface Command {
  readonly usage: string;
  readonly options: Record<string, OptionSpec>;
  readonly run: (args: ParsedArgs, io: CliIo) => Promise<number>;
}

interface ParsedArgs {
  readonly positionals: string[];
  readonly values: Record<string, string | boolean | string[] | undefined>;
}

const COMMON_HELP = `Options for every command:
  --endpoint URL   endpoint of a local cloud or LocalStack (default: $AWS_ENDPOINT_URL, else AWS)
  --region NAME    AWS region (default: $AWS_REGION, else the profile's region in ~/.aws/config, else us-east-1)
  --stack NAME     valence stack name (default: $VALENCE_STACK, else valence)
  --json           machine-readable output
  -h, --help       this help`;

const USAGE = `Usage: valence <command> [options]
       valence --version

Commands:
  init DIR                                      write a new project into DIR (new or empty): workflows,
                                                a CDK app, a demo on the local cloud, a test
  local [--workflows FILE] [--watch]            run the local cloud in the foreground and deploy the
                                                workflows module (--watch: again on every save; --json:
                                                one line with its endpoint and keys)
  dispatch LATTICE [ARGS_JSON...] [--watch]     start a run; prints its dispatch id
  status ID [--watch]                           every task of a dispatch, with its status
  result ID                                     wait for a dispatch and print its result
  list [--limit N]                              the newest dispatches
  cancel ID [--task N]... [--reason TEXT] [--force]  cancel a dispatch, or some of its tasks
  redispatch ID [--args JSON] [--dry-run]       run it again, reusing what completed
  graph LATTICE [--asl | --dot]                 a lattice's graph or its state machine
  ui [--port N]                                 the dashboard on 127.0.0.1; prints its URL

${COMMON_HELP}

Exit codes: 0 success, 1 the workflow failed or was cancelled, 2 usage or input error.
Try: valence local --workflows examples/demo-workflows.ts   (then, in another shell)
     valence dispatch demo-pipeline 200 --watch --endpoint http://127.0.0.1:4566`;

const WORKFLOWS_HELP = `  --workflows FILE module exporting the lattice (default: $VALENCE_WORKFLOWS, else ./workflows.ts or ./examples/index.ts)`;

const COMMANDS: Record<string, Command> = {
  dispatch: {
    usage: `Usage: valence dispatch LATTICE [ARGS_JSON...] [--workflows FILE] [--watch]

Starts a run of LATTICE with the given arguments, each one JSON value ('200', '"text"',
'{"a": [1, 2]}'); put a -- before arguments that start with a dash. Prints the dispatch id.
  --watch          follow the run in the live view; exit 0 if it completed, 1 otherwise
${WORKFLOWS_HELP}

${COMMON_HELP}`,
    options: { workflows: { type: 'string' }, watch: { type: 'boolean' }, interval: { type: 'string' } },
    run: runDispatch,
  },
  status: {
    usage: `Usage: valence status ID [--watch]

Shows every task of dispatch ID (and of its sublattices) with status, executor, time and job.
  --watch          follow it live until it ends; exit 0 if it completed, 1 otherwise

${COMMON_HELP}`,
    options: { watch: { type: 'boolean' }, interval: { type: 'string' } },
    run: runStatus,
  },
  result: {
    usage: `Usage: valence result ID [--timeout SECONDS]

Waits for dispatch ID to end and prints its result; exits 1 if it failed or was cancelled.
  --timeout SECONDS  give up waiting after this long (default 600)

${COMMON_HELP}`,
    options: { timeout: { type: 'string' } },
    run: runResult,
  },
  list: {
    usage: `Usage: valence list [--limit N]

Lists the newest dispatches.
  --limit N        how many (default 20)

${COMMON_HELP}`,
    options: { limit: { type: 'string' } },
    run: runList,
  },
  cancel: {
    usage: `Usage: valence cancel ID [--task N]... [--reason TEXT] [--force]

Cancels dispatch ID, or only the given tasks and everything downstream of them, and prints
what happened to each task.
  --task N         a task id, or a path into a sublattice such as 3/1 (repeatable)
  --reason TEXT    why; recorded with the request
  --force          skip the grace period: kill running work at once

${COMMON_HELP}`,
    options: { task: { type: 'string', multiple: true }, reason: { type: 'string' }, force: { type: 'boolean' } },
    run: runCancel,
  },
  redispatch: {
    usage: `${REDISPATCH_USAGE}\n\n${COMMON_HELP}`,
    options: { args: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'no-reuse': { type: 'boolean' }, workflows: { type: 'string' } },
    run: (args, io) => runRedispatch({ withClient, findLattice, print: (text) => print(io, text) }, args),
  },
  graph: {
    usage: `Usage: valence graph LATTICE [--asl | --dot] [--workflows FILE]

Prints a lattice's transport graph; --asl prints the Step Functions state machine it compiles
to, --dot the graph in Graphviz format. Needs no running stack.
${WORKFLOWS_HELP}

${COMMON_HELP}`,
    options: { workflows: { type: 'string' }, asl: { type: 'boolean' }, dot: { type: 'boolean' } },
    run: runGraph,
  },
  ui: {
    usage: `Usage: valence ui [--port N]

Serves the dashboard (live graph, cancel, audit trail) on 127.0.0.1 and prints its URL; opens
nothing. Calls go through the SDK client with your credentials; they never reach the browser.
  --port N         port to listen on (default: a free one)

${COMMON_HELP}`,
    options: { port: { type: 'string' } },
    // The dashboard lives in ui/, loaded only when asked for: the SDK does not depend on it.
    run: async (args, io) => {
      const { runDashboardCli } = (await import(new URL(`../../ui/server/cli${OWN_EXT}`, import.meta.url).href)) as typeof import('../../ui/server/cli.ts');
      return runDashboardCli({ connect: connectionOptions(args.values), port: positiveNumber(args.values.port, '--port', 0), stdout: (text) => void io.stdout.write(`${text}\n`) });
    },
  },
};

/**
 * Runs the `valence` command with `argv` (the arguments after the program name) and resolves
 * with the exit code. Never throws: every failure becomes one line on stderr.
 */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  const line = (stream: NodeJS.WritableStream, text: string): void => void stream.write(`${text}\n`);
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    line(name === undefined ? io.stderr : io.stdout, USAGE);
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    line(io.stdout, packageVersion());
    return ExitCode.Ok;
  }
  if (name === 'local') return runLocal(rest, io);
  if (name === 'init') return runInit(rest, io);
  const command = COMMANDS[name];
  if (!command) {
    line(io.stderr, `valence: unknown command "${name}". Commands: local, ${Object.keys(COMMANDS).join(', ')}; see valence --help`);
    return ExitCode.Usage;
  }
  let parsed: ParsedArgs;
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...CONNECTION_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    parsed = { values: values as ParsedArgs['values'], positionals };
  } catch (error) {
    // parseArgs explains in its first sentence; the rest is about `--` separators.
    const message = (error as Error).message.split('. ')[0]!.replace(/\.$/, '');
    line(io.stderr, `valence ${name}: ${message}. See valence ${name} --help`);
    return ExitCode.Usage;
  }
  if (parsed.values.help) {
    line(io.stdout, command.usage);
    return ExitCode.Ok;
  }
  try {
    return await command.run(parsed, io);
  } catch (error) {
    const { line: text, exitCode } = describeFailure(error);
    line(io.stderr, text);
    if (process.env.VALENCE_DEBUG && error instanceof Error && error.stack) line(io.stderr, error.stack);
    return exitCode;
  }
}

/**
 * The version of the installed valence package: the nearest package.json named `valence` above
 * this file, so it reads the same from the sources and from a built package.
 */
function packageVersion(): string {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    const file = new URL('package.json', dir);
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'valence' && manifest.version) return manifest.version;
    }
    if (new URL('../', dir).href === dir.href) return 'unknown';
  }
}

const INIT_USAGE = `Usage: valence init DIR

Writes a new valence project into DIR, which must be new or empty: package.json, tsconfig.json,
src/workflows.ts (a Lambda, a Batch and a Braket electron), bin/app.ts (the CDK app), demo.ts
(runs the workflow on the local cloud), a test, and a README. Then: cd DIR && npm install && npm run demo`;

/** `valence init DIR`. */
function runInit(argv: string[], io: CliIo): number {
  const line = (stream: NodeJS.WritableStream, text: string): void => void stream.write(`${text}\n`);
  if (argv.includes('--help') || argv.includes('-h')) {
    line(io.stdout, INIT_USAGE);
    return ExitCode.Ok;
  }
  const [target, ...extra] = argv;
  try {
    if (target === undefined || target.startsWith('-')) throw new CliUsageError('init needs a folder to write the project into, e.g. valence init my-project');
    if (extra.length > 0) throw new CliUsageError(`init takes one folder, got also ${extra.join(' ')}`);
    const { dir, files } = scaffoldProject(target, packageVersion());
    line(io.stdout, [`wrote ${files.length} files to ${dir}:`, ...files.map((file) => `  ${file}`), 'Next:', `  cd ${target} && npm install && npm run demo && npm test`].join('\n'));
    return ExitCode.Ok;
  } catch (error) {
    const { line: text, exitCode } = describeFailure(error);
    line(io.stderr, text);
    return exitCode;
  }
}

/** `valence local`: the local cloud lives in localstack/, loaded only when asked for. */
async function runLocal(argv: string[], io: CliIo): Promise<number> {
  const url = new URL(`../../localstack/cli${OWN_EXT}`, import.meta.url);
  if (!existsSync(url)) {
    io.stderr.write('valence local: this installation has no local cloud (localstack/ is missing)\n');
    return ExitCode.Failed;
  }
  // The local cloud's emulators are optional peers: a missing one is named in one line, no stack.
  const loaded: unknown = await import(url.href).catch((error: unknown) => {
    io.stderr.write(`valence local: ${error instanceof Error ? error.message : String(error)}\n`);
    return undefined;
  });
  if (!loaded) return ExitCode.Failed;
  const { runLocalCloudCli } = loaded as {
    runLocalCloudCli: (
      argv: readonly string[],
      io?: {
        stdout?: (line: string) => void;
        stderr?: (line: string) => void;
        onReady?: (cloud: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string }; adminToken: string }) => void;
      },
    ) => Promise<number>;
  };
  const json = argv.includes('--json');
  const rest = argv.filter((arg) => arg !== '--json');
  return runLocalCloudCli(rest, {
    // With --json, the one line printed is the connection a program needs.
    stdout: (text) => void (json && !rest.includes('--help') && !rest.includes('-h') ? undefined : io.stdout.write(`${text}\n`)),
    stderr: (text) => void io.stderr.write(`${text}\n`),
    ...(json
      ? {
          onReady: (cloud) =>
            void io.stdout.write(
              `${toJson({ endpoint: cloud.endpoint, region: cloud.region, accessKeyId: cloud.credentials.accessKeyId, secretAccessKey: cloud.credentials.secretAccessKey, adminToken: cloud.adminToken }, 0)}\n`,
            ),
        }
      : {}),
  });
}

/**
 * Connection options from flags and environment. A loopback endpoint gets test credentials
 * and the region comes from the profile chain, both decided by `connect()` itself.
 */
export function connectionOptions(values: ParsedArgs['values'], env: NodeJS.ProcessEnv = process.env): ConnectOptions {
  const endpoint = (values.endpoint as string | undefined) ?? env.AWS_ENDPOINT_URL;
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new CliUsageError(`--endpoint "${endpoint}" is not a URL; use e.g. http://127.0.0.1:4566`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliUsageError(`--endpoint "${endpoint}" must be an http:// or https:// URL`);
  }
  const credentials = loopbackCredentials(endpoint, env);
  return {
    ...(endpoint ? { endpoint } : {}),
    ...(values.region ? { region: values.region as string } : {}),
    ...(values.stack ? { stackName: values.stack as string } : {}),
    ...(credentials ? { credentials } : {}),
  };
}

async function withClient<T>(values: ParsedArgs['values'], use: (client: ValenceClient) => Promise<T>): Promise<T> {
  const options = connectionOptions(values);
  const { connect } = await import('../client/index.ts');
  const client = connect(options);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

function onePositional(args: ParsedArgs, what: string, command: string): string {
  const [value, ...extra] = args.positionals;
  if (value === undefined) throw new CliUsageError(`${command} needs ${what}; see valence ${command} --help`);
  if (extra.length > 0) throw new CliUsageError(`${command} takes one ${what}, got also ${extra.map((e) => JSON.stringify(e)).join(' ')}`);
  return value;
}

function positiveNumber(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new CliUsageError(`${flag} must be a positive number, got "${typeof value === 'string' ? value : JSON.stringify(value)}"`);
  return n;
}

function print(io: CliIo, lines: string | readonly string[]): void {
  io.stdout.write(`${typeof lines === 'string' ? lines : lines.join('\n')}\n`);
}

/** The workflows module to load: the flag, `$VALENCE_WORKFLOWS`, or a conventional file. */
function workflowsPath(values: ParsedArgs['values']): string {
  const given = (values.workflows as string | undefined) ?? process.env[ENV.workflows];
  if (given) {
    const path = resolve(given);
    if (!existsSync(path)) throw new CliUsageError(`workflows module ${path} does not exist; pass --workflows FILE`);
    return path;
  }
  for (const candidate of ['workflows.ts', 'examples/index.ts']) {
    if (existsSync(resolve(candidate))) return resolve(candidate);
  }
  throw new CliUsageError('no workflows module found here; pass --workflows FILE (a module that exports lattices) or set VALENCE_WORKFLOWS');
}

async function findLattice(values: ParsedArgs['values'], name: string): Promise<Lattice> {
  const path = workflowsPath(values);
  const { importWorkflows, latticesOf } = await import('../runtime/workflows.ts');
  let module: Record<string, unknown>;
  try {
    module = await importWorkflows(path);
  } catch (error) {
    throw new CliUsageError(`cannot load workflows module ${path}: ${(error as Error).message.split('\n')[0]}`);
  }
  const lattices = latticesOf(module);
  // By lattice name, or by the name it is exported under.
  const found = lattices.find((l) => l.name === name) ?? lattices.find((l) => l === module[name]);
  if (!found) {
    const names = lattices.map((l) => l.name).sort();
    throw new CliUsageError(
      `unknown lattice "${name}" in ${path}; ${names.length > 0 ? `available: ${names.join(', ')}` : 'it exports no lattices'} (or pass --workflows FILE)`,
    );
  }
  return found;
}

function parseJsonArgs(texts: readonly string[]): unknown[] {
  return texts.map((text, index) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new CliUsageError(
        `argument ${index + 1} (${JSON.stringify(text)}) is not valid JSON: ${(error as Error).message}. Quote strings twice, e.g. '"text"'`,
      );
    }
  });
}

async function watchOrPrint(client: ValenceClient, dispatchId: string, args: ParsedArgs, io: CliIo): Promise<number> {
  const json = Boolean(args.values.json);
  const intervalMs = positiveNumber(args.values.interval, '--interval', 0.5) * 1000;
  if (json) {
    // Machine-readable watching prints the final state only.
    const final = await client.getResult(dispatchId, { wait: true });
    const tree = await fetchTree(client, final.dispatchId);
    print(io, toJson(treeJson(tree)));
    return tree.result.status === 'COMPLETED' ? ExitCode.Ok : ExitCode.Failed;
  }
  const tree = await watchDispatch(client, dispatchId, { out: io.stdout, intervalMs });
  return tree.result.status === 'COMPLETED' ? ExitCode.Ok : ExitCode.Failed;
}

async function runDispatch(args: ParsedArgs, io: CliIo): Promise<number> {
  const [name, ...rawArgs] = args.positionals;
  if (name === undefined) throw new CliUsageError('dispatch needs a LATTICE name; see valence dispatch --help');
  const values = parseJsonArgs(rawArgs);
  const lattice = await findLattice(args.values, name);
  if (values.length !== lattice.paramCount) {
    throw new CliUsageError(
      `lattice "${lattice.name}" takes ${lattice.paramCount} argument(s), got ${values.length}; pass each as a JSON value, e.g. valence dispatch ${lattice.name} ${Array.from({ length: lattice.paramCount }, () => '<json>').join(' ')}`,
    );
  }
  return withClient(args.values, async (client) => {
    const { id: dispatchId } = await client.dispatch(lattice as Lattice<unknown[], unknown>)(...values);
    if (!args.values.watch) {
      print(io, args.values.json ? toJson({ dispatchId, lattice: lattice.name }) : dispatchId);
      return ExitCode.Ok;
    }
    if (!args.values.json) print(io, `dispatched ${lattice.name}: ${dispatchId}`);
    return watchOrPrint(client, dispatchId, args, io);
  });
}

async function runStatus(args: ParsedArgs, io: CliIo): Promise<number> {
  const dispatchId = onePositional(args, 'a dispatch ID', 'status');
  return withClient(args.values, async (client) => {
    if (args.values.watch) return watchOrPrint(client, dispatchId, args, io);
    const tree = await fetchTree(client, dispatchId);
    print(io, args.values.json ? toJson(treeJson(tree)) : [...renderFrame(tree), ...(tree.result.status === 'RUNNING' ? [] : renderSummary(tree))]);
    return ExitCode.Ok;
  });
}

async function runResult(args: ParsedArgs, io: CliIo): Promise<number> {
  const dispatchId = onePositional(args, 'a dispatch ID', 'result');
  const timeoutMs = positiveNumber(args.values.timeout, '--timeout', 600) * 1000;
  return withClient(args.values, async (client) => {
    const result = await client.getResult(dispatchId, { wait: true, timeoutMs });
    const ok = result.status === 'COMPLETED';
    if (args.values.json) {
      print(io, toJson({ dispatchId, lattice: result.lattice, status: result.status, result: result.result, error: result.error, startedAt: result.startedAt, endedAt: result.endedAt }));
    } else if (ok) {
      print(io, typeof result.result === 'string' ? result.result : toJson(result.result));
    } else {
      const why = result.error ? `: ${result.error.name}: ${result.error.message}` : '';
      print(io, `dispatch ${dispatchId} (${result.lattice}) ended ${result.status}${why}`);
    }
    return ok ? ExitCode.Ok : ExitCode.Failed;
  });
}

async function runList(args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positionals.length > 0) throw new CliUsageError(`list takes no arguments, got ${args.positionals.join(' ')}`);
  const limit = Math.floor(positiveNumber(args.values.limit, '--limit', 20));
  return withClient(args.values, async (client) => {
    const items = await client.listDispatches({ limit });
    print(io, args.values.json ? toJson(items) : renderDispatchList(items));
    return ExitCode.Ok;
  });
}

const TASK_PATH = /^\d+(\/\d+)*$/;

async function runCancel(args: ParsedArgs, io: CliIo): Promise<number> {
  const dispatchId = onePositional(args, 'a dispatch ID', 'cancel');
  const tasks = (args.values.task as string[] | undefined) ?? [];
  const taskIds = tasks.map((task) => {
    if (!TASK_PATH.test(task)) throw new CliUsageError(`--task "${task}" is not a task id; use a number such as 3, or a path into a sublattice such as 3/1`);
    return task.includes('/') ? task : Number(task);
  });
  return withClient(args.values, async (client) => {
    // A long cancel answers 202 and finishes outside its request: show how far it got.
    const bar = cancelProgressBar(io.stderr);
    const report = await client
      .cancel(dispatchId, {
        ...(taskIds.length > 0 ? { taskIds } : {}),
        ...(args.values.reason ? { reason: args.values.reason as string } : {}),
        ...(args.values.force ? { force: true } : {}),
        onProgress: bar.onProgress,
      })
      .finally(() => bar.done());
    print(io, args.values.json ? toJson(report) : renderCancelReport(report));
    return ExitCode.Ok;
  });
}

async function runGraph(args: ParsedArgs, io: CliIo): Promise<number> {
  const name = onePositional(args, 'a LATTICE name', 'graph');
  if (args.values.asl && args.values.dot) throw new CliUsageError('graph takes --asl or --dot, not both');
  const lattice = await findLattice(args.values, name);
  const graph = lattice.template();
  if (args.values.dot) {
    const { toDot } = await import('../compiler/dot.ts');
    print(io, toDot(graph).trimEnd());
    return ExitCode.Ok;
  }
  if (args.values.asl) {
    const region = (args.values.region as string | undefined) ?? process.env.AWS_REGION ?? 'us-east-1';
    const stack = (args.values.stack as string | undefined) ?? process.env[ENV.stackName] ?? DEFAULTS.stackName;
    const { compileLattice } = await import('../compiler/index.ts');
    const compiled = compileLattice(lattice, { stepHandlerArn: `arn:aws:lambda:${region}:000000000000:function:${stack}-step` });
    print(io, toJson(compiled.definition));
    return ExitCode.Ok;
  }
  print(io, args.values.json ? toJson(graph.toJSON()) : renderGraph(graph, lattice.description));
  return ExitCode.Ok;
}
