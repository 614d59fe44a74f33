/**
 * DynamoDB for the local cloud: dynalite (DynamoDB's API on LevelDB) inside this process.
 *
 * dynalite is an `http.Server`; the local cloud hands requests straight to its `request`
 * listener instead of letting it listen on a port of its own, so there is one port, no proxy
 * hop and nothing extra to release. Tables are in memory unless a data directory is given.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { ErrorProtocol, sendAwsError } from '../wire/errors.ts';
import type { LocalService, RequestContext } from '../core/service.ts';

const require = createRequire(import.meta.url);

/** dynalite ships no types; this is the part of its factory the local cloud uses. */
type DynaliteFactory = (options: {
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
  path?: string;
}) => Server;

/** Options of the local DynamoDB. */
export interface DynamoDbServiceOptions {
  /** Directory for LevelDB files; tables survive restarts. @default in memory */
  readonly dataDir?: string;
}

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';

/** An error dynalite returns from a condition check: its body is what the client receives. */
interface DynaliteError extends Error {
  body?: { __type?: string; Item?: unknown };
}

/**
 * Teaches dynalite 4.0 `ReturnValuesOnConditionCheckFailure` (PutItem, UpdateItem, DeleteItem),
 * which it lacks: its validation drops fields it does not know, and its condition check does not
 * return the item. As on AWS, with `ALL_OLD` a ConditionalCheckFailedException carries the item
 * as it was (`Item`, absent when there was none), so a writer that lost a race learns the
 * winner's write without a second read. Patched once, on dynalite's own modules: the request
 * still travels the real wire protocol to dynalite, which does all the rest.
 */
function teachReturnValuesOnConditionCheckFailure(): void {
  const field = { type: 'String', enum: ['ALL_OLD', 'NONE'] };
  for (const action of ['putItem', 'updateItem', 'deleteItem']) {
    (require(`dynalite/validations/${action}`) as { types: Record<string, unknown> }).types.ReturnValuesOnConditionCheckFailure = field;
  }
  const db = require('dynalite/db') as { checkConditional: (data: Record<string, unknown>, existing: unknown) => DynaliteError | null | undefined; patchedForOld?: boolean };
  if (db.patchedForOld) return;
  const check = db.checkConditional;
  db.checkConditional = (data, existing) => {
    const error = check(data, existing);
    if (error?.body && existing && data.ReturnValuesOnConditionCheckFailure === 'ALL_OLD') error.body.Item = existing;
    return error;
  };
  db.patchedForOld = true;
}

/**
 * Creates the local DynamoDB. Tables become ACTIVE at once (AWS takes seconds; tests should
 * not wait for it), and every operation dynalite supports is served — which excludes
 * transactions, streams and PartiQL (valence needs none of them).
 */
export function createDynamoDbService(options: DynamoDbServiceOptions = {}): LocalService {
  // dynalite and LevelDB load on the first request: a local cloud used without DynamoDB
  // never pays for them, and the cloud itself starts faster.
  let instance: { server: Server; listener: (req: IncomingMessage, res: ServerResponse) => void } | undefined;
  const ensure = () => {
    if (instance) return instance;
    const dynalite = require('dynalite') as DynaliteFactory;
    teachReturnValuesOnConditionCheckFailure();
    let path: string | undefined;
    if (options.dataDir) {
      path = join(options.dataDir, 'dynamodb');
      mkdirSync(path, { recursive: true });
    }
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) });
    const listener = server.listeners('request')[0] as ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    if (!listener) throw new Error('dynalite did not install a request listener');
    instance = { server, listener };
    return instance;
  };
  let stopped = false;

  return {
    signingName: 'dynamodb',
    async handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.includes('.') ? (target.split('.')[1] ?? 'Unknown') : req.method === 'GET' ? 'Health' : 'Unknown';
      ctx.count(operation);
      const fault = await ctx.fault(operation);
      if (fault || stopped) {
        req.resume();
        sendAwsError(
          res,
          ErrorProtocol.Json,
          fault ?? { status: 503, code: 'ServiceUnavailable', message: 'The local cloud is stopping' },
          { contentType: JSON_CONTENT_TYPE },
        );
        return;
      }
      const { listener } = ensure();
      const errorListeners = req.listeners('error').length;
      listener(req, res);
      // dynalite rethrows request stream errors (a client hanging up mid-body), which would
      // crash the whole local cloud; a dropped request only needs dropping.
      for (const added of req.listeners('error').slice(errorListeners)) req.removeListener('error', added as (e: Error) => void);
      req.on('error', () => res.destroy());
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      if (!instance) return;
      const { server } = instance;
      // dynalite closes its LevelDB only from server.close(), which refuses to run on a server
      // that never listened; listening on an ephemeral loopback port for that instant lets
      // the close (and the release of LevelDB's files and lock) happen.
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
