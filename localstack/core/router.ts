/**
 * The local cloud's one port: routes each request to the service it was signed for, serves
 * the local cloud's own admin API under `/_valence/`, and renders errors the way each AWS
 * protocol does so that SDKs and the AWS CLI parse them into their usual exceptions.
 *
 * Routing follows LocalStack: the service name of the SigV4 credential scope decides. Unsigned
 * requests fall back to the `X-Amz-Target` prefix (JSON protocols) or the path (REST
 * protocols); requests the router cannot place get an AWS-shaped error, never a hang.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestCounters } from './counters.ts';
import { FaultConfigError } from './faults.ts';
import type { FaultConfig, FaultInjector } from './faults.ts';
import type { InjectedFault, LocalService, RequestContext } from './service.ts';
import { drain, readBody } from '../wire/body.ts';
import { ErrorProtocol, sendAwsError } from '../wire/errors.ts';
import { parseCredentialScope, splitUrl } from './sigv4.ts';

/** Guesses the error format a client expects from how its request looks. */
export function errorProtocolOf(req: IncomingMessage): ErrorProtocol {
  const contentType = String(req.headers['content-type'] ?? '');
  if (contentType.includes('json') || req.headers['x-amz-target']) return ErrorProtocol.Json;
  if (contentType.includes('x-www-form-urlencoded')) return ErrorProtocol.Query;
  const scope = parseCredentialScope(req);
  if (scope?.service === 's3' || !scope) return ErrorProtocol.RestXml;
  return ErrorProtocol.Json;
}

/** X-Amz-Target prefixes of the JSON-protocol services, for unsigned requests. */
const TARGET_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['DynamoDB_', 'dynamodb'],
  ['AWSStepFunctions', 'states'],
  ['AWSEvents', 'events'],
  ['AWSBraket', 'braket'],
];

/** Path prefixes of the REST-protocol services, for unsigned requests. */
const PATH_PREFIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\/restapis\//, 'execute-api'],
  [/^\/2015-03-31\/functions/, 'lambda'],
  [/^\/v1\/(createcomputeenvironment|createjobqueue|registerjobdefinition|submitjob|describejobs|listjobs|canceljob|terminatejob|describe|update|delete)/i, 'batch'],
  [/^\/(quantum-tasks?|jobs?|devices?)(\/|$|\?)/, 'braket'],
];

/**
 * The service a request is meant for: its SigV4 scope, else its `X-Amz-Target`, else its
 * path. `/restapis/` always goes to API Gateway's execute-api, whatever signed it.
 */
export function routeOf(req: IncomingMessage): { service: string | undefined; signed: boolean } {
  const { path } = splitUrl(req.url);
  if (path.startsWith('/restapis/')) return { service: 'execute-api', signed: parseCredentialScope(req) !== undefined };
  const scope = parseCredentialScope(req);
  if (scope) return { service: scope.service, signed: true };
  // Virtual-hosted S3 (`bucket.localhost`, `bucket.s3.localhost.localstack.cloud`) by Host.
  if (/^[^:]+\.localhost(\.localstack\.cloud)?(:\d+)?$/.test(String(req.headers.host ?? ''))) return { service: 's3', signed: false };
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') {
    for (const [prefix, service] of TARGET_PREFIXES) if (target.startsWith(prefix)) return { service, signed: false };
  }
  for (const [pattern, service] of PATH_PREFIXES) if (pattern.test(path)) return { service, signed: false };
  return { service: undefined, signed: false };
}

/** What the admin API reports under `GET /_valence/health`. */
export interface HealthReport {
  readonly status: 'ok';
  readonly endpoint: string;
  readonly region: string;
  readonly accountId: string;
  readonly services: readonly string[];
  readonly uptimeMs: number;
}

/** What the router needs from the local cloud. */
export interface RouterOptions {
  /** Services by SigV4 signing name. May grow after the router is built. */
  readonly services: ReadonlyMap<string, LocalService>;
  readonly counters: RequestCounters;
  readonly faults: FaultInjector;
  readonly region: string;
  readonly accountId: string;
  readonly health: () => HealthReport;
}

/** Builds the `request` listener of the local cloud's HTTP server. */
export function createRouter(options: RouterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { services, counters, faults } = options;
  const contextFor = (service: string, req: IncomingMessage): RequestContext => {
    const scope = parseCredentialScope(req);
    return {
      region: scope?.region ?? options.region,
      accessKeyId: scope?.accessKeyId,
      accountId: options.accountId,
      count: (operation) => counters.record(service, operation),
      fault: (operation) => faults.decide(service, operation),
    };
  };

  return (req, res) => {
    const { path } = splitUrl(req.url);
    if (path === '/_valence' || path.startsWith('/_valence/')) {
      void serveAdmin(req, res, path, options);
      return;
    }
    const route = routeOf(req);
    const service =
      route.service === undefined
        ? undefined
        : (services.get(route.service) ?? (route.service === 'execute-api' ? services.get('apigateway') : undefined));
    if (!service) {
      const protocol = errorProtocolOf(req);
      const error: InjectedFault =
        route.service === undefined && !route.signed
          ? { status: 403, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token: sign the request with SigV4 so the local cloud can tell which service it is for' }
          : {
              status: 501,
              code: 'NotImplemented',
              message: `The local cloud does not host the '${route.service ?? 'unknown'}' service. Hosted: ${[...services.keys()].sort().join(', ')}`,
            };
      drain(req);
      sendAwsError(res, protocol, error);
      return;
    }
    const ctx = contextFor(service.signingName, req);
    let outcome: void | Promise<void>;
    try {
      outcome = service.handle(req, res, ctx);
    } catch (error) {
      failInternally(req, res, error);
      return;
    }
    if (outcome) outcome.catch((error: unknown) => failInternally(req, res, error));
  };
}

function failInternally(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  process.emitWarning(`local cloud: ${req.method} ${req.url} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  sendAwsError(res, errorProtocolOf(req), { status: 500, code: 'InternalFailure', message: error instanceof Error ? error.message : String(error) });
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

async function serveAdmin(req: IncomingMessage, res: ServerResponse, path: string, options: RouterOptions): Promise<void> {
  const route = `${req.method ?? 'GET'} ${path.replace(/\/+$/, '')}`;
  try {
    switch (route) {
      case 'GET /_valence/health':
        drain(req);
        return sendJson(res, 200, options.health());
      case 'GET /_valence/counters':
        drain(req);
        return sendJson(res, 200, options.counters.snapshot());
      case 'POST /_valence/counters/reset': {
        drain(req);
        const before = options.counters.snapshot();
        options.counters.reset();
        return sendJson(res, 200, before);
      }
      case 'GET /_valence/faults':
        drain(req);
        return sendJson(res, 200, options.faults.config());
      case 'PUT /_valence/faults': {
        const text = (await readBody(req)).toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text || '{}');
        } catch {
          throw new FaultConfigError('the body must be a JSON fault configuration');
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          throw new FaultConfigError('the body must be a JSON object { rules, lambdaCrashes }');
        }
        options.faults.set(parsed as Partial<FaultConfig>);
        return sendJson(res, 200, options.faults.config());
      }
      case 'DELETE /_valence/faults':
        drain(req);
        options.faults.clear();
        return sendJson(res, 200, options.faults.config());
      default:
        drain(req);
        return sendJson(res, 404, { __type: 'NotFound', message: `No admin route ${route}` });
    }
  } catch (error) {
    if (error instanceof FaultConfigError) return sendJson(res, 400, { __type: error.awsCode, message: error.message });
    return sendJson(res, 500, { __type: 'InternalFailure', message: error instanceof Error ? error.message : String(error) });
  }
}

/** A listening HTTP server with a close that does not wait for idle keep-alive sockets. */
export interface ListeningServer {
  readonly server: Server;
  readonly host: string;
  readonly port: number;
  /** `http://host:port`, with IPv6 hosts bracketed. */
  readonly endpoint: string;
  /** Stops accepting, cuts every open connection, resolves once the port is released. */
  close(): Promise<void>;
}

/** Starts listening; `port: 0` picks a free port. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, host: string, port: number): Promise<ListeningServer> {
  const server = createServer({ keepAliveTimeout: 5_000 }, handler);
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.address.includes(':') ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    server,
    host: address.address,
    port: address.port,
    endpoint: `http://${shownHost === '[::]' ? '[::1]' : shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${address.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
