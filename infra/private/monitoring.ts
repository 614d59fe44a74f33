/**
 * The Orchestrator's CloudWatch dashboard and alarms: the AWS-side view of what the local
 * dashboard (`valence ui`) shows one run at a time — are cancels finishing, are stops being
 * lost, are dispatches failing, are step handlers erroring or throttled.
 *
 * Metrics that exist today (AWS emits them):
 * - `AWS/Lambda` `Errors` and `Throttles` of the step handler (and of the other handlers, on
 *   the dashboard);
 * - `AWS/States` `ExecutionsFailed` and `ExecutionsTimedOut` of every lattice state machine and
 *   the graph runner (a dispatch whose node fails ends its execution FAILED; a cancelled one
 *   ends ABORTED, which is not counted).
 *
 * valence's own metrics, in namespace {@link VALENCE_NAMESPACE} with the one dimension `Stack`
 * (the stack name), printed by the sweeper once per run as a CloudWatch Embedded Metric Format
 * line (sdk/runtime/metrics.ts), which Lambda's log group turns into metrics with no metric
 * filter and no extra API call:
 * - `SweeperRecancels` (Count): the `recancelled` count of the sweep's report;
 * - `OldestUnfinishedCancelSeconds` (Seconds): the age of the oldest cancel request still open
 *   after the sweep, 0 when none is.
 * While no sweep has run, those two alarms stay in INSUFFICIENT_DATA (missing data is treated
 * as not breaching).
 *
 * @module
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';
import { METRICS_NAMESPACE } from '../../sdk/runtime/metrics.ts';

/** Namespace of the metrics valence's own handlers emit (as EMF lines). */
export const VALENCE_NAMESPACE = METRICS_NAMESPACE;

/** Names of valence's own metrics (see the module doc for who emits them and how). */
export const ValenceMetric = {
  SweeperRecancels: 'SweeperRecancels',
  OldestUnfinishedCancelSeconds: 'OldestUnfinishedCancelSeconds',
} as const;

/** An alarm's threshold and window; `false` in its place turns the alarm off. */
export interface AlarmThreshold {
  /** Alarm when the statistic reaches this value. */
  readonly threshold?: number;
  /** Window the statistic is taken over. */
  readonly period?: Duration;
}

/** Props of {@link Monitoring}. */
export interface MonitoringProps {
  /** The step handler (errors and throttles alarms). */
  readonly stepHandler: lambda.IFunction;
  /** The other handlers, shown on the dashboard. @default none */
  readonly otherHandlers?: Readonly<Record<string, lambda.IFunction>>;
  /** The lattice state machines and the graph runner (failed-dispatches alarm). */
  readonly stateMachines: readonly sfn.IStateMachine[];
  /** Value of the `Stack` dimension of valence's own metrics. @default the stack's name */
  readonly metricsStackName?: string;
  /** Name of the CloudWatch dashboard; `false` makes none. @default `${stackName}-valence` */
  readonly dashboardName?: string | false;
  /** Actions (an SNS topic, say) every alarm takes when it fires. @default none */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];
  /**
   * Cancel requests not finished after this many minutes (threshold = minutes).
   * @default { threshold: 5, period: 5 minutes }
   */
  readonly unfinishedCancels?: AlarmThreshold | false;
  /** Sweeper re-cancels: each is a lost event or a failed stop. @default { threshold: 1, period: 15 minutes } */
  readonly sweeperRecancels?: AlarmThreshold | false;
  /** Failed (or timed-out) dispatch executions. @default { threshold: 1, period: 5 minutes } */
  readonly failedDispatches?: AlarmThreshold | false;
  /** Step handler invocation errors. @default { threshold: 5, period: 5 minutes } */
  readonly stepHandlerErrors?: AlarmThreshold | false;
  /** Step handler throttles. @default { threshold: 1, period: 5 minutes } */
  readonly stepHandlerThrottles?: AlarmThreshold | false;
}

/** CloudWatch metric math takes at most 10 metrics per alarm expression. */
const METRICS_PER_EXPRESSION = 10;

/**
 * A CloudWatch dashboard and alarms for one Orchestrator. Each alarm has a default threshold
 * and a prop that sets it or (with `false`) removes the alarm.
 * @example
 * new Monitoring(this, 'Monitoring', {
 *   stepHandler: orchestrator.stepHandler,
 *   stateMachines: [...Object.values(orchestrator.stateMachines), orchestrator.graphRunner],
 *   sweeperRecancels: { threshold: 3 },
 *   failedDispatches: false,
 * });
 */
export class Monitoring extends Construct {
  /** The alarms made, by name (`UnfinishedCancels`, `SweeperRecancels`, `FailedDispatches…`, `StepHandlerErrors`, `StepHandlerThrottles`). */
  readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** The dashboard, unless `dashboardName: false`. */
  readonly dashboard: cloudwatch.Dashboard | undefined;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const stackName = props.metricsStackName ?? Stack.of(this).stackName;
    const alarms: Record<string, cloudwatch.Alarm> = {};
    const settings = (name: string, value: AlarmThreshold | false | undefined, threshold: number, period: Duration): Required<AlarmThreshold> | undefined => {
      if (value === false) return undefined;
      const chosen = { threshold: value?.threshold ?? threshold, period: value?.period ?? period };
      if (!Number.isFinite(chosen.threshold) || chosen.threshold <= 0) {
        throw new ValenceError(ErrorCode.ORCHESTRATOR_INVALID_PROPS, `Monitoring "${id}": ${name}.threshold must be a positive number, got ${String(chosen.threshold)}`);
      }
      if (!chosen.period.isUnresolved() && (chosen.period.toSeconds() < 60 || chosen.period.toSeconds() % 60 !== 0)) {
        throw new ValenceError(ErrorCode.ORCHESTRATOR_INVALID_PROPS, `Monitoring "${id}": ${name}.period must be a whole number of minutes (at least 1)`);
      }
      return chosen;
    };
    const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, description: string): void => {
      const made = new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      for (const action of props.alarmActions ?? []) made.addAlarmAction(action);
      alarms[name] = made;
    };
    const valenceMetric = (metricName: string, statistic: string, period: Duration): cloudwatch.Metric =>
      new cloudwatch.Metric({ namespace: VALENCE_NAMESPACE, metricName, dimensionsMap: { Stack: stackName }, statistic, period });

    const unfinished = settings('unfinishedCancels', props.unfinishedCancels, 5, Duration.minutes(5));
    const oldestCancel = valenceMetric(ValenceMetric.OldestUnfinishedCancelSeconds, 'Maximum', unfinished?.period ?? Duration.minutes(5));
    if (unfinished) {
      alarm('UnfinishedCancels', oldestCancel, unfinished.threshold * 60, `valence ${stackName}: a cancel request has not finished after ${unfinished.threshold} minutes (metric emitted by the sweeper; see infra/private/monitoring.ts)`);
    }
    const recancel = settings('sweeperRecancels', props.sweeperRecancels, 1, Duration.minutes(15));
    const recancels = valenceMetric(ValenceMetric.SweeperRecancels, 'Sum', recancel?.period ?? Duration.minutes(15));
    if (recancel) {
      alarm('SweeperRecancels', recancels, recancel.threshold, `valence ${stackName}: the sweeper had to cancel again ${recancel.threshold}+ times (a lost state-change event or a failed stop call)`);
    }

    const failed = settings('failedDispatches', props.failedDispatches, 1, Duration.minutes(5));
    const failedPeriod = failed?.period ?? Duration.minutes(5);
    const failedMetrics = props.stateMachines.flatMap((machine) => [
      machine.metricFailed({ period: failedPeriod, statistic: 'Sum' }),
      machine.metricTimedOut({ period: failedPeriod, statistic: 'Sum' }),
    ]);
    const failedSums: cloudwatch.IMetric[] = [];
    for (let i = 0; i < failedMetrics.length; i += METRICS_PER_EXPRESSION) {
      const chunk = failedMetrics.slice(i, i + METRICS_PER_EXPRESSION);
      failedSums.push(
        new cloudwatch.MathExpression({
          // Ids unique across chunks: the dashboard graphs every chunk in one widget.
          expression: chunk.map((_, j) => `m${i + j}`).join(' + '),
          usingMetrics: Object.fromEntries(chunk.map((m, j) => [`m${i + j}`, m])),
          label: 'failed dispatches',
          period: failedPeriod,
        }),
      );
    }
    if (failed) {
      failedSums.forEach((sum, i) =>
        alarm(failedSums.length === 1 ? 'FailedDispatches' : `FailedDispatches${i + 1}`, sum, failed.threshold, `valence ${stackName}: ${failed.threshold}+ dispatch executions failed or timed out${failedSums.length > 1 ? ` (state machines ${i * 5 + 1}–${Math.min((i + 1) * 5, props.stateMachines.length)})` : ''}`),
      );
    }

    const errors = settings('stepHandlerErrors', props.stepHandlerErrors, 5, Duration.minutes(5));
    if (errors) alarm('StepHandlerErrors', props.stepHandler.metricErrors({ period: errors.period, statistic: 'Sum' }), errors.threshold, `valence ${stackName}: the step handler failed ${errors.threshold}+ invocations`);
    const throttles = settings('stepHandlerThrottles', props.stepHandlerThrottles, 1, Duration.minutes(5));
    if (throttles) alarm('StepHandlerThrottles', props.stepHandler.metricThrottles({ period: throttles.period, statistic: 'Sum' }), throttles.threshold, `valence ${stackName}: the step handler was throttled ${throttles.threshold}+ times (raise reserved concurrency or the account limit)`);
    this.alarms = alarms;

    if (props.dashboardName === false) {
      this.dashboard = undefined;
      return;
    }
    const handlers = { step: props.stepHandler, ...props.otherHandlers };
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName ?? `${stackName}-valence`,
      defaultInterval: Duration.hours(3),
    });
    const alarmList = Object.values(alarms);
    if (alarmList.length > 0) this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'valence alarms', alarms: alarmList, width: 24, height: 3 }));
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Cancels: oldest unfinished request (s)', left: [oldestCancel], width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Sweeper re-cancels', left: [recancels], width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Failed dispatches', left: failedSums, width: 8 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Handler errors', left: Object.entries(handlers).map(([name, fn]) => fn.metricErrors({ label: name, statistic: 'Sum' })), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Handler throttles', left: Object.entries(handlers).map(([name, fn]) => fn.metricThrottles({ label: name, statistic: 'Sum' })), width: 8 }),
      new cloudwatch.GraphWidget({ title: 'Step handler duration (p50, p99)', left: [props.stepHandler.metricDuration({ statistic: 'p50' }), props.stepHandler.metricDuration({ statistic: 'p99' })], width: 8 }),
    );
  }
}
