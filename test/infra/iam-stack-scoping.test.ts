// Stack scoping (issue 14): two stacks in one account and region, `valence` and
// `valence-staging`. Every identity policy of `valence` (its handlers' roles, its job roles,
// and a client given grantDispatch, grantCancel and grantReadStatus) is evaluated by the IAM
// simulator the local cloud enforces with (@cloud-copilot/iam-simulate) against every
// resource of `valence-staging`: none may be allowed. Before the fix, `stateMachine:valence-*`
// and `execution:valence-*:*` matched `valence-staging`'s state machines and executions.
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Orchestrator } from '../../infra/orchestrator.ts';
import { resolveTemplate, rolesOf, type AssemblyRole, type CloudFormationTemplate } from '../../localstack/assembly/index.ts';
import { StaticCredentialStore } from '../../localstack/core/credentials.ts';
import { IamEnforcer } from '../../localstack/iam/index.ts';
import { API } from '../../sdk/contract.ts';
import { fixtureWorkflows, removeTestOutdirs, testApp } from './support.ts';

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';
const OWN = 'valence';
const OTHER = 'valence-staging';
const TAG = 'valence:stack';

/** One resource of a stack and the request context a call on it carries. */
interface Target {
  readonly arn: string;
  readonly context: Record<string, string>;
}

interface Deployed {
  readonly roles: readonly AssemblyRole[];
  readonly targets: readonly Target[];
  readonly stateMachineArns: readonly string[];
}

/**
 * Every resource a stack's grants could reach, as ARNs: what the template creates (its
 * identities), plus what exists only at run time under those resources (index ARNs, payload
 * objects, executions, jobs and tasks tagged with the stack, the API's methods, the stack).
 */
function deploy(stackName: string, template: CloudFormationTemplate): Deployed {
  const { identities, resources } = resolveTemplate(template, { stackName, region: REGION, accountId: ACCOUNT });
  const base = { [`aws:ResourceTag/${TAG}`]: stackName, 's3:prefix': 'dispatches/' };
  const targets: Target[] = [];
  const add = (arn: string): void => void targets.push({ arn, context: base });
  const stateMachineArns: string[] = [];
  for (const [logicalId, resource] of Object.entries(resources)) {
    const identity = identities.get(logicalId)!;
    if (resource.Type === 'AWS::ApiGateway::RestApi') {
      const api = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${String(identity.ref)}/${API.stage}`;
      add(`${api}/POST/dispatches`);
      add(`${api}/POST/dispatches/d-1/cancel`);
      add(`${api}/GET/dispatches/d-1`);
      add(`${api}/GET/dispatches/d-1/cancels/r-1`);
      continue;
    }
    if (!identity.arn) continue;
    add(identity.arn);
    if (resource.Type === 'AWS::DynamoDB::Table') for (const index of ['byJobHandle', 'byList']) add(`${identity.arn}/index/${index}`);
    if (resource.Type === 'AWS::S3::Bucket') add(`${identity.arn}/dispatches/d-1/input.json`);
    if (resource.Type === 'AWS::StepFunctions::StateMachine') {
      stateMachineArns.push(identity.arn);
      add(`${identity.arn.replace(':stateMachine:', ':execution:')}:d-1`);
    }
  }
  // What the stack's handlers start at run time, tagged as valence tags them.
  add(`arn:aws:batch:${REGION}:${ACCOUNT}:job/${stackName}-job-1`);
  add(`arn:aws:braket:${REGION}:${ACCOUNT}:quantum-task/${stackName}-task-1`);
  add(`arn:aws:braket:${REGION}:${ACCOUNT}:job/${stackName}-job-1`);
  add(`arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/${stackName}/0c5c2d30-0000-0000-0000-000000000000`);
  return { roles: rolesOf(template, resources, identities), targets, stateMachineArns };
}

/** Allow statements and their actions, by role. */
function allowStatements(role: AssemblyRole): { actions: string[]; resources: string[] }[] {
  return role.policies.flatMap((policy) =>
    ((policy.document as { Statement: { Effect: string; Action: string | string[]; Resource: string | string[] }[] }).Statement ?? [])
      .filter((s) => s.Effect === 'Allow')
      .map((s) => ({ actions: [s.Action].flat(), resources: [s.Resource].flat() })),
  );
}

const serviceOfArn = (arn: string): string => arn.split(':')[2]!;
const serviceOfAction = (action: string): string => action.split(':')[0]!;

let own: Deployed;
let other: Deployed;
let enforcer: IamEnforcer;

beforeAll(async () => {
  const app = testApp();
  const workflows = await fixtureWorkflows();
  const stacks = [OWN, OTHER].map((stackName) => {
    const stack = new Stack(app, stackName, { env: { region: REGION, account: ACCOUNT } });
    const orchestrator = new Orchestrator(stack, 'Orchestrator', { workflows, monitoring: false });
    // A client of the stack, as an application would grant one.
    const client = new iam.Role(stack, 'Client', { assumedBy: new iam.AccountRootPrincipal() });
    orchestrator.grantDispatch(client);
    orchestrator.grantCancel(client);
    orchestrator.grantReadStatus(client);
    return stack;
  });
  // Both stacks are built before the app synthesizes (once, for both).
  const [ownTemplate, otherTemplate] = stacks.map((stack) => Template.fromStack(stack).toJSON() as CloudFormationTemplate);
  own = deploy(OWN, ownTemplate!);
  other = deploy(OTHER, otherTemplate!);
  enforcer = new IamEnforcer({ credentials: new StaticCredentialStore(), accountId: ACCOUNT, resourceTags: () => Promise.resolve(undefined) });
  enforcer.putRoles([...own.roles, ...other.roles]);
}, 120_000);

afterAll(removeTestOutdirs);

/**
 * Creations: their resource is the ARN the service mints for the new task or job, never an
 * existing one, so they cannot act on another stack's (their conditions require this stack's
 * tag on the request). Every other action is asked about.
 */
const CREATIONS = new Set(['braket:CreateQuantumTask', 'braket:CreateJob']);

/** Every (action, resource) a role's statements name, the actions on `*` left out (they support no resource-level permissions). */
function questions(role: AssemblyRole, targets: readonly Target[]): { action: string; target: Target }[] {
  const actions = new Set(allowStatements(role).filter((s) => !s.resources.includes('*')).flatMap((s) => s.actions).filter((a) => !CREATIONS.has(a)));
  return [...actions].flatMap((action) => targets.filter((t) => serviceOfArn(t.arn) === serviceOfAction(action)).map((target) => ({ action, target })));
}

describe('IAM: a stack acts on its own resources only', () => {
  it("no role of 'valence' may act on any resource of 'valence-staging'", () => {
    expect(own.roles.length).toBeGreaterThanOrEqual(8);
    const allowed: string[] = [];
    let asked = 0;
    for (const role of own.roles) {
      for (const { action, target } of questions(role, other.targets)) {
        asked++;
        // An existing resource of the other stack (its tag), and a request that would retag it
        // as this stack's (a forged TagResource, then a stop that the tag condition allows).
        const context = { ...target.context, [`aws:RequestTag/${TAG}`]: OWN };
        if (enforcer.decide(role.arn, action, target.arn, context) === 'Allowed') allowed.push(`${role.logicalId} ${action} ${target.arn}`);
      }
    }
    expect(asked).toBeGreaterThan(300);
    expect(allowed).toEqual([]);
  });

  it('the same questions on its own resources are allowed (the evaluation can say yes)', () => {
    const roleOf = (logicalIdStart: string): AssemblyRole => own.roles.find((r) => r.logicalId.startsWith(logicalIdStart))!;
    const tagged = { [`aws:ResourceTag/${TAG}`]: OWN };
    const pipeline = own.stateMachineArns.find((arn) => arn.endsWith('_infra-fixture-pipeline'))!;
    const execution = `${pipeline.replace(':stateMachine:', ':execution:')}:d-1`;
    const expectations: [role: string, action: string, arn: string, context?: Record<string, string>][] = [
      ['OrchestratorStepHandlerRole', 'states:StartExecution', pipeline],
      ['OrchestratorStepHandlerRole', 'states:SendTaskSuccess', pipeline],
      ['OrchestratorCancelHandlerRole', 'states:StopExecution', execution],
      ['OrchestratorSweeperRole', 'batch:TerminateJob', `arn:aws:batch:${REGION}:${ACCOUNT}:job/${OWN}-job-1`, tagged],
      ['OrchestratorCancelHandlerRole', 'braket:CancelQuantumTask', `arn:aws:braket:${REGION}:${ACCOUNT}:quantum-task/${OWN}-task-1`, tagged],
      // POST /dispatches: the API handler starts the execution; the client only invokes the API.
      ['OrchestratorCancelHandlerRole', 'states:StartExecution', pipeline],
      ['Client', 'execute-api:Invoke', own.targets.find((t) => t.arn.endsWith('/POST/dispatches'))!.arn],
      ['Client', 'execute-api:Invoke', own.targets.find((t) => t.arn.endsWith('/POST/dispatches/d-1/cancel'))!.arn],
    ];
    for (const [role, action, arn, context] of expectations) {
      expect(enforcer.decide(roleOf(role).arn, action, arn, context ?? {}), `${role} ${action} ${arn}`).toBe('Allowed');
    }
    // And the whole sweep over its own resources finds many allowed pairs.
    let allowed = 0;
    for (const role of own.roles) {
      for (const { action, target } of questions(role, own.targets)) if (enforcer.decide(role.arn, action, target.arn, { ...target.context, [`aws:RequestTag/${TAG}`]: OWN }) === 'Allowed') allowed++;
    }
    expect(allowed).toBeGreaterThan(100);
  });

  it("names state machines {stack}_{lattice}: the old '{stack}-*' pattern matched the other stack's", () => {
    const staging = other.stateMachineArns.find((arn) => arn.endsWith('_infra-fixture-pipeline'))!;
    expect(staging).toBe(`arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:valence-staging_infra-fixture-pipeline`);
    const pattern = (prefix: string): AssemblyRole => ({
      logicalId: `Pattern${prefix}`,
      arn: `arn:aws:iam::${ACCOUNT}:role/pattern-${prefix.endsWith('-') ? 'dash' : 'underscore'}`,
      name: 'pattern',
      awsManagedPolicies: [],
      policies: [{ name: 'p', document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'states:StartExecution', Resource: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${prefix}*` }] } }],
    });
    // What makes {stack}_* this stack's alone: CloudFormation (and CDK) refuse a stack name holding "_".
    expect(() => new Stack(testApp(), 'valence_staging')).toThrow(/Stack name must match the regular expression/);
    const [dash, underscore] = [pattern('valence-'), pattern('valence_')];
    enforcer.putRoles([dash, underscore]);
    // The defect, reproduced: the pattern of the old names reaches valence-staging's machine.
    expect(enforcer.decide(dash.arn, 'states:StartExecution', staging)).toBe('Allowed');
    expect(enforcer.decide(underscore.arn, 'states:StartExecution', staging)).toBe('ImplicitlyDenied');
  });

  it('leaves on * only the actions that support no resource-level permissions', () => {
    const onStar = new Set(own.roles.flatMap((role) => allowStatements(role).filter((s) => s.resources.includes('*')).flatMap((s) => s.actions)));
    const expected = [
      'batch:DescribeJobs',
      'ecr:GetAuthorizationToken',
      ...['CreateLogDelivery', 'DeleteLogDelivery', 'DescribeLogGroups', 'DescribeResourcePolicies', 'GetLogDelivery', 'ListLogDeliveries', 'PutResourcePolicy', 'UpdateLogDelivery'].map((a) => `logs:${a}`),
      ...['GetSamplingRules', 'GetSamplingTargets', 'PutTelemetryRecords', 'PutTraceSegments'].map((a) => `xray:${a}`),
    ];
    expect([...onStar].sort()).toEqual(expected.sort());
  });
});
