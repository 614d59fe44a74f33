/**
 * The handlers' structured log: Powertools for AWS Lambda's Logger, one JSON object a line
 * (CloudWatch Logs Insights and the local Lambda's output read it alike). Every line a step
 * invocation writes carries `dispatchId`, `nodeId` and `attempt`, so that one node's story is
 * one filter away. Dispatch-level steps (`finalize`, `plan`) write `nodeId` and `attempt` as
 * {@link NO_NODE} (the Logger drops null-valued keys, and the keys are on every line).
 */
import { Logger } from '@aws-lambda-powertools/logger';

/** The handlers' one logger; `POWERTOOLS_LOG_LEVEL` sets its level (default INFO). */
export const logger = new Logger({ serviceName: 'valence' });

/** The value of `nodeId` and `attempt` on the lines of a step that is not a node's. */
export const NO_NODE = 'none';

/** The keys every line of one invocation carries. */
export interface InvocationLogKeys {
  readonly dispatchId: string;
  readonly nodeId: number | typeof NO_NODE;
  /** The node's attempt this invocation makes (its stored attempts plus one), or {@link NO_NODE}. */
  readonly attempt: number | typeof NO_NODE;
}

/**
 * Runs `work` with `keys` on every line it logs, between a start and an end (or failure)
 * line. A Lambda sandbox runs one invocation at a time, so the keys are the logger's own.
 */
export async function loggedInvocation<T>(what: string, keys: InvocationLogKeys, extra: Record<string, unknown>, work: () => Promise<T>): Promise<T> {
  logger.resetKeys();
  logger.appendKeys({ ...keys });
  const started = performance.now();
  logger.info(`${what} started`, extra);
  try {
    const result = await work();
    logger.info(`${what} ended`, { ...extra, durationMs: Math.round(performance.now() - started) });
    return result;
  } catch (error) {
    logger.error(`${what} failed`, { ...extra, durationMs: Math.round(performance.now() - started), error: error as Error });
    throw error;
  } finally {
    logger.resetKeys();
  }
}
