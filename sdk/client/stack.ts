/**
 * Finding a valence stack: its outputs through CloudFormation's `DescribeStacks` (the local
 * cloud serves the same), read under the contract's `OUTPUT` keys.
 */
import { DescribeStacksCommand, type Stack } from '@aws-sdk/client-cloudformation';
import type { AwsClients } from '../aws.ts';
import { OUTPUT } from '../contract.ts';
import { ErrorCode, ValenceError } from '../errors.ts';
import type { StackOutputs } from '../runtime/config.ts';

/** The stack could not be found, cannot be reached, or does not look like a valence stack. */
export class StackNotFoundError extends ValenceError {
  override readonly name = 'StackNotFoundError';
}

/** Reads the outputs of stack `stackName`; a {@link StackNotFoundError} says why it cannot. */
export async function loadStackOutputs(aws: AwsClients, stackName: string): Promise<StackOutputs> {
  const stack = await describeStack(aws, stackName);
  const get = (key: string): string | undefined => stack?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
  const required = (key: string): string => {
    const value = get(key);
    if (!value) throw new StackNotFoundError(ErrorCode.STACK_NOT_FOUND, `Stack "${stackName}" has no output "${key}"; is it a valence stack?`);
    return value;
  };
  const jobQueueArn = get(OUTPUT.jobQueueArn);
  return {
    apiUrl: required(OUTPUT.apiUrl),
    tableName: required(OUTPUT.tableName),
    bucketName: required(OUTPUT.bucketName),
    stateMachineArnPrefix: required(OUTPUT.stateMachineArnPrefix),
    graphRunnerArn: required(OUTPUT.graphRunnerArn),
    ...(jobQueueArn ? { jobQueueArn } : {}),
  };
}

async function describeStack(aws: AwsClients, stackName: string): Promise<Stack | undefined> {
  try {
    return (await aws.cloudformation.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks?.[0];
  } catch (error) {
    const { name, code, message } = error as { name?: string; code?: string; message?: string };
    if (code === 'ECONNREFUSED' || message?.includes('ECONNREFUSED')) {
      throw new StackNotFoundError(
        ErrorCode.ENDPOINT_UNREACHABLE,
        `Nothing answers at ${aws.config.endpoint ?? 'the AWS endpoint'}. Start the local cloud with \`valence local\` (or \`npm run demo\`), or unset AWS_ENDPOINT_URL to use AWS.`,
        { cause: error },
      );
    }
    if (name === 'ValidationError' || /does not exist/.test(message ?? '')) {
      throw new StackNotFoundError(
        ErrorCode.STACK_NOT_FOUND,
        `No stack named "${stackName}" exists${aws.config.endpoint ? ` at ${aws.config.endpoint}` : ''}. Deploy it with \`npx cdk deploy\`, or pass the right --stack / VALENCE_STACK.`,
        { cause: error },
      );
    }
    throw error;
  }
}
