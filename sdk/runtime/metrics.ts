/**
 * valence's own CloudWatch metrics, printed as Embedded Metric Format (EMF) lines.
 *
 * Lambda ships every stdout line to CloudWatch Logs, and CloudWatch turns an EMF line into a
 * metric with no metric filter and no `PutMetricData` call (so no extra permission, latency or
 * cost per invocation). The Orchestrator's alarms (infra/private/monitoring.ts) read these
 * metrics in namespace {@link METRICS_NAMESPACE} with the one dimension `Stack`.
 *
 * Written by hand rather than with Powertools' Metrics: Powertools adds a `service` dimension
 * to every metric, and a metric with an extra dimension is a different metric to CloudWatch,
 * so the alarms would read nothing. The format is a small published schema
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
 *
 * @module
 */

/** Namespace of valence's own metrics; the Orchestrator's alarms read it. */
export const METRICS_NAMESPACE = 'valence';

/** One metric value. */
export interface MetricValue {
  readonly name: string;
  readonly unit: 'Count' | 'Seconds';
  readonly value: number;
}

/** The EMF line for `metrics`, all with dimension `Stack` = `stackName`, at `timestampMs`. */
export function emfLine(stackName: string, metrics: readonly MetricValue[], timestampMs: number): string {
  const values = Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  return JSON.stringify({
    _aws: {
      Timestamp: timestampMs,
      CloudWatchMetrics: [{ Namespace: METRICS_NAMESPACE, Dimensions: [['Stack']], Metrics: metrics.map((m) => ({ Name: m.name, Unit: m.unit })) }],
    },
    Stack: stackName,
    ...values,
  });
}
