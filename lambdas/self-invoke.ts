/**
 * An asynchronous invocation (`InvocationType: Event`) of the function this code runs in: how
 * the cancel handler carries a large cancel on and how the step handler wakes a released node
 * (issue 18). Only a deployed function knows its name (`AWS_LAMBDA_FUNCTION_NAME`, set by Lambda
 * and by the local cloud); elsewhere there is none and the caller falls back to its own way.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { RuntimeContext } from '../sdk/runtime/context.ts';

/**
 * Sends events to this same function asynchronously; undefined outside a deployed function.
 * `maxAttempts` bounds the SDK's retries of a refused call (throttling, a 5xx).
 */
export function selfInvoker<E>(ctx: RuntimeContext, options: { readonly maxAttempts?: number } = {}): ((event: E) => Promise<void>) | undefined {
  const functionName = process.env['AWS_LAMBDA_FUNCTION_NAME'];
  if (!functionName) return undefined;
  const { config } = ctx.aws;
  const client = new LambdaClient({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    maxAttempts: options.maxAttempts ?? config.maxAttempts ?? 8,
  });
  return async (event) => {
    await client.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(event)) }));
  };
}
