/**
 * A minimal CloudFormation for the local cloud: the stacks the local cloud "deployed", readable
 * with `DescribeStacks`/`ListStacks` over the real query protocol.
 *
 * The SDK finds a deployed stack's table, bucket and state machines from the stack's outputs
 * (`connect({ stackName })`); answering `DescribeStacks` here lets that same code run against
 * AWS and the local cloud. Nothing is provisioned from templates: the local cloud's deploy step
 * creates the resources itself and records the outputs with {@link LocalCloudFormationService.putStack}.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../wire/body.ts';
import { ErrorProtocol, newRequestId, sendAwsError, xmlEscape } from '../wire/errors.ts';
import type { LocalService, RequestContext } from '../core/service.ts';

/** One stack output, as `DescribeStacks` returns it. */
export interface StackOutput {
  readonly OutputKey: string;
  readonly OutputValue: string;
  readonly Description?: string;
  readonly ExportName?: string;
}

/** A stack the local cloud deployed. */
export interface LocalStack {
  readonly stackName: string;
  readonly stackId: string;
  readonly createdAt: Date;
  readonly updatedAt?: Date;
  readonly outputs: readonly StackOutput[];
}

/** The local CloudFormation, plus the in-process API the deploy step uses. */
export interface LocalCloudFormationService extends LocalService {
  /** Records (or replaces the outputs of) a deployed stack; returns its stack id (an ARN). */
  putStack(stackName: string, outputs: Readonly<Record<string, string>> | readonly StackOutput[]): string;
  /** Forgets a stack. */
  deleteStack(stackName: string): void;
  /** A stack by name or stack id, or undefined. */
  getStack(nameOrId: string): LocalStack | undefined;
}

const XMLNS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';

/** Creates the local CloudFormation for one region and account. */
export function createCloudFormationService(options: { region: string; accountId: string }): LocalCloudFormationService {
  const stacks = new Map<string, LocalStack>();
  const find = (nameOrId: string) => stacks.get(nameOrId) ?? [...stacks.values()].find((s) => s.stackId === nameOrId);

  const respond = (res: ServerResponse, action: string, result: string) => {
    const requestId = newRequestId();
    const body =
      `<${action}Response xmlns="${XMLNS}"><${action}Result>${result}</${action}Result>` +
      `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/xml');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.setHeader('x-amzn-RequestId', requestId);
    res.end(body);
  };

  return {
    signingName: 'cloudformation',
    async handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
      const body = await readBody(req);
      const params = new URLSearchParams(body.toString('utf8'));
      const url = new URL(req.url ?? '/', 'http://local');
      const action = params.get('Action') ?? url.searchParams.get('Action') ?? 'Unknown';
      ctx.count(action);
      const fault = await ctx.fault(action);
      if (fault) return sendAwsError(res, ErrorProtocol.Query, fault);
      switch (action) {
        case 'DescribeStacks': {
          const name = params.get('StackName');
          let selected: LocalStack[];
          if (name) {
            const stack = find(name);
            if (!stack) {
              return sendAwsError(res, ErrorProtocol.Query, { status: 400, code: 'ValidationError', message: `Stack with id ${name} does not exist` });
            }
            selected = [stack];
          } else {
            selected = [...stacks.values()];
          }
          return respond(res, action, `<Stacks>${selected.map(stackXml).join('')}</Stacks>`);
        }
        case 'ListStacks': {
          const summaries = [...stacks.values()].map(
            (s) =>
              `<member><StackId>${xmlEscape(s.stackId)}</StackId><StackName>${xmlEscape(s.stackName)}</StackName>` +
              `<CreationTime>${s.createdAt.toISOString()}</CreationTime><StackStatus>${statusOf(s)}</StackStatus></member>`,
          );
          return respond(res, action, `<StackSummaries>${summaries.join('')}</StackSummaries>`);
        }
        default:
          return sendAwsError(res, ErrorProtocol.Query, {
            status: 400,
            code: 'InvalidAction',
            message: `The local cloud's CloudFormation serves DescribeStacks and ListStacks only, not ${action}`,
          });
      }
    },
    putStack(stackName, outputs) {
      const list: StackOutput[] = Array.isArray(outputs)
        ? [...(outputs as readonly StackOutput[])]
        : Object.entries(outputs as Readonly<Record<string, string>>).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue }));
      const existing = stacks.get(stackName);
      const stack: LocalStack = existing
        ? { ...existing, outputs: list, updatedAt: new Date() }
        : {
            stackName,
            stackId: `arn:aws:cloudformation:${options.region}:${options.accountId}:stack/${stackName}/${randomUUID()}`,
            createdAt: new Date(),
            outputs: list,
          };
      stacks.set(stackName, stack);
      return stack.stackId;
    },
    deleteStack(stackName) {
      stacks.delete(stackName);
    },
    getStack(nameOrId) {
      return find(nameOrId);
    },
    stop() {
      stacks.clear();
      return Promise.resolve();
    },
  };
}

function statusOf(stack: LocalStack): string {
  return stack.updatedAt ? 'UPDATE_COMPLETE' : 'CREATE_COMPLETE';
}

function stackXml(stack: LocalStack): string {
  const outputs = stack.outputs
    .map(
      (o) =>
        `<member><OutputKey>${xmlEscape(o.OutputKey)}</OutputKey><OutputValue>${xmlEscape(o.OutputValue)}</OutputValue>` +
        (o.Description !== undefined ? `<Description>${xmlEscape(o.Description)}</Description>` : '') +
        (o.ExportName !== undefined ? `<ExportName>${xmlEscape(o.ExportName)}</ExportName>` : '') +
        '</member>',
    )
    .join('');
  return (
    `<member><StackId>${xmlEscape(stack.stackId)}</StackId><StackName>${xmlEscape(stack.stackName)}</StackName>` +
    `<CreationTime>${stack.createdAt.toISOString()}</CreationTime>` +
    (stack.updatedAt ? `<LastUpdatedTime>${stack.updatedAt.toISOString()}</LastUpdatedTime>` : '') +
    `<StackStatus>${statusOf(stack)}</StackStatus><DisableRollback>false</DisableRollback>` +
    `<Outputs>${outputs}</Outputs><Parameters/><Tags/></member>`
  );
}
