/**
 * Deploying a CDK cloud assembly (`cdk synth`'s output) onto the local cloud, from what the
 * templates say rather than from valence's own code path (`localstack/deploy.ts`): what
 * `cdk deploy` would ship — the handlers' bundles, the state machine definitions, the
 * environment, the roles, the API's methods, the event rules — is what runs here.
 *
 * Every resource type is either created, or used by another part of the deploy (roles and
 * policies by IAM enforcement), or listed in {@link AssemblyDeployment.skipped} with the reason,
 * which `startLocalCloud` prints on start: never dropped silently.
 *
 * @module
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateStateMachineCommand } from '@aws-sdk/client-sfn';
import { CreateComputeEnvironmentCommand, CreateJobQueueCommand, RegisterJobDefinitionCommand } from '@aws-sdk/client-batch';
import type { CreateComputeEnvironmentCommandInput, RegisterJobDefinitionCommandInput } from '@aws-sdk/client-batch';
import type { LocalCloud } from '../cloud.ts';
import type { StageThrottling } from '../apigateway/index.ts';
import { evaluateCondition, IntrinsicError, resolveIntrinsics } from './intrinsics.ts';
import type { IntrinsicScope } from './intrinsics.ts';
import { readCloudAssembly } from './manifest.ts';
import type { AssemblyStack, CloudAssembly, CloudFormationTemplate } from './manifest.ts';
import { identityOf } from './resources.ts';
import type { ResourceIdentity } from './resources.ts';

export type { AssemblyApiMethod, AssemblyDeployment, AssemblyFunction, AssemblyRole, RolePolicy } from './types.ts';
import type { AssemblyApiMethod, AssemblyDeployment, AssemblyFunction, AssemblyRole, RolePolicy } from './types.ts';

/** Options of {@link deployAssembly}. */
export interface AssemblyDeployOptions {
  /** Which stack of the assembly. @default its only stack (an error when it holds several) */
  readonly stackName?: string;
  /**
   * Whether `rate(...)` schedules (the sweeper's) fire. Off by default in tests, so that no
   * sweep races what a test observes; the rule is created `DISABLED` then.
   * @default true
   */
  readonly schedules?: boolean;
  /** Extra environment of one function, by role ARN: the role's credentials, when IAM is enforced. */
  readonly roleEnvironment?: (roleArn: string) => Readonly<Record<string, string>>;
  /** Overrides of what the template says, per function logical id (tests: fewer warm workers). */
  readonly reservedConcurrency?: number;
}

/** Resource types that are used by the deploy without being created as a service resource. */
const USED_WITHOUT_CREATING: Readonly<Record<string, string>> = {
  'AWS::IAM::Role': 'roles: their policies are enforced when IAM is on',
  'AWS::IAM::Policy': 'identity policies: enforced on their roles when IAM is on',
  'AWS::IAM::ManagedPolicy': 'identity policies: enforced on their roles when IAM is on',
  'AWS::ApiGateway::Resource': 'API paths: routes of their methods',
  'AWS::ApiGateway::Method': 'created as routes',
  'AWS::ApiGateway::Stage': 'created as the API stage',
  'AWS::ApiGateway::Deployment': 'the stage is deployed with the API',
  'AWS::ApiGateway::RequestValidator': 'applied by its methods',
  'AWS::ApiGateway::Model': 'applied by its methods',
};

/** Why a type is skipped, where the reason is more specific than "not modeled". */
const SKIP_REASONS: Readonly<Record<string, string>> = {
  'AWS::Lambda::Permission': 'resource-based policies are not modeled: services invoke functions in process',
  'AWS::Logs::LogGroup': 'no CloudWatch Logs: function and job output goes to this process',
  'AWS::S3::BucketPolicy': 'bucket policies are not enforced',
  'AWS::ApiGateway::Account': 'API Gateway account settings (CloudWatch role) have no local effect',
  'AWS::EC2::FlowLog': 'no VPC network: jobs run as local processes',
};

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Reads the assembly in `directory` and deploys its stack onto `cloud`. */
export async function deployAssembly(cloud: LocalCloud, directory: string, options: AssemblyDeployOptions = {}): Promise<AssemblyDeployment> {
  const assembly = readCloudAssembly(directory);
  const stack = pickStack(assembly, options.stackName);
  return deployStack(cloud, assembly, stack, options);
}

function pickStack(assembly: CloudAssembly, stackName: string | undefined): AssemblyStack {
  if (stackName !== undefined) {
    const stack = assembly.stacks.find((s) => s.stackName === stackName);
    if (!stack) throw new IntrinsicError(`the cloud assembly has no stack '${stackName}' (it has ${assembly.stacks.map((s) => s.stackName).join(', ')})`);
    return stack;
  }
  if (assembly.stacks.length > 1) throw new IntrinsicError(`the cloud assembly holds ${assembly.stacks.length} stacks (${assembly.stacks.map((s) => s.stackName).join(', ')}): name one`);
  return assembly.stacks[0]!;
}

/** The template's resources with every intrinsic resolved, and the identities they refer to. */
export interface ResolvedTemplate {
  readonly identities: ReadonlyMap<string, ResourceIdentity>;
  readonly resources: Readonly<Record<string, { readonly Type: string; readonly Properties: Record<string, unknown> }>>;
  readonly outputs: Readonly<Record<string, string>>;
  /** Logical ids whose condition is false. */
  readonly excluded: readonly string[];
}

/**
 * Resolves a template: the identity (`Ref`, attributes) of each resource, then every property
 * and output. `overrides` supplies identities the deploy learns only by creating (an API id).
 */
export function resolveTemplate(
  template: CloudFormationTemplate,
  ctx: { readonly stackName: string; readonly region: string; readonly accountId: string },
  overrides: (logicalId: string, type: string) => ResourceIdentity | undefined = () => undefined,
): ResolvedTemplate {
  const identities = new Map<string, ResourceIdentity>();
  const resolving = new Set<string>();
  const conditions = new Map<string, boolean>();
  const pseudo: Record<string, unknown> = {
    'AWS::Region': ctx.region,
    'AWS::AccountId': ctx.accountId,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': ctx.stackName,
    'AWS::StackId': `arn:aws:cloudformation:${ctx.region}:${ctx.accountId}:stack/${ctx.stackName}/local`,
    'AWS::NotificationARNs': [],
  };
  const identity = (logicalId: string): ResourceIdentity => {
    const known = identities.get(logicalId);
    if (known) return known;
    const resource = template.Resources[logicalId];
    if (!resource) throw new IntrinsicError(`a reference names '${logicalId}', which is no resource, parameter or pseudo parameter of the template`);
    if (resolving.has(logicalId)) throw new IntrinsicError(`the name of '${logicalId}' refers to itself`);
    resolving.add(logicalId);
    const props = resource.Properties ?? {};
    const made =
      overrides(logicalId, resource.Type) ??
      identityOf(
        resource.Type,
        logicalId,
        (property) => {
          if (props[property] === undefined) return undefined;
          const value = resolveIntrinsics(props[property], scope);
          return typeof value === 'string' ? value : undefined;
        },
        ctx,
      );
    resolving.delete(logicalId);
    identities.set(logicalId, made);
    return made;
  };
  const scope: IntrinsicScope = {
    region: ctx.region,
    ref(name) {
      if (name in pseudo) return pseudo[name];
      const parameter = template.Parameters?.[name];
      if (parameter) {
        if (parameter.Default === undefined) throw new IntrinsicError(`parameter '${name}' has no default, and the local deploy takes no parameter values`);
        // An SSM-typed parameter's default is the parameter's path (CDK's bootstrap version): its value is not known locally.
        return parameter.Type.startsWith('AWS::SSM::Parameter::Value') ? 'local' : parameter.Default;
      }
      return identity(name).ref;
    },
    getAtt(logicalId, attribute) {
      const value = identity(logicalId).attributes[attribute];
      if (value === undefined) throw new IntrinsicError(`Fn::GetAtt: the local cloud knows no attribute '${attribute}' of ${logicalId} (${template.Resources[logicalId]?.Type ?? 'unknown'})`);
      return value;
    },
    condition(name) {
      const known = conditions.get(name);
      if (known !== undefined) return known;
      const expression = template.Conditions?.[name];
      if (expression === undefined) throw new IntrinsicError(`no condition '${name}' in the template`);
      const value = evaluateCondition(expression, scope);
      conditions.set(name, value);
      return value;
    },
    findInMap(map, top, second) {
      const value = template.Mappings?.[map]?.[top]?.[second];
      if (value === undefined) throw new IntrinsicError(`Fn::FindInMap: no ${map}.${top}.${second}`);
      return value;
    },
  };
  const resources: Record<string, { Type: string; Properties: Record<string, unknown> }> = {};
  const excluded: string[] = [];
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Condition !== undefined && !scope.condition(resource.Condition)) {
      excluded.push(logicalId);
      continue;
    }
    resources[logicalId] = { Type: resource.Type, Properties: (resolveIntrinsics(resource.Properties ?? {}, scope) ?? {}) as Record<string, unknown> };
  }
  const outputs: Record<string, string> = {};
  for (const [key, output] of Object.entries(template.Outputs ?? {})) {
    if (output.Condition !== undefined && !scope.condition(output.Condition)) continue;
    const value = resolveIntrinsics(output.Value, scope);
    outputs[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  for (const logicalId of Object.keys(resources)) identity(logicalId);
  return { identities, resources, outputs, excluded };
}

async function deployStack(cloud: LocalCloud, assembly: CloudAssembly, stack: AssemblyStack, options: AssemblyDeployOptions): Promise<AssemblyDeployment> {
  const { stackName, template } = stack;
  const { region, accountId } = cloud;
  const api = cloud.services.apigateway;
  const staging = mkdtempSync(join(tmpdir(), 'valence-assembly-'));
  const stops: (() => Promise<void> | void)[] = [() => rmSync(staging, { recursive: true, force: true })];
  const stop = async (): Promise<void> => {
    for (const fn of stops.reverse()) await fn();
  };
  try {
    // REST APIs get their id from the service; everything else is named before it exists.
    const apiIds = new Map<string, string>();
    const apiStages = stageNamesByApi(template);
    const apiThrottling = stageThrottlingByApi(template);
    const resolved = resolveTemplate(template, { stackName, region, accountId }, (logicalId, type) => {
      if (type === 'AWS::ApiGateway::RestApi') {
        const name = template.Resources[logicalId]?.Properties?.['Name'];
        const id = api.createRestApi(typeof name === 'string' ? name : `${stackName}-${logicalId}`, apiStages.get(logicalId) ?? []);
        apiIds.set(logicalId, id);
        for (const [stage, throttling] of apiThrottling.get(logicalId) ?? []) api.setThrottling(id, stage, throttling);
        return { ref: id, attributes: { RootResourceId: `${id}-root` } };
      }
      if (type === 'AWS::ApiGateway::Resource') return { ref: `${logicalId}`, attributes: {} };
      return undefined;
    });
    const { resources, identities } = resolved;
    const ofType = (type: string): [string, Record<string, unknown>][] =>
      Object.entries(resources)
        .filter(([, r]) => r.Type === type)
        .map(([id, r]) => [id, r.Properties]);
    const nameOf = (logicalId: string): string => identities.get(logicalId)!.name!;
    const skipped = new Map<string, { logicalIds: string[]; reason: string }>();
    const skip = (type: string, logicalId: string, reason: string): void => {
      const entry = skipped.get(`${type}\n${reason}`) ?? { logicalIds: [], reason };
      entry.logicalIds.push(logicalId);
      skipped.set(`${type}\n${reason}`, entry);
    };

    // Storage.
    for (const [logicalId, props] of ofType('AWS::DynamoDB::Table')) await createTable(cloud, nameOf(logicalId), props);
    for (const [logicalId] of ofType('AWS::S3::Bucket')) {
      await cloud.clients.s3.send(new CreateBucketCommand({ Bucket: nameOf(logicalId) })).catch((error: unknown) => {
        if (!/BucketAlready/.test((error as Error).name)) throw error;
      });
    }

    // Batch: compute environments, queues (and those the stack names but does not define, as
    // the user's own queues exist on AWS), job definitions whose image runs from its build context.
    const batch = cloud.clients.batch;
    let firstComputeEnvironment: string | undefined;
    for (const [logicalId, props] of ofType('AWS::Batch::ComputeEnvironment')) {
      const input = camelize(props) as Record<string, unknown>;
      const made = await batch.send(
        new CreateComputeEnvironmentCommand({ ...input, computeEnvironmentName: nameOf(logicalId), type: textOr(input['type'], 'MANAGED').toUpperCase() } as CreateComputeEnvironmentCommandInput),
      );
      firstComputeEnvironment ??= made.computeEnvironmentArn;
      expectSame(identities.get(logicalId)!.arn, made.computeEnvironmentArn, logicalId);
    }
    const definedQueues = new Set<string>();
    for (const [logicalId, props] of ofType('AWS::Batch::JobQueue')) {
      const order = (props['ComputeEnvironmentOrder'] as { ComputeEnvironment: string; Order: number }[] | undefined) ?? [];
      const made = await batch.send(
        new CreateJobQueueCommand({
          jobQueueName: nameOf(logicalId),
          priority: Number(props['Priority'] ?? 1),
          state: props['State'] === 'DISABLED' ? 'DISABLED' : 'ENABLED',
          computeEnvironmentOrder: order.map((o) => ({ order: Number(o.Order), computeEnvironment: o.ComputeEnvironment })),
        }),
      );
      definedQueues.add(made.jobQueueArn!);
      expectSame(identities.get(logicalId)!.arn, made.jobQueueArn, logicalId);
    }
    const externalQueues: string[] = [];
    if (firstComputeEnvironment) {
      const queuePattern = new RegExp(`^arn:aws:batch:${region}:${accountId}:job-queue/([A-Za-z0-9_-]+)$`);
      for (const arn of new Set(stringsIn(resources))) {
        const match = queuePattern.exec(arn);
        if (!match || definedQueues.has(arn)) continue;
        await batch.send(new CreateJobQueueCommand({ jobQueueName: match[1]!, priority: 1, computeEnvironmentOrder: [{ order: 1, computeEnvironment: firstComputeEnvironment }] }));
        externalQueues.push(match[1]!);
      }
    }
    for (const [logicalId, props] of ofType('AWS::Batch::JobDefinition')) {
      const input = camelize(props) as Record<string, unknown>;
      const container = input['containerProperties'] as Record<string, unknown> | undefined;
      if (container) {
        Object.assign(container, localImage(assembly, container, staging));
        // The job role's credentials, as ECS hands a task its role's (here in the environment).
        const jobRole = container['jobRoleArn'];
        if (typeof jobRole === 'string' && options.roleEnvironment) {
          const env = container['environment'] as { name: string; value: string }[];
          for (const [name, value] of Object.entries(options.roleEnvironment(jobRole))) env.push({ name, value });
        }
      }
      delete input['propagateTags'];
      const made = await batch.send(
        new RegisterJobDefinitionCommand({ ...input, jobDefinitionName: nameOf(logicalId), type: textOr(input['type'], 'container'), propagateTags: props['PropagateTags'] === true } as RegisterJobDefinitionCommandInput),
      );
      expectSame(identities.get(logicalId)!.arn, made.jobDefinitionArn, logicalId);
    }

    // Lambda functions, each from its staged asset with the template's settings.
    const lambda = cloud.services.lambda;
    const functions: AssemblyFunction[] = [];
    const runtime = runtimeModules(staging);
    for (const [logicalId, props] of ofType('AWS::Lambda::Function')) {
      const runtimeName = textOr(props['Runtime'], '');
      if (!runtimeName.startsWith('nodejs')) {
        skip('AWS::Lambda::Function', logicalId, `runtime '${runtimeName}' (only nodejs runtimes run locally)`);
        continue;
      }
      const name = nameOf(logicalId);
      const code = stageCode(assembly, props, join(staging, 'functions', name), runtime);
      const [moduleName, exportName] = splitHandler(textOr(props['Handler'], 'index.handler'));
      const entry = moduleFile(code, moduleName);
      const roleArn = typeof props['Role'] === 'string' ? props['Role'] : undefined;
      const variables = ((props['Environment'] as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {});
      const environment: Record<string, string> = {};
      for (const [key, value] of Object.entries(variables)) environment[key] = String(value);
      if (roleArn && options.roleEnvironment) Object.assign(environment, options.roleEnvironment(roleArn));
      const reserved = props['ReservedConcurrentExecutions'];
      const arn = lambda.register({
        functionName: name,
        entry,
        exportName,
        environment,
        timeoutSeconds: Number(props['Timeout'] ?? 3),
        memorySizeMB: Number(props['MemorySize'] ?? 128),
        ...(typeof reserved === 'number' ? { reservedConcurrency: reserved } : options.reservedConcurrency !== undefined ? { reservedConcurrency: options.reservedConcurrency } : {}),
      });
      functions.push({ logicalId, name, arn, roleArn, codeDirectory: code });
    }

    // State machines with the template's own definitions.
    for (const [logicalId, props] of ofType('AWS::StepFunctions::StateMachine')) {
      const definition = definitionOf(props, logicalId);
      await cloud.clients.sfn.send(
        new CreateStateMachineCommand({
          name: nameOf(logicalId),
          definition,
          roleArn: textOr(props['RoleArn'], `arn:aws:iam::${accountId}:role/${stackName}-states`),
          type: props['StateMachineType'] === 'EXPRESS' ? 'EXPRESS' : 'STANDARD',
        }),
      );
    }

    // API Gateway: each method becomes a route of its API, with its authorization and validation.
    const apiMethods: AssemblyApiMethod[] = [];
    const pathOf = resourcePaths(template);
    for (const [logicalId, props] of ofType('AWS::ApiGateway::Method')) {
      const rawMethod = template.Resources[logicalId]!.Properties ?? {};
      const apiLogical = refTarget(rawMethod['RestApiId']);
      const apiId = apiLogical ? apiIds.get(apiLogical) : undefined;
      const integration = props['Integration'] as { Type?: string; Uri?: string } | undefined;
      const functionArn = /functions\/(arn:[^/]+)\/invocations$/.exec(integration?.Uri ?? '')?.[1];
      if (!apiId || !functionArn || (integration?.Type !== 'AWS_PROXY' && integration?.Type !== 'AWS')) {
        skip('AWS::ApiGateway::Method', logicalId, `integration ${integration?.Type ?? 'none'} (only Lambda proxy integrations are modeled)`);
        continue;
      }
      const path = pathOf(refTarget(rawMethod['ResourceId']));
      const method = String(props['HttpMethod']);
      const validatorId = refTarget(rawMethod['RequestValidatorId']);
      const validator = validatorId ? resources[validatorId]?.Properties : undefined;
      const models = (rawMethod['RequestModels'] ?? {}) as Record<string, unknown>;
      const modelId = refTarget(models['application/json']);
      const requestParameters = (props['RequestParameters'] ?? {}) as Record<string, boolean>;
      const apiMethod: AssemblyApiMethod = {
        apiId,
        method,
        path,
        authorizationType: textOr(props['AuthorizationType'], 'NONE'),
        requiredParameters: validator?.['ValidateRequestParameters'] === true ? Object.keys(requestParameters).filter((k) => requestParameters[k]) : [],
        ...(validator?.['ValidateRequestBody'] === true && modelId ? { bodySchema: resources[modelId]?.Properties['Schema'] } : {}),
      };
      // Enforced, as API Gateway does: a request the validator refuses never reaches the function.
      api.addRoute(apiId, {
        method,
        path,
        functionName: functionArn,
        validation: { requiredParameters: apiMethod.requiredParameters, ...(apiMethod.bodySchema !== undefined ? { bodySchema: apiMethod.bodySchema } : {}) },
      });
      apiMethods.push(apiMethod);
    }

    // EventBridge rules and their targets; schedules fire only when asked for.
    const events = cloud.services.events;
    for (const [logicalId, props] of ofType('AWS::Events::Rule')) {
      const schedule = typeof props['ScheduleExpression'] === 'string' ? props['ScheduleExpression'] : undefined;
      const state = props['State'] === 'DISABLED' || (schedule !== undefined && options.schedules === false) ? 'DISABLED' : 'ENABLED';
      const name = nameOf(logicalId);
      events.putRule({
        name,
        ...(props['EventPattern'] !== undefined ? { eventPattern: props['EventPattern'] as object } : {}),
        ...(schedule !== undefined ? { scheduleExpression: schedule } : {}),
        state,
        ...(typeof props['Description'] === 'string' ? { description: props['Description'] } : {}),
      });
      const targets = (props['Targets'] as { Id: string; Arn: string; Input?: string; InputPath?: string }[] | undefined) ?? [];
      events.putTargets(
        name,
        targets.map((t) => ({ id: t.Id, arn: t.Arn, ...(t.Input !== undefined ? { input: t.Input } : {}), ...(t.InputPath !== undefined ? { inputPath: t.InputPath } : {}) })),
      );
    }
    stops.push(() => {
      for (const [logicalId] of ofType('AWS::Events::Rule')) {
        try {
          events.putRule({ name: nameOf(logicalId), scheduleExpression: 'rate(1 day)', state: 'DISABLED' });
        } catch {
          // The rule is gone with the service.
        }
      }
    });

    // An API's AWS URL in an output (`https://{id}.execute-api.{region}.amazonaws.com/{stage}/`)
    // becomes its local invoke URL, so `connect` reaches the local API as it reaches AWS's.
    const outputs: Record<string, string> = {};
    for (const [key, value] of Object.entries(resolved.outputs)) {
      outputs[key] = value.replace(/^https:\/\/([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com\/([^/]+)\/?/, (match, id: string, stage: string) =>
        [...apiIds.values()].includes(id) ? `${api.invokeUrl(id, cloud.endpoint, stage)}/` : match,
      );
    }
    cloud.services.cloudformation.putStack(
      stackName,
      Object.entries(outputs).map(([key, value]) => ({
        OutputKey: key,
        OutputValue: value,
        ...(template.Outputs?.[key]?.Description ? { Description: template.Outputs[key].Description } : {}),
      })),
    );

    // What was not created.
    const handled = new Set([
      'AWS::DynamoDB::Table',
      'AWS::S3::Bucket',
      'AWS::Batch::ComputeEnvironment',
      'AWS::Batch::JobQueue',
      'AWS::Batch::JobDefinition',
      'AWS::Lambda::Function',
      'AWS::StepFunctions::StateMachine',
      'AWS::ApiGateway::RestApi',
      'AWS::Events::Rule',
      ...Object.keys(USED_WITHOUT_CREATING),
    ]);
    for (const [logicalId, resource] of Object.entries(resources)) {
      if (handled.has(resource.Type)) continue;
      skip(resource.Type, logicalId, SKIP_REASONS[resource.Type] ?? (resource.Type.startsWith('Custom::') ? 'custom resources do not run locally' : 'not modeled by the local cloud'));
    }
    for (const logicalId of resolved.excluded) skip(template.Resources[logicalId]!.Type, logicalId, 'its condition is false');
    for (const name of externalQueues) skip('AWS::Batch::JobQueue (not in the template)', name, 'created: the stack names this queue, which on AWS the user creates');

    return {
      stackName,
      outputs,
      functions,
      roles: rolesOf(template, resources, identities),
      apiMethods,
      refs: Object.fromEntries([...identities].map(([id, identity]) => [id, String(identity.ref)])),
      resources,
      skipped: [...skipped.entries()].map(([key, entry]) => ({ type: key.split('\n')[0]!, logicalIds: entry.logicalIds, reason: entry.reason })),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** One line per skipped type, as `startLocalCloud` prints them. */
export function describeSkipped(deployment: Pick<AssemblyDeployment, 'skipped'>): string[] {
  return deployment.skipped.map((s) => `${s.type} ×${s.logicalIds.length}: ${s.reason} (${s.logicalIds.slice(0, 4).join(', ')}${s.logicalIds.length > 4 ? ', …' : ''})`);
}

/** A string property, or `fallback` when the template leaves it out. */
function textOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

function expectSame(expected: string | undefined, actual: string | undefined, logicalId: string): void {
  if (expected !== actual) throw new IntrinsicError(`${logicalId}: the template refers to ${expected ?? '?'}, the local cloud created ${actual ?? '?'}`);
}

/**
 * The stage-wide method throttling per REST API logical id and stage name: the
 * `MethodSettings` entry for every resource and method (`/*`, `*`) that sets a rate or burst,
 * which is where CDK's `deployOptions.throttlingRateLimit` / `throttlingBurstLimit` go.
 * Settings for one method alone are not modeled.
 */
export function stageThrottlingByApi(template: CloudFormationTemplate): Map<string, Map<string, StageThrottling>> {
  const throttles = new Map<string, Map<string, StageThrottling>>();
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::ApiGateway::Stage') continue;
    const apiLogical = refTarget(resource.Properties?.['RestApiId']);
    const name = resource.Properties?.['StageName'];
    const settings = (resource.Properties?.['MethodSettings'] as Record<string, unknown>[] | undefined) ?? [];
    const all = settings.find((m) => m['HttpMethod'] === '*' && m['ResourcePath'] === '/*' && (m['ThrottlingRateLimit'] !== undefined || m['ThrottlingBurstLimit'] !== undefined));
    if (!apiLogical || typeof name !== 'string' || !all) continue;
    // API Gateway's account defaults stand in for the one a setting leaves out.
    const rateLimit = typeof all['ThrottlingRateLimit'] === 'number' ? all['ThrottlingRateLimit'] : 10_000;
    const burstLimit = typeof all['ThrottlingBurstLimit'] === 'number' ? all['ThrottlingBurstLimit'] : 5_000;
    const byStage = throttles.get(apiLogical) ?? new Map<string, StageThrottling>();
    byStage.set(name, { rateLimit, burstLimit });
    throttles.set(apiLogical, byStage);
  }
  return throttles;
}

/** Stage names per REST API logical id, from the template's stages. */
function stageNamesByApi(template: CloudFormationTemplate): Map<string, string[]> {
  const stages = new Map<string, string[]>();
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::ApiGateway::Stage') continue;
    const apiLogical = refTarget(resource.Properties?.['RestApiId']);
    const name = resource.Properties?.['StageName'];
    if (apiLogical && typeof name === 'string') stages.set(apiLogical, [...(stages.get(apiLogical) ?? []), name]);
  }
  return stages;
}

/** The logical id a `{ Ref }` (or `{ Fn::GetAtt }`) names, before resolution. */
function refTarget(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record['Ref'] === 'string') return record['Ref'];
  const att = record['Fn::GetAtt'];
  if (Array.isArray(att) && typeof att[0] === 'string') return att[0];
  return undefined;
}

/** The path of each `AWS::ApiGateway::Resource`, walking its parents up to the API's root. */
function resourcePaths(template: CloudFormationTemplate): (logicalId: string | undefined) => string {
  const pathOf = (logicalId: string | undefined): string => {
    const resource = logicalId ? template.Resources[logicalId] : undefined;
    if (!resource || resource.Type !== 'AWS::ApiGateway::Resource') return '/';
    const parent = resource.Properties?.['ParentId'];
    const parentId = refTarget(parent);
    const parentPath = parentId && template.Resources[parentId]?.Type === 'AWS::ApiGateway::Resource' ? pathOf(parentId) : '';
    return `${parentPath}/${String(resource.Properties?.['PathPart'])}`;
  };
  return pathOf;
}

/** CloudFormation's PascalCase properties as the service API's camelCase (Batch's). */
function camelize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelize);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (item === undefined) continue;
    if (typeof item === 'object' && item !== null && !Array.isArray(item) && Object.keys(item).length === 0) continue;
    out[key.charAt(0).toLowerCase() + key.slice(1)] = camelize(item);
  }
  return out;
}

function stringsIn(value: unknown, found: string[] = []): string[] {
  if (typeof value === 'string') found.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, found);
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) stringsIn(item, found);
  return found;
}

/**
 * A job definition's container, run from the image's staged build context: paths under the
 * Dockerfile's `WORKDIR` point into a copy of the context, whose `node_modules` is this
 * install's (what `npm ci` in the image provides); `node` is this Node.
 */
function localImage(assembly: CloudAssembly, container: Record<string, unknown>, staging: string): Record<string, unknown> {
  const image = textOr(container['image'], '');
  const tag = image.split(':').pop() ?? '';
  const asset = assembly.images.get(tag);
  if (!asset) return {};
  const context = join(staging, 'images', tag.slice(0, 16));
  if (!existsSync(context)) {
    mkdirSync(dirname(context), { recursive: true });
    cpSync(asset.directory, context, { recursive: true, filter: (source) => !source.split(/[\\/]/).includes('node_modules') });
    symlinkSync(join(REPO, 'node_modules'), join(context, 'node_modules'), 'dir');
  }
  const dockerfile = existsSync(join(context, asset.dockerFile)) ? readFileSync(join(context, asset.dockerFile), 'utf8') : '';
  const workdir = [...dockerfile.matchAll(/^\s*WORKDIR\s+(\S+)/gim)].pop()?.[1] ?? '/';
  const local = (arg: string): string => (arg === workdir || arg.startsWith(`${workdir.replace(/\/$/, '')}/`) ? join(context, arg.slice(workdir.length)) : arg);
  const require = createRequire(join(context, 'package.json'));
  const command = ((container['command'] as string[] | undefined) ?? []).map((arg, i, all) => {
    if (i === 0 && arg === 'node') return process.execPath;
    // A bare `--import` specifier resolves in the image's node_modules, whatever the job's cwd.
    if (all[i - 1] === '--import' && /^[@a-z]/i.test(arg)) return pathToFileURL(require.resolve(arg)).href;
    return local(arg);
  });
  const environment = ((container['environment'] as { name: string; value: string }[] | undefined) ?? []).map((e) => ({ name: e.name, value: local(String(e.value)) }));
  return { command, environment, image: `local:${tag.slice(0, 16)}` };
}

/** The runtime's own modules (`@aws-sdk/*` on Lambda's Node.js runtimes), for functions that leave them external. */
function runtimeModules(staging: string): string {
  const dir = join(staging, 'runtime', 'node_modules');
  mkdirSync(dir, { recursive: true });
  const sdk = join(REPO, 'node_modules', '@aws-sdk');
  if (existsSync(sdk)) symlinkSync(sdk, join(dir, '@aws-sdk'), 'dir');
  return dir;
}

/**
 * Copies a function's code where it runs, as Lambda unzips it into `/var/task`: out of the
 * assembly (so nothing resolves from the project's node_modules that the bundle left out),
 * beside only the runtime's modules.
 */
function stageCode(assembly: CloudAssembly, props: Record<string, unknown>, target: string, runtime: string): string {
  const code = (props['Code'] ?? {}) as { S3Key?: string; ZipFile?: string };
  mkdirSync(target, { recursive: true });
  if (typeof code.ZipFile === 'string') {
    // Inline code (`Code.ZipFile`) is CommonJS `index.js` on Lambda's Node.js runtimes.
    writeFileSync(join(target, 'index.js'), code.ZipFile);
    return target;
  }
  const key = code.S3Key ?? '';
  const asset = assembly.files.get(key) ?? assembly.files.get(key.replace(/\.zip$/, ''));
  if (!asset) throw new IntrinsicError(`no asset in the cloud assembly for code ${key} (is the asset manifest there?)`);
  if (asset.packaging !== 'zip' || !existsSync(asset.path)) throw new IntrinsicError(`the code asset ${asset.path} is not a staged folder`);
  cpSync(asset.path, target, { recursive: true });
  symlinkSync(runtime, join(target, 'node_modules'), 'dir');
  return target;
}

function splitHandler(handler: string): [string, string] {
  const dot = handler.lastIndexOf('.');
  if (dot <= 0) throw new IntrinsicError(`handler '${handler}' is not <module>.<export>`);
  return [handler.slice(0, dot), handler.slice(dot + 1)];
}

/** The module Lambda loads for `<module>.<export>`: the first of .mjs, .cjs, .js that exists. */
function moduleFile(directory: string, moduleName: string): string {
  for (const extension of ['.mjs', '.cjs', '.js']) {
    const file = resolve(directory, `${moduleName}${extension}`);
    if (existsSync(file)) return file;
  }
  const present = readdirSync(directory).slice(0, 8).join(', ');
  throw new IntrinsicError(`the handler module '${moduleName}' is not in the function's code (${present})`);
}

/** A state machine's definition: `DefinitionString` or `Definition`, with `DefinitionSubstitutions` applied. */
function definitionOf(props: Record<string, unknown>, logicalId: string): string {
  let text: string;
  if (typeof props['DefinitionString'] === 'string') text = props['DefinitionString'];
  else if (props['Definition'] !== undefined) text = JSON.stringify(props['Definition']);
  else throw new IntrinsicError(`${logicalId}: a state machine without DefinitionString or Definition (DefinitionS3Location is not supported locally)`);
  const substitutions = (props['DefinitionSubstitutions'] ?? {}) as Record<string, unknown>;
  return text.replace(/\$\{([^}]+)\}/g, (match, key: string) => (key in substitutions ? String(substitutions[key]) : match));
}

async function createTable(cloud: LocalCloud, tableName: string, props: Record<string, unknown>): Promise<void> {
  const pick = <T>(key: string): T | undefined => props[key] as T | undefined;
  const input: CreateTableCommandInput = {
    TableName: tableName,
    BillingMode: pick<string>('BillingMode') === 'PROVISIONED' ? 'PROVISIONED' : 'PAY_PER_REQUEST',
    AttributeDefinitions: pick('AttributeDefinitions') ?? [],
    KeySchema: pick('KeySchema') ?? [],
    ...(pick('GlobalSecondaryIndexes') ? { GlobalSecondaryIndexes: pick('GlobalSecondaryIndexes') } : {}),
    ...(pick('LocalSecondaryIndexes') ? { LocalSecondaryIndexes: pick('LocalSecondaryIndexes') } : {}),
    ...(pick('ProvisionedThroughput') ? { ProvisionedThroughput: pick('ProvisionedThroughput') } : {}),
  };
  await cloud.clients.dynamodb.send(new CreateTableCommand(input)).catch((error: unknown) => {
    if ((error as Error).name !== 'ResourceInUseException') throw error;
  });
}

/**
 * Each role of a resolved template with the policies attached to it anywhere in the template:
 * what IAM enforcement evaluates, and what tests evaluate without a deploy (the stack-scoping
 * test puts two stacks' roles side by side).
 */
export function rolesOf(
  template: CloudFormationTemplate,
  resources: Readonly<Record<string, { readonly Type: string; readonly Properties: Record<string, unknown> }>>,
  identities: ReadonlyMap<string, ResourceIdentity>,
): AssemblyRole[] {
  const managed = new Map<string, RolePolicy>();
  for (const [logicalId, r] of Object.entries(resources)) {
    if (r.Type === 'AWS::IAM::ManagedPolicy') managed.set(String(identities.get(logicalId)?.ref), { name: logicalId, document: r.Properties['PolicyDocument'] });
  }
  const roles: AssemblyRole[] = [];
  for (const [logicalId, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::IAM::Role') continue;
    const identity = identities.get(logicalId)!;
    const policies: RolePolicy[] = [];
    for (const inline of (r.Properties['Policies'] as { PolicyName: string; PolicyDocument: unknown }[] | undefined) ?? []) policies.push({ name: inline.PolicyName, document: inline.PolicyDocument });
    const awsManaged: string[] = [];
    for (const arn of (r.Properties['ManagedPolicyArns'] as string[] | undefined) ?? []) {
      const local = managed.get(arn);
      if (local) policies.push(local);
      else awsManaged.push(arn);
    }
    for (const [policyId, p] of Object.entries(resources)) {
      const attachedTo = (p.Properties['Roles'] as string[] | undefined) ?? [];
      if ((p.Type === 'AWS::IAM::Policy' || p.Type === 'AWS::IAM::ManagedPolicy') && attachedTo.includes(identity.name!)) {
        if (!policies.some((existing) => existing.name === policyId)) policies.push({ name: textOr(p.Properties['PolicyName'], policyId), document: p.Properties['PolicyDocument'] });
      }
    }
    roles.push({ logicalId, arn: identity.arn!, name: identity.name!, policies, awsManagedPolicies: awsManaged });
  }
  void template;
  return roles;
}

