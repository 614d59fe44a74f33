// The Monitoring sub-construct, synthesized in a bare stack: its alarms, their defaults and
// the props that change or remove them, and the dashboard.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { afterAll, describe, expect, it } from 'vitest';
import { Monitoring, ValenceMetric, VALENCE_NAMESPACE, type MonitoringProps } from '../../infra/private/monitoring.ts';
import { removeTestOutdirs, STACK_NAME, synthesize, testOutdir } from './support.ts';

afterAll(removeTestOutdirs);

function synth(props: Partial<MonitoringProps> = {}, machines = 2): Template {
  // GIVEN a bare stack with a function and some state machines
  const stack = new Stack(new App({ outdir: testOutdir() }), 'MonitoringTest');
  const fn = (id: string) => new lambda.Function(stack, id, { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => 1') });
  const stateMachines = Array.from({ length: machines }, (_, i) => new sfn.StateMachine(stack, `Machine${i}`, { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, `Pass${i}`)) }));
  // WHEN
  new Monitoring(stack, 'Monitoring', { stepHandler: fn('Step'), otherHandlers: { sweeper: fn('Sweeper') }, stateMachines, ...props });
  return Template.fromStack(stack);
}

const alarmsOf = (template: Template) => Object.values(template.findResources('AWS::CloudWatch::Alarm')) as { Properties: Record<string, unknown> }[];

describe('Monitoring', () => {
  it('makes the five alarms with their default thresholds, and a dashboard', () => {
    const template = synth();
    // THEN
    template.resourceCountIs('AWS::CloudWatch::Alarm', 5);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: VALENCE_NAMESPACE, MetricName: 'OldestUnfinishedCancelSeconds', Statistic: 'Maximum', Threshold: 300, TreatMissingData: 'notBreaching' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: VALENCE_NAMESPACE, MetricName: 'SweeperRecancels', Statistic: 'Sum', Threshold: 1, Period: 900, Dimensions: [{ Name: 'Stack', Value: 'MonitoringTest' }] });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/Lambda', MetricName: 'Errors', Threshold: 5 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/Lambda', MetricName: 'Throttles', Threshold: 1 });
    // Failed dispatches: failed + timed-out executions of every state machine, summed.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 1,
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'm0 + m1 + m2 + m3' })]),
    });
    const failed = alarmsOf(template).find((a) => Array.isArray(a.Properties.Metrics))!;
    const names = (failed.Properties.Metrics as { MetricStat?: { Metric: { MetricName: string } } }[]).flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : []));
    expect(names.sort()).toEqual(['ExecutionsFailed', 'ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsTimedOut']);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'MonitoringTest-valence' });
  });

  it('takes thresholds and turns each alarm off with false', () => {
    const template = synth({ unfinishedCancels: { threshold: 10 }, sweeperRecancels: false, failedDispatches: false, stepHandlerErrors: { threshold: 20, period: Duration.minutes(1) }, stepHandlerThrottles: false, dashboardName: false });
    template.resourceCountIs('AWS::CloudWatch::Alarm', 2);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'OldestUnfinishedCancelSeconds', Threshold: 600 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Errors', Threshold: 20, Period: 60 });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });

  it('splits the failed-dispatches sum into alarms of at most 10 metrics (metric math limit)', () => {
    const template = synth({}, 12);
    const failed = alarmsOf(template).filter((a) => Array.isArray(a.Properties.Metrics));
    expect(failed).toHaveLength(3);
    for (const a of failed) expect((a.Properties.Metrics as unknown[]).length).toBeLessThanOrEqual(11);
  });

  it('refuses a threshold that cannot fire and a period that is not whole minutes, naming the construct', () => {
    expect(() => synth({ sweeperRecancels: { threshold: 0 } })).toThrow(/Monitoring "Monitoring": sweeperRecancels.threshold must be a positive number/);
    expect(() => synth({ failedDispatches: { period: Duration.seconds(90) } })).toThrow(/failedDispatches.period must be a whole number of minutes/);
  });
});

describe('Monitoring in the Orchestrator', () => {
  it('is on by default, over every lattice state machine and the graph runner, and off with monitoring: false', async () => {
    const { template, orchestrator } = await synthesize({ monitoring: { sweeperRecancels: { threshold: 2 } } });
    const alarms = template.findResources('AWS::CloudWatch::Alarm');
    expect(Object.keys(alarms).some((id) => id.includes('SweeperRecancels'))).toBe(true);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: ValenceMetric.SweeperRecancels, Namespace: VALENCE_NAMESPACE, Threshold: 2, Dimensions: [{ Name: 'Stack', Value: STACK_NAME }] });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    expect(orchestrator.monitoring?.alarms).toHaveProperty('StepHandlerErrors');
    // The failed-dispatches sum reads every state machine the Orchestrator made.
    const failed = JSON.stringify(Object.values(alarms).filter((a) => JSON.stringify(a).includes('ExecutionsFailed')));
    for (const id of Object.keys(template.findResources('AWS::StepFunctions::StateMachine'))) expect(failed).toContain(id);

    const off = await synthesize({ monitoring: false });
    off.template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    off.template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    expect(off.orchestrator.monitoring).toBeUndefined();
  });
});
