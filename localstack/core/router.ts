/**
 * The local cloud's one port: routes each request to the service it was signed for, serves
 * the local cloud's own admin API under `/_valence/`, and renders errors the way each AWS
 * protocol does so that SDKs and the AWS CLI parse them into their usual exceptions.
 *
 * Routing follows LocalStack: the service name of the SigV4 credential scope decides (unsigned
 * requests are placed by `X-Amz-Target` or path only to answer in the right error shape).
 * Before any service sees a request it passes the gate (core/gate.ts): Host, browser shape,
 * body cap, SigV4 for this region and service. Only the admin API under `/_valence/` takes a
 * per-start token instead of a signature.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestCounters } from './counters.ts';
import { FaultConfigError } from './faults.ts';
import type { FaultInjector } from './faults.ts';
import type { CredentialStore, InjectedFault, LocalService, RequestContext } from './service.ts';
import { BODY_LIMITS, DEFAULT_BODY_LIMIT, browserShaped, declaredTooLarge, protocolOfService, signatureRefusal, tokenMatches, tooLarge, verifyFor, verifyingStream } from './gate.ts';
import type { Refusal } from './gate.ts';
import { BodyTooLargeError, drain, readBody, replayRequest, standInRequest } from '../wire/body.ts';
import { ErrorProtocol, sendAwsError } from '../wire/errors.ts';
import { SignatureFailure, parseCredentialScope, splitUrl } from './sigv4.ts';

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

/** The service an `X-Amz-Target` header names, if any. */
function targetServiceOf(req: IncomingMessage): string | undefined {
  const target = req.headers['x-amz-target'];
  if (typeof target !== 'string') return undefined;
  return TARGET_PREFIXES.find(([prefix]) => target.startsWith(prefix))?.[1];
}

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
  /** The key pairs (and issued session tokens) signatures are checked against. */
  readonly credentials: CredentialStore;
  /** The per-start secret the admin API under `/_valence/` requires in {@link ADMIN_TOKEN_HEADER}. */
  readonly adminToken: string;
  /** Whether a `Host` header names this server (known once it listens; see {@link hostMatcher}). */
  readonly hostAllowed: (host: string | undefined) => boolean;
  /**
   * Authorization of a signed request (IAM), after its signature is verified and before a
   * service sees it: a refusal to answer with, or undefined to proceed. None: every signed request proceeds.
   */
  readonly authorize?: (req: IncomingMessage, body: Buffer | undefined, service: string, accessKeyId: string) => Promise<Refusal | undefined>;
}

/** The header that carries the admin token; a browser cannot send it cross-origin without a preflight. */
export const ADMIN_TOKEN_HEADER = 'x-valence-admin-token';

/** S3 bodies up to this size with a declared hex payload hash are verified before S3 sees them. */
const VERIFIED_S3_BODY_BYTES = 64 * 1024 * 1024;

/** The signing name a request to `service` must be scoped to. */
function signingNameOf(service: LocalService, routed: string): string {
  return routed === 'execute-api' ? 'execute-api' : service.signingName;
}

/** Builds the `request` listener of the local cloud's HTTP server. */
export function createRouter(options: RouterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { services, counters, faults } = options;
  const contextFor = (service: string, accessKeyId: string): RequestContext => ({
    region: options.region,
    accessKeyId,
    accountId: options.accountId,
    count: (operation) => counters.record(service, operation),
    fault: (operation) => faults.decide(service, operation),
  });
  const refuse = (req: IncomingMessage, res: ServerResponse, refusal: Refusal): void => {
    // The rest of a refused body is not read: the connection closes once the answer is out.
    if (!res.headersSent) res.setHeader('Connection', 'close');
    res.once('finish', () => req.socket.destroySoon());
    sendAwsError(res, refusal.protocol, refusal, { messageOnly: splitUrl(req.url).path.startsWith('/restapis/') });
  };

  return (req, res) => {
    const { path } = splitUrl(req.url);
    const route = routeOf(req);
    const protocol = protocolOfService(route.service);
    if (!options.hostAllowed(req.headers.host)) {
      return refuse(req, res, { protocol, status: 403, code: 'AccessDenied', message: `Host '${req.headers.host ?? ''}' is not this local cloud's address` });
    }
    const browser = browserShaped(req, route.service);
    if (browser) return refuse(req, res, { protocol, status: 403, code: 'AccessDenied', message: browser });
    if (path === '/_valence' || path.startsWith('/_valence/')) {
      if (!tokenMatches(req.headers[ADMIN_TOKEN_HEADER], options.adminToken)) {
        return refuse(req, res, { protocol: ErrorProtocol.Json, status: 403, code: 'AccessDenied', message: `The admin API requires the ${ADMIN_TOKEN_HEADER} header with the token startLocalCloud returned` });
      }
      void serveAdmin(req, res, path, options);
      return;
    }
    const service =
      route.service === undefined
        ? undefined
        : (services.get(route.service) ?? (route.service === 'execute-api' ? services.get('apigateway') : undefined));
    if (!service) {
      const error: InjectedFault =
        route.service === undefined && !route.signed
          ? { status: 403, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token: sign the request with SigV4 so the local cloud can tell which service it is for' }
          : {
              status: 501,
              code: 'NotImplemented',
              message: `The local cloud does not host the '${route.service ?? 'unknown'}' service. Hosted: ${[...services.keys()].sort().join(', ')}`,
            };
      return refuse(req, res, { protocol: errorProtocolOf(req), ...error });
    }
    const routed = route.service ?? service.signingName;
    // A JSON request names its service twice, in X-Amz-Target and in the scope: AWS refuses a
    // signature scoped to another service than the one the target names.
    const targeted = targetServiceOf(req);
    if (route.signed && targeted !== undefined && targeted !== routed && routed !== 'execute-api') {
      return refuse(req, res, signatureRefusal(targeted, { ok: false, code: SignatureFailure.ScopeMismatch, reason: `Credential should be scoped to correct service: '${targeted}', not '${routed}'` }));
    }
    const limit = BODY_LIMITS[routed] ?? DEFAULT_BODY_LIMIT;
    if (declaredTooLarge(req, limit)) return refuse(req, res, tooLarge(routed, limit));
    void admit(req, res, service, routed, limit).catch((error: unknown) => failInternally(req, res, error));
  };

  /** Reads (or streams) the body within its cap, verifies the signature, then hands over. */
  async function admit(req: IncomingMessage, res: ServerResponse, service: LocalService, routed: string, limit: number): Promise<void> {
    // S3 bodies stream to disk, except those small enough to verify a declared hash first.
    const declaredHash = headerOf(req, 'x-amz-content-sha256');
    const length = Number(req.headers['content-length'] ?? NaN);
    const streamed = service.signingName === 's3' && !(declaredHash !== undefined && /^[0-9a-f]{64}$/.test(declaredHash) && length <= VERIFIED_S3_BODY_BYTES);
    let body: Buffer | undefined;
    if (!streamed) {
      try {
        body = await readBody(req, limit);
      } catch (error) {
        if (error instanceof BodyTooLargeError) return refuse(req, res, tooLarge(routed, limit));
        throw error;
      }
    }
    const verdict = await verifyFor(req, body, signingNameOf(service, routed), options.region, options.credentials);
    if (!verdict.ok) return refuse(req, res, signatureRefusal(routed, verdict));
    const denied = await options.authorize?.(req, body, routed, verdict.accessKeyId);
    if (denied) return refuse(req, res, denied);
    let forwarded: IncomingMessage;
    if (body !== undefined) {
      forwarded = replayRequest(req, body);
    } else {
      const verifier = verifyingStream(declaredHash, limit, (failure) =>
        refuse(req, res, failure === 'size' ? tooLarge(routed, limit) : signatureRefusal(routed, { ok: false, code: SignatureFailure.PayloadHashMismatch, reason: 'The provided x-amz-content-sha256 header does not match what was computed' })),
      );
      verifier.on('error', () => res.destroy());
      forwarded = standInRequest(req, verifier);
    }
    await service.handle(forwarded, res, contextFor(service.signingName, verdict.accessKeyId));
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
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
        options.faults.set(parsed);
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
