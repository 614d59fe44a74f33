/**
 * One valence handler: a NodejsFunction bundled by the locally installed esbuild (never
 * Docker), with its own role and log group so that each handler's permissions can be read
 * (and tested) on their own.
 */
import { ArnFormat, Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, allow } from './nag.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** What differs between valence's four handlers. */
export interface HandlerFunctionProps {
  /** Entry module exporting `handler`. */
  readonly entry: string;
  /** Folder holding the lockfile the bundle resolves dependencies against. */
  readonly projectRoot: string;
  readonly description: string;
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /**
   * Give the function a fixed name (derived from its construct path, unique in the account and
   * region) so that its own role can be granted rights on it without a dependency cycle: a
   * grant on `functionArn` makes the function wait for its role's policy, which waits for the
   * function. @default a name CloudFormation generates
   */
  readonly fixedName?: boolean;
  /**
   * Files copied into the function's asset beside its bundle (absolute source path, file
   * name in the asset), after esbuild ran: the step handler carries the job runner's bundle
   * that its LocalExecutor child processes run. @default none
   */
  readonly extraFiles?: readonly { readonly source: string; readonly name: string }[];
}

// ESM output keeps `import.meta.url` (the step handler reuses its own bundle as the entry of
// the electron's worker thread) and top-level await in user modules; the banner gives
// CommonJS dependencies bundled into it a `require`.
const ESM_REQUIRE_BANNER =
  "import { createRequire as __valenceCreateRequire } from 'node:module'; const require = __valenceCreateRequire(import.meta.url);";

/** A handler function, its role and its log group. */
export class HandlerFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /** The function's ARN, built from its fixed name (only with `fixedName`), for grants that must not reference the function. */
  readonly nameArn: string | undefined;

  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (valence)`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this log group only.
    allow(this.role, {
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [this.logGroup.logGroupArn],
      wildcardReason: "Log streams of this function's own log group (stream names are chosen by Lambda)",
    });
    const depsLockFilePath = lockFileOf(props.projectRoot);
    const functionName = props.fixedName ? Names.uniqueResourceName(this, { maxLength: 64, separator: '-' }) : undefined;
    this.nameArn = functionName === undefined ? undefined : Stack.of(this).formatArn({ service: 'lambda', resource: 'function', resourceName: functionName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      ...(functionName === undefined ? {} : { functionName }),
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      role: this.role,
      logGroup: this.logGroup,
      timeout: props.timeout,
      memorySize: props.memorySize,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      projectRoot: props.projectRoot,
      ...(depsLockFilePath === undefined ? {} : { depsLockFilePath }),
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        sourceMap: true,
        // Electron names come from function names: esbuild renames colliding ones (batchBeat →
        // batchBeat2), and the job runner, which loads the sources, would not find the electron.
        keepNames: true,
        // The tested SDK version ships in the bundle rather than whatever the runtime carries.
        bundleAwsSDK: true,
        ...(props.extraFiles?.length
          ? {
              commandHooks: {
                beforeBundling: () => [],
                beforeInstall: () => [],
                afterBundling: (_inputDir: string, outputDir: string) => props.extraFiles!.map((f) => `cp ${shellQuote(f.source)} ${shellQuote(`${outputDir}/${f.name}`)}`),
              },
            }
          : {}),
      },
    });
    acknowledge(this.function, 'L1', 'nodejs22.x is the runtime valence is built and tested for (the design pins it); newer runtimes are adopted deliberately, not by default');
  }
}

/** `value` as one POSIX shell word. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The project's lockfile; esbuild resolves the bundle's dependencies from its folder. */
function lockFileOf(projectRoot: string): string | undefined {
  for (const name of ['package-lock.json', 'pnpm-lock.yaml', 'yarn.lock', 'bun.lockb']) {
    const file = join(projectRoot, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}
