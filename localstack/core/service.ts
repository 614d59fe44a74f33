/**
 * The contract between the local cloud's router and the AWS services it hosts.
 *
 * One HTTP port serves every service. The router reads the SigV4 credential scope of each
 * request (Authorization header, or `X-Amz-Credential` in a presigned query) to learn the
 * signing service name, then hands the untouched request to the service registered under that
 * name. Services read the body themselves, so streaming protocols (S3) stay streaming.
 *
 * Services talk to each other through the narrow interfaces below (Lambda invocation, the
 * event bus), never through HTTP, so one service can be tested with a stub of another.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AwsErrorShape } from '../wire/errors.ts';

/** What the router learned about a request before a service sees it. */
export interface RequestContext {
  /** Region from the credential scope, or the local cloud's default region. */
  readonly region: string;
  /** Access key id from the credential scope; undefined for unsigned requests. */
  readonly accessKeyId: string | undefined;
  /** The local cloud's account id (fixed, like LocalStack's `000000000000`). */
  readonly accountId: string;
  /** Records one request to `operation` on the counters and applies fault injection. */
  count(operation: string): void;
  /**
   * Fault injection for this service and operation: resolves after any configured added
   * latency, and returns an error the service must answer with instead of doing the work
   * (throttling or a 5xx), or undefined to proceed.
   */
  fault(operation: string): Promise<InjectedFault | undefined>;
}

/** An error chosen by fault injection; the service renders it in its own wire format. */
export type InjectedFault = AwsErrorShape;

/** One AWS service hosted by the local cloud. */
export interface LocalService {
  /** SigV4 signing name, e.g. `dynamodb`, `s3`, `states`, `lambda`, `batch`, `braket`. */
  readonly signingName: string;
  /** Serves one request; must always end the response. */
  handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void | Promise<void>;
  /** Releases everything the service holds: sockets, timers, workers, child processes. */
  stop(): Promise<void>;
}

/** Options of one local Lambda function; the code is a module on disk, loaded as written. */
export interface LocalFunctionConfig {
  readonly functionName: string;
  /** Absolute path (or file URL) of the handler module; `.ts` modules load as written. */
  readonly entry: string;
  /** Exported handler name. @default 'handler' */
  readonly exportName?: string;
  /** Extra environment variables, on top of the endpoint/region/credentials the cloud sets. */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default 900 */
  readonly timeoutSeconds?: number;
  /** Most invocations running at once; further ones wait (sync) or queue (async). @default 10 */
  readonly reservedConcurrency?: number;
  /** Memory size the function reports (context, environment, GetFunction); not enforced. @default 128 */
  readonly memorySizeMB?: number;
}

/** The outcome of one invocation, as Lambda's Invoke API reports it. */
export type InvocationOutcome =
  | { readonly ok: true; readonly payload: unknown }
  | {
      readonly ok: false;
      /** `Unhandled` (the handler threw or the runtime crashed) or a service error code. */
      readonly functionError: string;
      /** `{ errorType, errorMessage, trace? }`, the shape Lambda returns. */
      readonly payload: { errorType: string; errorMessage: string; trace?: string[] };
    };

/** In-process access to the local Lambda service, for Step Functions, EventBridge, API Gateway. */
export interface LambdaInvoker {
  /** Invokes by function name or ARN and waits for the outcome. */
  invoke(functionNameOrArn: string, payload: unknown, options?: { signal?: AbortSignal }): Promise<InvocationOutcome>;
  /** True when a function of that name or ARN exists. */
  has(functionNameOrArn: string): boolean;
}

/** An EventBridge event as delivered to targets. */
export interface CloudEvent {
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: Record<string, unknown>;
  readonly resources?: readonly string[];
}

/** In-process access to the local event bus, for services that emit state-change events. */
export interface EventSink {
  /** Delivers the event to every matching rule's targets, asynchronously; never throws. */
  emit(event: CloudEvent): void;
}

/**
 * Counting and fault injection bound to one service, handed to each service factory so that
 * in-process calls (Step Functions invoking Lambda, say) are counted like HTTP ones.
 */
export interface ServiceHooks {
  /** Records one call of `operation` on the counters. */
  count(operation: string): void;
  /** Applies configured latency and returns an error to answer with, or undefined. */
  fault(operation: string): Promise<InjectedFault | undefined>;
  /**
   * Whether fault injection says this Lambda invocation must crash: `true` as soon as the
   * handler starts, `{ afterMs }` that long after it started (a crash mid-node), else false.
   */
  crashInvocation(functionName: string): boolean | { readonly afterMs: number };
}

/** Credentials the local cloud accepts; `test`/`test` (LocalStack's convention) by default. */
export interface CredentialStore {
  /** The secret for an access key id, or undefined when the key is unknown. */
  secretFor(accessKeyId: string): string | undefined;
  /**
   * The session token the cloud issued with this key, if any: a signed request must carry
   * exactly it (none when undefined), so a token the cloud never issued is refused, as on AWS.
   */
  sessionTokenFor?(accessKeyId: string): string | undefined;
}
