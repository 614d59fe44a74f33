// The API's access (issue 14): grantDispatch, grantCancel and grantReadStatus each allow execute-api:Invoke
// on their own methods and nothing else (checked on the template, then by the IAM simulator
// the local cloud enforces with), and every method of the stage is throttled.
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_API_THROTTLING, Orchestrator, OrchestratorValidationCode, OrchestratorValidationError } from '../../infra/orchestrator.ts';
import { resolveTemplate, rolesOf, stageThrottlingByApi, type AssemblyRole, type CloudFormationTemplate } from '../../localstack/assembly/index.ts';
import { StaticCredentialStore } from '../../localstack/core/credentials.ts';
import { IamEnforcer } from '../../localstack/iam/index.ts';
import { API } from '../../sdk/contract.ts';
import { fixtureWorkflows, permissionMap, removeTestOutdirs, statementsOf, testApp } from './support.ts';

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';

let template: Template;
let stack: Stack;
let roles: { dispatcher: iam.Role; canceller: iam.Role; reader: iam.Role };
let apiLogicalId: string;

beforeAll(async () => {
  const app = testApp();
  stack = new Stack(app, 'api-stack', { env: { region: REGION, account: ACCOUNT } });
  const orchestrator = new Orchestrator(stack, 'Orchestrator', { workflows: await fixtureWorkflows(), monitoring: false });
  const role = (id: string): iam.Role => new iam.Role(stack, id, { assumedBy: new iam.AccountRootPrincipal() });
  roles = { dispatcher: role('Dispatcher'), canceller: role('Canceller'), reader: role('Reader') };
  orchestrator.grantDispatch(roles.dispatcher);
  orchestrator.grantCancel(roles.canceller);
  orchestrator.grantReadStatus(roles.reader);
  template = Template.fromStack(stack);
  apiLogicalId = Object.keys(template.findResources('AWS::ApiGateway::RestApi'))[0]!;
}, 120_000);

afterAll(removeTestOutdirs);

/** `${Api}/prod/{METHOD}/{path with * for parameters}` as the rendered template writes it. */
const methodArn = (method: string, route: string): string =>
  `arn:aws:execute-api:${REGION}:${ACCOUNT}:\${${apiLogicalId}}/${API.stage}/${method}${route.replace(/\{[^}]+\}/g, '*')}`;

describe('per-method execute-api grants', () => {
  it('grantCancel allows exactly POST …/cancel and GET …/cancels/{requestId}; grantReadStatus exactly GET /dispatches/{id}; grantDispatch exactly POST /dispatches, POST /uploads and GET /dispatches/{id}', () => {
    expect(permissionMap(statementsOf(template, stack, roles.canceller))).toEqual({
      'execute-api:Invoke': [methodArn('GET', API.cancelReportPath), methodArn('POST', API.cancelPath)].sort(),
    });
    expect(permissionMap(statementsOf(template, stack, roles.reader))).toEqual({ 'execute-api:Invoke': [methodArn('GET', API.statusPath)] });
    // Dispatching goes through the API: its two POSTs and the status read (with the result), and nothing else at all.
    expect(permissionMap(statementsOf(template, stack, roles.dispatcher))).toEqual({
      'execute-api:Invoke': [methodArn('GET', API.statusPath), methodArn('POST', API.dispatchPath), methodArn('POST', API.uploadPath)].sort(),
    });
  });

  it('grants name methods the API has, each IAM-authorized', () => {
    const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    const paths = new Map<string, string>();
    const pathOf = (id: string): string => {
      if (id === undefined || !json.Resources[id]) return '';
      const known = paths.get(id);
      if (known !== undefined) return known;
      const { ParentId, PathPart } = json.Resources[id].Properties as { ParentId: { Ref?: string }; PathPart: string };
      const path = `${pathOf(ParentId.Ref ?? '')}/${PathPart}`;
      paths.set(id, path);
      return path;
    };
    const methods = Object.values(json.Resources)
      .filter((r) => r.Type === 'AWS::ApiGateway::Method')
      .map((r) => {
        expect(r.Properties['AuthorizationType']).toBe('AWS_IAM');
        return `${String(r.Properties['HttpMethod'])} ${pathOf((r.Properties['ResourceId'] as { Ref: string }).Ref)}`;
      });
    for (const method of [`POST ${API.dispatchPath}`, `POST ${API.uploadPath}`, `POST ${API.cancelPath}`, `GET ${API.cancelReportPath}`, `GET ${API.statusPath}`]) expect(methods).toContain(method);
  });

  it('the IAM simulator: each grant reaches its own methods, and not the others', () => {
    const json = template.toJSON() as CloudFormationTemplate;
    const { identities, resources } = resolveTemplate(json, { stackName: 'api-stack', region: REGION, accountId: ACCOUNT });
    const all = rolesOf(json, resources, identities);
    const enforcer = new IamEnforcer({ credentials: new StaticCredentialStore(), accountId: ACCOUNT, resourceTags: () => Promise.resolve(undefined) });
    enforcer.putRoles(all);
    const roleArn = (id: string): string => all.find((r: AssemblyRole) => r.logicalId.startsWith(id))!.arn;
    const api = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${String(identities.get(apiLogicalId)!.ref)}/${API.stage}`;
    const calls = {
      cancel: `${api}/POST/dispatches/d-1/cancel`,
      report: `${api}/GET/dispatches/d-1/cancels/r-1`,
      status: `${api}/GET/dispatches/d-1`,
      dispatch: `${api}/POST/dispatches`,
      upload: `${api}/POST/uploads`,
      deleteDispatch: `${api}/DELETE/dispatches/d-1`,
    };
    const decisions = (id: string): Record<string, boolean> =>
      Object.fromEntries(Object.entries(calls).map(([name, arn]) => [name, enforcer.decide(roleArn(id), 'execute-api:Invoke', arn) === 'Allowed']));
    expect(decisions('Canceller')).toEqual({ cancel: true, report: true, status: false, dispatch: false, upload: false, deleteDispatch: false });
    // An execute-api `*` also matches `/`: GET /dispatches/* covers the reports below a dispatch (reads only).
    expect(decisions('Reader')).toEqual({ cancel: false, report: true, status: true, dispatch: false, upload: false, deleteDispatch: false });
    expect(decisions('Dispatcher')).toEqual({ cancel: false, report: true, status: true, dispatch: true, upload: true, deleteDispatch: false });
  });
});

describe('method throttling', () => {
  it('throttles every method of the stage, by default at 100 requests per second with bursts of 200', () => {
    expect(DEFAULT_API_THROTTLING).toEqual({ rateLimit: 100, burstLimit: 200 });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: API.stage,
      MethodSettings: Match.arrayWith([
        Match.objectLike({ HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: DEFAULT_API_THROTTLING.rateLimit, ThrottlingBurstLimit: DEFAULT_API_THROTTLING.burstLimit }),
      ]),
    });
  });

  it("is what the local cloud's assembly deploy applies to the stage", () => {
    const throttling = stageThrottlingByApi(template.toJSON() as CloudFormationTemplate);
    expect(Object.fromEntries([...(throttling.get(apiLogicalId) ?? [])])).toEqual({ [API.stage]: DEFAULT_API_THROTTLING });
  });

  it('takes apiThrottling, and refuses a limit API Gateway would refuse, before building anything', async () => {
    const workflows = await fixtureWorkflows();
    const build = (apiThrottling: { rateLimit: number; burstLimit: number }): Stack => {
      const s = new Stack(testApp(), 'throttled');
      new Orchestrator(s, 'Orchestrator', { workflows, monitoring: false, enableBatch: false, apiThrottling });
      return s;
    };
    for (const bad of [{ rateLimit: 0, burstLimit: 10 }, { rateLimit: Number.NaN, burstLimit: 10 }, { rateLimit: 5, burstLimit: 0 }, { rateLimit: 5, burstLimit: 2.5 }]) {
      let error: unknown;
      try {
        build(bad);
      } catch (thrown) {
        error = thrown;
      }
      expect(error, JSON.stringify(bad)).toBeInstanceOf(OrchestratorValidationError);
      expect((error as OrchestratorValidationError).reason).toBe(OrchestratorValidationCode.INVALID_PROP);
      expect((error as OrchestratorValidationError).message).toMatch(/apiThrottling\.(rateLimit|burstLimit) must be/);
    }
    Template.fromStack(build({ rateLimit: 2.5, burstLimit: 5 })).hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([Match.objectLike({ HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: 2.5, ThrottlingBurstLimit: 5 })]),
    });
  }, 60_000);
});
