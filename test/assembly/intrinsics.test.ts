// CloudFormation intrinsics as the assembly deploy evaluates them, on small templates.
import { describe, expect, it } from 'vitest';
import { IntrinsicError, resolveIntrinsics, resolveTemplate } from '../../localstack/assembly/index.ts';
import type { CloudFormationTemplate } from '../../localstack/assembly/index.ts';

const ctx = { stackName: 'app', region: 'eu-west-1', accountId: '111122223333' };

describe('resolveTemplate', () => {
  // GIVEN a template using each intrinsic the CDK writes
  const template: CloudFormationTemplate = {
    Parameters: { Env: { Type: 'String', Default: 'dev' }, Boot: { Type: 'AWS::SSM::Parameter::Value<String>', Default: '/cdk-bootstrap/version' } },
    Conditions: { IsProd: { 'Fn::Equals': [{ Ref: 'Env' }, 'prod'] }, NotProd: { 'Fn::Not': [{ Condition: 'IsProd' }] } },
    Mappings: { Sizes: { dev: { memory: 256 } } },
    Resources: {
      Table: { Type: 'AWS::DynamoDB::Table', Properties: { TableName: { 'Fn::Sub': '${AWS::StackName}-${Env}-table' } } },
      Queue: { Type: 'AWS::Batch::JobQueue', Properties: {} },
      Fn: {
        Type: 'AWS::Lambda::Function',
        Properties: {
          Environment: {
            Variables: {
              TABLE: { Ref: 'Table' },
              TABLE_ARN: { 'Fn::GetAtt': ['Table', 'Arn'] },
              QUEUE: { 'Fn::GetAtt': 'Queue.JobQueueArn' },
              JOINED: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':stateMachine:x']] },
              SECOND: { 'Fn::Select': [1, { 'Fn::Split': [',', 'a,b,c'] }] },
              LITERAL: { 'Fn::Sub': ['${!NotAVariable} ${Name}', { Name: { Ref: 'Env' } }] },
              MEMORY: { 'Fn::FindInMap': ['Sizes', { Ref: 'Env' }, 'memory'] },
              STAGE: { 'Fn::If': ['IsProd', 'prod', { Ref: 'AWS::NoValue' }] },
              BOOT: { Ref: 'Boot' },
            },
          },
        },
      },
      OnlyInProd: { Type: 'AWS::S3::Bucket', Condition: 'IsProd', Properties: {} },
      OnlyInDev: { Type: 'AWS::S3::Bucket', Condition: 'NotProd', Properties: {} },
    },
    Outputs: { TableArn: { Value: { 'Fn::GetAtt': ['Table', 'Arn'] } } },
  };

  it('evaluates Ref, GetAtt, Join, Sub, Select, Split, FindInMap, If, conditions and pseudo parameters', () => {
    // WHEN
    const resolved = resolveTemplate(template, ctx);
    // THEN
    const variables = (resolved.resources['Fn']!.Properties['Environment'] as { Variables: Record<string, unknown> }).Variables;
    expect(variables).toEqual({
      TABLE: 'app-dev-table',
      TABLE_ARN: 'arn:aws:dynamodb:eu-west-1:111122223333:table/app-dev-table',
      QUEUE: expect.stringMatching(/^arn:aws:batch:eu-west-1:111122223333:job-queue\/app-Queue-[0-9A-F]{12}$/) as unknown,
      JOINED: 'arn:aws:states:eu-west-1:111122223333:stateMachine:x',
      SECOND: 'b',
      LITERAL: '${NotAVariable} dev',
      MEMORY: 256,
      BOOT: 'local',
    });
    expect(resolved.excluded).toEqual(['OnlyInProd']);
    expect(Object.keys(resolved.resources)).toContain('OnlyInDev');
    expect(resolved.outputs).toEqual({ TableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/app-dev-table' });
  });

  it('names what it cannot resolve', () => {
    const scope = { region: 'r', ref: () => 'x', getAtt: () => 'y', condition: () => true, findInMap: () => 'z' };
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'shared' }, scope)).toThrow(IntrinsicError);
    expect(() => resolveIntrinsics({ 'Fn::ImportValue': 'shared' }, scope)).toThrow(/Fn::ImportValue/);
    expect(() => resolveTemplate({ Resources: { A: { Type: 'AWS::SQS::Queue', Properties: { X: { Ref: 'Missing' } } } } }, ctx)).toThrow(/'Missing'/);
  });
});
