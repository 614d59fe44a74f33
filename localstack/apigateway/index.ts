/**
 * The local API Gateway: REST APIs whose routes are Lambda proxy integrations with AWS_IAM
 * authorization, served at LocalStack's URL shape
 * `{endpoint}/restapis/{apiId}/{stage}/_user_request_/{path}`.
 *
 * valence's cancel endpoint is IAM-signed on AWS; here too a request without a valid SigV4
 * signature (service `execute-api`) is refused with API Gateway's 403 before any handler runs,
 * and the caller's identity reaches the handler in `requestContext.identity`, so the cancel
 * handler can record who asked.
 *
 * @example
 * ```ts
 * const api = createApiGatewayService({ hooks, lambda, credentials, region, accountId });
 * const apiId = api.createRestApi('valence');
 * api.addRoute(apiId, { method: 'POST', path: '/dispatches/{id}/cancel', functionName: 'cancel' });
 * const url = `${api.invokeUrl(apiId, endpoint)}/dispatches/d-1/cancel`;
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import type { CredentialStore, InvocationOutcome, LambdaInvoker, LocalService, RequestContext, ServiceHooks } from '../core/service.ts';
import { SignatureFailure, verifySignature } from '../core/sigv4.ts';
import { readBody } from '../wire/body.ts';
import { send } from '../wire/json.ts';
import { compileRoute, matchRoute } from './routes.ts';
import type { CompiledRoute } from './routes.ts';
import { ApiGatewayConfigError, compileRequestValidation, type RequestValidation, type RequestValidator } from './validation.ts';

/** Options of {@link createApiGatewayService}. */
export interface ApiGatewayServiceOptions {
  readonly hooks: ServiceHooks;
  readonly lambda: LambdaInvoker;
  readonly credentials: CredentialStore;
  readonly region: string;
  readonly accountId: string;
  /**
   * How long API Gateway waits for the integration before answering 504, as AWS's 29 s limit.
   * @default 29000
   */
  readonly integrationTimeoutMs?: number;
}

/** One route: an HTTP method and a resource path template, proxied to a Lambda function. */
export interface ApiRoute {
  /** `GET`, `POST`, … or `ANY`. */
  readonly method: string;
  /** Resource path with `{param}` and greedy `{param+}` segments, e.g. `/dispatches/{id}/cancel`. */
  readonly path: string;
  /** Name or ARN of the function behind the route. */
  readonly functionName: string;
  /** The method's request validator (a cloud assembly's `RequestValidatorId` and model). @default none */
  readonly validation?: RequestValidation;
}

/**
 * A stage's method throttling, as the stage's `/*` `*` method setting gives it: a token
 * bucket of `burstLimit` tokens refilled at `rateLimit` per second, shared by all methods.
 */
export interface StageThrottling {
  readonly rateLimit: number;
  readonly burstLimit: number;
}

/** The local API Gateway service. */
export interface LocalApiGatewayService extends LocalService {
  /** Creates a REST API with its deployed stages (`prod`, as a CDK RestApi deploys) and returns its id. */
  createRestApi(name: string, stages?: readonly string[]): string;
  /** Deploys one more stage of an API; requests name a deployed stage or are refused. */
  addStage(apiId: string, stage: string): void;
  /** Adds (or replaces) the route of a method and path on an API. */
  addRoute(apiId: string, route: ApiRoute): void;
  /**
   * Throttles every method of a stage (undefined: no limit, the default). A request past the
   * limit is answered 429 `TooManyRequestsException`, as AWS answers it, before its signature
   * is checked or its function runs.
   */
  setThrottling(apiId: string, stage: string, throttling: StageThrottling | undefined): void;
  /** Base URL of a stage; append the resource path (`/dispatches/d-1/cancel`). @default stage 'prod' */
  invokeUrl(apiId: string, endpoint: string, stage?: string): string;
}

export { ApiGatewayConfigError };
export type { RequestValidation };

const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'ANY']);
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const USER_REQUEST = '_user_request_';

interface RestApi {
  readonly id: string;
  readonly name: string;
  /** Deployed stage names. */
  readonly stages: Set<string>;
  readonly routes: (CompiledRoute & { readonly method: string; readonly functionName: string; readonly resourceId: string; readonly validate?: RequestValidator })[];
  /** Token buckets of the throttled stages. */
  readonly buckets: Map<string, TokenBucket>;
}

/** API Gateway's throttling algorithm: `burstLimit` tokens, refilled at `rateLimit` a second. */
class TokenBucket {
  #tokens: number;
  #at = performance.now();
  constructor(readonly limits: StageThrottling) {
    this.#tokens = limits.burstLimit;
  }

  /** Takes one token; false when none is left. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.limits.burstLimit, this.#tokens + ((now - this.#at) / 1000) * this.limits.rateLimit);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Error answers, with the messages and `x-amzn-ErrorType` codes API Gateway sends. */
const Refusal = {
  missingToken: { status: 403, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' },
  invalidToken: { status: 403, code: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' },
  badSignature: {
    status: 403,
    code: 'InvalidSignatureException',
    message:
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
  },
  internal: { status: 500, code: 'InternalServerErrorException', message: 'Internal server error' },
  badGateway: { status: 502, code: 'InternalServerErrorException', message: 'Internal server error' },
  timeout: { status: 504, code: 'IntegrationTimeout', message: 'Endpoint request timed out' },
  notFound: { status: 404, code: 'NotFoundException', message: 'Not Found' },
  throttled: { status: 429, code: 'TooManyRequestsException', message: 'Too Many Requests' },
} as const;

/** Creates the local API Gateway service. */
export function createApiGatewayService(opts: ApiGatewayServiceOptions): LocalApiGatewayService {
  const { hooks, lambda, credentials, region, accountId } = opts;
  const apis = new Map<string, RestApi>();
  const stopping = new AbortController();

  function createRestApi(name: string, stages: readonly string[] = ['prod']): string {
    let id: string;
    do id = randomId(10);
    while (apis.has(id));
    apis.set(id, { id, name, routes: [], stages: new Set(stages), buckets: new Map() });
    return id;
  }

  function addStage(apiId: string, stage: string): void {
    const api = apis.get(apiId);
    if (!api) throw new ApiGatewayConfigError(`no REST API with id '${apiId}'`);
    api.stages.add(stage);
  }

  function addRoute(apiId: string, route: ApiRoute): void {
    const api = apis.get(apiId);
    if (!api) throw new ApiGatewayConfigError(`no REST API with id '${apiId}'`);
    const method = route.method.toUpperCase();
    if (!METHODS.has(method)) throw new ApiGatewayConfigError(`unsupported method '${route.method}'`);
    const compiled = compileRoute(route.path);
    const existing = api.routes.findIndex((r) => r.method === method && r.resource === compiled.resource);
    const validate = route.validation ? compileRequestValidation(route.validation, `${method} ${route.path}`) : undefined;
    const entry = { ...compiled, method, functionName: route.functionName, resourceId: randomId(6), ...(validate ? { validate } : {}) };
    if (existing >= 0) api.routes[existing] = entry;
    else api.routes.push(entry);
  }

  function setThrottling(apiId: string, stage: string, throttling: StageThrottling | undefined): void {
    const api = apis.get(apiId);
    if (!api) throw new ApiGatewayConfigError(`no REST API with id '${apiId}'`);
    if (throttling === undefined) {
      api.buckets.delete(stage);
      return;
    }
    if (!(throttling.rateLimit >= 0) || !Number.isInteger(throttling.burstLimit) || throttling.burstLimit < 0) {
      throw new ApiGatewayConfigError(`throttling of stage '${stage}' needs rateLimit ≥ 0 and a whole burstLimit ≥ 0, got ${JSON.stringify(throttling)}`);
    }
    api.buckets.set(stage, new TokenBucket(throttling));
  }

  function invokeUrl(apiId: string, endpoint: string, stage = 'prod'): string {
    return `${endpoint.replace(/\/+$/, '')}/restapis/${apiId}/${stage}/${USER_REQUEST}`;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, _ctx: RequestContext): Promise<void> {
    const requestId = randomUUID();
    const apigwId = randomId(12);
    const refuse = (refusal: { status: number; code: string; message: string }): void => {
      send(res, refusal.status, JSON.stringify({ message: refusal.message }), {
        'Content-Type': 'application/json',
        'x-amzn-RequestId': requestId,
        'x-amzn-ErrorType': refusal.code,
        'x-amz-apigw-id': apigwId,
      });
    };
    try {
      const body = await readBody(req);
      const rawUrl = req.url ?? '/';
      const queryAt = rawUrl.indexOf('?');
      const rawPath = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
      const rawQuery = queryAt < 0 ? '' : rawUrl.slice(queryAt + 1);
      const parts = rawPath.split('/');
      // ['', 'restapis', apiId, stage, '_user_request_', ...resource path]
      if (parts[1] !== 'restapis' || !parts[2] || !parts[3] || parts[4] !== USER_REQUEST) return refuse(Refusal.notFound);
      const api = apis.get(parts[2]);
      if (!api) return refuse(Refusal.notFound);
      const stage = decodeURIComponent(parts[3]);
      // As on AWS, a stage that was never deployed answers 403 Forbidden before anything runs.
      if (!api.stages.has(stage)) return refuse({ status: 403, code: 'ForbiddenException', message: 'Forbidden' });
      const path = '/' + parts.slice(5).map(safeDecode).join('/');
      const method = (req.method ?? 'GET').toUpperCase();

      const match = matchRoute(api.routes, method, path);
      // AWS answers an unknown resource or method with the same 403 as a missing signature.
      if (!match) return refuse(Refusal.missingToken);
      const { route, pathParameters } = match;
      // Throttled before anything costly: the signature check and the function.
      const bucket = api.buckets.get(stage);
      if (bucket && !bucket.take()) return refuse(Refusal.throttled);

      const verdict = await verifySignature({ method, url: rawUrl, headers: req.headers, body }, credentials);
      if (!verdict.ok) {
        switch (verdict.code) {
          case SignatureFailure.Missing:
            return refuse(Refusal.missingToken);
          case SignatureFailure.UnknownAccessKey:
            return refuse(Refusal.invalidToken);
          case SignatureFailure.Malformed:
            return refuse({ status: 403, code: 'IncompleteSignatureException', message: verdict.reason });
          case SignatureFailure.Expired:
            return refuse({ status: 403, code: 'InvalidSignatureException', message: verdict.reason });
          default:
            return refuse(Refusal.badSignature);
        }
      }

      const operation = `${route.method} ${route.resource}`;
      hooks.count(operation);
      const fault = await hooks.fault(operation);
      if (fault) return refuse(fault);
      // The method's request validator, after authorization and before the function, as on AWS.
      const invalid = route.validate?.({ headers: req.headers, query: new URLSearchParams(rawQuery), pathParameters, body });
      if (invalid !== undefined) return refuse({ status: 400, code: 'BadRequestException', message: invalid });

      const now = new Date();
      const event = {
        resource: route.resource,
        path,
        httpMethod: method,
        ...headerMaps(req.rawHeaders),
        ...queryMaps(rawQuery),
        pathParameters: Object.keys(pathParameters).length > 0 ? pathParameters : null,
        stageVariables: null,
        requestContext: {
          resourceId: route.resourceId,
          resourcePath: route.resource,
          httpMethod: method,
          extendedRequestId: apigwId,
          requestTime: clfTime(now),
          path: `/${stage}${path}`,
          accountId,
          protocol: `HTTP/${req.httpVersion}`,
          stage,
          domainPrefix: api.id,
          requestTimeEpoch: now.getTime(),
          requestId,
          identity: {
            cognitoIdentityPoolId: null,
            accountId,
            cognitoIdentityId: null,
            caller: verdict.accessKeyId,
            sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
            principalOrgId: null,
            accessKey: verdict.accessKeyId,
            cognitoAuthenticationType: null,
            cognitoAuthenticationProvider: null,
            userArn: `arn:aws:iam::${accountId}:user/${verdict.accessKeyId}`,
            userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : null,
            user: verdict.accessKeyId,
          },
          domainName: typeof req.headers.host === 'string' ? req.headers.host : `${api.id}.execute-api.${region}.amazonaws.com`,
          apiId: api.id,
        },
        ...eventBody(body),
      };

      let outcome: InvocationOutcome;
      try {
        const timeout = AbortSignal.timeout(opts.integrationTimeoutMs ?? 29_000);
        outcome = await lambda.invoke(route.functionName, event, { signal: AbortSignal.any([timeout, stopping.signal]) });
      } catch {
        // Lambda keeps running on AWS too; API Gateway only stops waiting.
        return refuse(Refusal.timeout);
      }
      if (!outcome.ok) {
        // The function failed (502), or Lambda refused the call (throttled, not found: 500).
        return refuse(outcome.functionError === 'Unhandled' || outcome.functionError === 'Handled' ? Refusal.badGateway : Refusal.internal);
      }
      const proxied = proxyResponse(outcome.payload);
      if (!proxied) return refuse(Refusal.badGateway);
      const headers: Record<string, string | string[]> = { 'Content-Type': 'application/json', ...proxied.headers };
      headers['x-amzn-RequestId'] = requestId;
      headers['x-amz-apigw-id'] = apigwId;
      const bytes = proxied.body;
      res.writeHead(proxied.statusCode, { ...headers, 'Content-Length': String(bytes.length) });
      res.end(method === 'HEAD' ? undefined : bytes);
    } catch {
      if (!res.headersSent) refuse(Refusal.internal);
      else res.destroy();
    }
  }

  return {
    signingName: 'execute-api',
    handle,
    createRestApi,
    addStage,
    addRoute,
    setThrottling,
    invokeUrl,
    stop: () => {
      stopping.abort(new Error('API Gateway stopped'));
      return Promise.resolve();
    },
  };
}

/** `headers` (last value wins) and `multiValueHeaders`, with the names as the client sent them. */
function headerMaps(rawHeaders: string[]): { headers: Record<string, string> | null; multiValueHeaders: Record<string, string[]> | null } {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
  }
  const any = Object.keys(headers).length > 0;
  return { headers: any ? headers : null, multiValueHeaders: any ? multiValueHeaders : null };
}

function queryMaps(rawQuery: string): {
  queryStringParameters: Record<string, string> | null;
  multiValueQueryStringParameters: Record<string, string[]> | null;
} {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [key, value] of new URLSearchParams(rawQuery)) {
    single[key] = value;
    (multi[key] ??= []).push(value);
  }
  const any = Object.keys(single).length > 0;
  return { queryStringParameters: any ? single : null, multiValueQueryStringParameters: any ? multi : null };
}

/** Text bodies pass as strings; bytes that are not UTF-8 pass base64-encoded, as API Gateway does. */
function eventBody(body: Buffer): { body: string | null; isBase64Encoded: boolean } {
  if (body.length === 0) return { body: null, isBase64Encoded: false };
  const text = body.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(body)) return { body: text, isBase64Encoded: false };
  return { body: body.toString('base64'), isBase64Encoded: true };
}

/** Reads a Lambda proxy response; undefined when malformed (API Gateway answers 502). */
function proxyResponse(payload: unknown): { statusCode: number; headers: Record<string, string | string[]>; body: Buffer } | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const response = payload as Record<string, unknown>;
  const statusCode = response['statusCode'];
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) return undefined;
  const headers: Record<string, string | string[]> = {};
  const single = response['headers'];
  const multi = response['multiValueHeaders'];
  if (single !== undefined && single !== null) {
    if (typeof single !== 'object') return undefined;
    for (const [name, value] of Object.entries(single)) headers[name] = String(value);
  }
  if (multi !== undefined && multi !== null) {
    if (typeof multi !== 'object') return undefined;
    for (const [name, values] of Object.entries(multi)) {
      if (!Array.isArray(values)) return undefined;
      headers[name] = values.map(String);
    }
  }
  const body = response['body'];
  if (body !== undefined && body !== null && typeof body !== 'string') return undefined;
  const bytes = typeof body === 'string' ? Buffer.from(body, response['isBase64Encoded'] === true ? 'base64' : 'utf8') : Buffer.alloc(0);
  return { statusCode, headers, body: bytes };
}

/** Common Log Format time, as `requestContext.requestTime` carries it. */
function clfTime(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

function randomId(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length);
  let id = '';
  for (const byte of bytes) id += alphabet[byte % alphabet.length];
  return id;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
