/**
 * What CloudFormation would name each resource and what `Ref` and `Fn::GetAtt` return for it:
 * the physical id a template refers to before the resource exists. Names follow
 * CloudFormation's own pattern (`<stack>-<logicalId>-<suffix>`) when the template gives none.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/** The identity of one resource: its `Ref` and its attributes. */
export interface ResourceIdentity {
  readonly ref: unknown;
  readonly attributes: Readonly<Record<string, unknown>>;
  /** The physical name (a table's, a function's, a role's), when it has one. */
  readonly name?: string;
  /** The ARN, when it has one. */
  readonly arn?: string;
}

/** Where names and ARNs are made. */
export interface NamingContext {
  readonly stackName: string;
  readonly region: string;
  readonly accountId: string;
}

/** A short, stable suffix, as CloudFormation appends to generated names. */
export function suffixOf(stackName: string, logicalId: string, length = 12): string {
  return createHash('sha256').update(`${stackName}/${logicalId}`).digest('hex').slice(0, length).toUpperCase();
}

/** A generated name: `<stack>-<logicalId>-<SUFFIX>`, trimmed to `max` and to the characters allowed. */
function generatedName(ctx: NamingContext, logicalId: string, max: number, options: { lower?: boolean; allowed?: RegExp } = {}): string {
  const suffix = suffixOf(ctx.stackName, logicalId);
  let base = `${ctx.stackName}-${logicalId}`;
  if (options.allowed) base = base.replace(options.allowed, '-');
  base = base.slice(0, Math.max(1, max - suffix.length - 1));
  const name = `${base}-${suffix}`;
  return options.lower ? name.toLowerCase() : name;
}

/**
 * The identity of a resource of `type`, given its (resolved) name property when the template
 * sets one. `Ref` and attribute values of types the local cloud does not model are stable
 * placeholders, so templates that reference them still resolve.
 */
export function identityOf(type: string, logicalId: string, name: (property: string) => string | undefined, ctx: NamingContext): ResourceIdentity {
  const { region, accountId } = ctx;
  const arn = (service: string, resource: string, regional = true): string => `arn:aws:${service}:${regional ? region : ''}:${regional ? accountId : ''}:${resource}`;
  switch (type) {
    case 'AWS::DynamoDB::Table': {
      const tableName = name('TableName') ?? generatedName(ctx, logicalId, 255);
      const tableArn = arn('dynamodb', `table/${tableName}`);
      return { ref: tableName, name: tableName, arn: tableArn, attributes: { Arn: tableArn, StreamArn: `${tableArn}/stream/local` } };
    }
    case 'AWS::S3::Bucket': {
      const bucket = name('BucketName') ?? generatedName(ctx, logicalId, 63, { lower: true, allowed: /[^A-Za-z0-9-]/g });
      return {
        ref: bucket,
        name: bucket,
        arn: `arn:aws:s3:::${bucket}`,
        attributes: { Arn: `arn:aws:s3:::${bucket}`, DomainName: `${bucket}.s3.amazonaws.com`, RegionalDomainName: `${bucket}.s3.${region}.amazonaws.com` },
      };
    }
    case 'AWS::IAM::Role': {
      const roleName = name('RoleName') ?? generatedName(ctx, logicalId, 64, { allowed: /[^\w+=,.@-]/g });
      const path = name('Path') ?? '/';
      const roleArn = `arn:aws:iam::${accountId}:role${path}${roleName}`;
      return { ref: roleName, name: roleName, arn: roleArn, attributes: { Arn: roleArn, RoleId: `AROA${suffixOf(ctx.stackName, logicalId, 17)}` } };
    }
    case 'AWS::IAM::ManagedPolicy': {
      const policyArn = `arn:aws:iam::${accountId}:policy/${name('ManagedPolicyName') ?? generatedName(ctx, logicalId, 128)}`;
      return { ref: policyArn, arn: policyArn, attributes: { PolicyArn: policyArn } };
    }
    case 'AWS::Lambda::Function': {
      const functionName = name('FunctionName') ?? generatedName(ctx, logicalId, 64, { allowed: /[^A-Za-z0-9_-]/g });
      const functionArn = arn('lambda', `function:${functionName}`);
      return { ref: functionName, name: functionName, arn: functionArn, attributes: { Arn: functionArn } };
    }
    case 'AWS::StepFunctions::StateMachine': {
      const machineName = name('StateMachineName') ?? generatedName(ctx, logicalId, 80, { allowed: /[^A-Za-z0-9_-]/g });
      const machineArn = arn('states', `stateMachine:${machineName}`);
      return { ref: machineArn, name: machineName, arn: machineArn, attributes: { Arn: machineArn, Name: machineName } };
    }
    case 'AWS::Batch::ComputeEnvironment': {
      const ceName = name('ComputeEnvironmentName') ?? generatedName(ctx, logicalId, 128, { allowed: /[^A-Za-z0-9_-]/g });
      const ceArn = arn('batch', `compute-environment/${ceName}`);
      return { ref: ceArn, name: ceName, arn: ceArn, attributes: { ComputeEnvironmentArn: ceArn } };
    }
    case 'AWS::Batch::JobQueue': {
      const queueName = name('JobQueueName') ?? generatedName(ctx, logicalId, 128, { allowed: /[^A-Za-z0-9_-]/g });
      const queueArn = arn('batch', `job-queue/${queueName}`);
      return { ref: queueArn, name: queueName, arn: queueArn, attributes: { JobQueueArn: queueArn, JobQueueName: queueName } };
    }
    case 'AWS::Batch::JobDefinition': {
      const definitionName = name('JobDefinitionName') ?? generatedName(ctx, logicalId, 128, { allowed: /[^A-Za-z0-9_-]/g });
      const definitionArn = arn('batch', `job-definition/${definitionName}:1`);
      return { ref: definitionArn, name: definitionName, arn: definitionArn, attributes: { JobDefinitionArn: definitionArn } };
    }
    case 'AWS::Events::Rule': {
      const ruleName = name('Name') ?? generatedName(ctx, logicalId, 64, { allowed: /[^\w.-]/g });
      const ruleArn = arn('events', `rule/${ruleName}`);
      return { ref: ruleName, name: ruleName, arn: ruleArn, attributes: { Arn: ruleArn } };
    }
    case 'AWS::Logs::LogGroup': {
      const group = name('LogGroupName') ?? generatedName(ctx, logicalId, 512);
      return { ref: group, name: group, arn: arn('logs', `log-group:${group}:*`), attributes: { Arn: arn('logs', `log-group:${group}:*`) } };
    }
    case 'AWS::ApiGateway::Stage':
      return { ref: name('StageName') ?? logicalId, attributes: {} };
    case 'AWS::ApiGateway::Model':
      return { ref: name('Name') ?? logicalId, attributes: {} };
    default: {
      // Unmodeled: an id shaped like the service's own (`subnet-…`, `sg-…`), stable per logical id.
      const prefix = type.split('::').pop()!.replace(/[^A-Za-z]/g, '').toLowerCase().slice(0, 12);
      const id = `${prefix}-${suffixOf(ctx.stackName, logicalId, 17).toLowerCase()}`;
      return { ref: id, attributes: new Proxy({}, { get: (_t, attribute) => (typeof attribute === 'string' ? `${id}.${attribute}` : undefined), has: () => true }) };
    }
  }
}
