/**
 * The EventBridge rules: Batch and Braket state changes to the completion handler, and the
 * sweeper's schedule. Each rule's Lambda target grants EventBridge invoking its function.
 */
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';

/** Props of {@link addEventRules}. */
export interface EventRulesProps {
  readonly completionHandler: lambda.IFunction;
  readonly sweeper: lambda.IFunction;
  readonly sweepInterval: Duration;
  /** The Batch queues whose job state changes matter; none means no Batch rule. */
  readonly jobQueueArns: readonly string[];
  /** Whether the stack has Batch at all. */
  readonly hasBatch: boolean;
}

/**
 * Adds the rules to the Orchestrator's own scope (ids `BatchJobStateChange`,
 * `BraketStateChange`, `SweepSchedule`), so their logical ids stay those of earlier versions.
 */
export function addEventRules(scope: Construct, props: EventRulesProps): void {
  // Events are retried for six hours: a completion handler that was throttled or failed still finishes the node.
  const completion = (): targets.LambdaFunction => new targets.LambdaFunction(props.completionHandler, { retryAttempts: 8, maxEventAge: Duration.hours(6) });
  if (props.hasBatch) {
    new events.Rule(scope, 'BatchJobStateChange', {
      description: "valence: state changes of jobs in this stack's Batch queues, to the completion handler",
      eventPattern: { source: ['aws.batch'], detailType: ['Batch Job State Change'], detail: { jobQueue: [...props.jobQueueArns] } },
      targets: [completion()],
    });
  }
  new events.Rule(scope, 'BraketStateChange', {
    description: 'valence: Braket quantum task and hybrid job state changes, to the completion handler',
    eventPattern: { source: ['aws.braket'], detailType: ['Braket Task State Change', 'Braket Job State Change'] },
    targets: [completion()],
  });
  new events.Rule(scope, 'SweepSchedule', {
    description: 'valence: periodic sweep for cancelled nodes whose jobs still run',
    schedule: events.Schedule.rate(props.sweepInterval),
    targets: [new targets.LambdaFunction(props.sweeper, { retryAttempts: 0 })],
  });
}
