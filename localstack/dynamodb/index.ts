/**
 * DynamoDB for the local cloud: dynalite (DynamoDB's API on LevelDB) inside this process.
 *
 * dynalite is an `http.Server`; the local cloud hands requests straight to its `request`
 * listener instead of letting it listen on a port of its own, so there is one port, no proxy
 * hop and nothing extra to release. Tables are in memory unless a data directory is given.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { ErrorProtocol, sendAwsError } from '../wire/errors.ts';
import type { LocalService, RequestContext } from '../core/service.ts';
import { checkTypes } from './type-checks.ts';

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


/** Parsed expressions kept, most recent last (a Map's insertion order). */
const EXPRESSION_CACHE_SIZE = 2_000;
/** What dynalite's expression validation writes on a request: the parsed expressions. */
const PARSED = ['_updates', '_condition', '_keyCondition', '_filter', '_projection'] as const;

/**
 * Remembers dynalite's expression parsing (`validateExpressions`: PEG parsers for every
 * expression of every request). The profile of a 20,000-node bulk cancel put 29% of the whole
 * process's CPU in it, parsing the same condition and update 100 times per transaction, and the
 * runtime's claims and finishes repeat a few shapes too. The key is everything the parse
 * reads (expressions, names, values, and which expressions the operation validates), so an
 * entry is exactly what a fresh parse would return; each hit gets its own deep copy, because
 * dynalite's operations work on the parsed tree. Same answers, errors included.
 */
function rememberExpressionParses(): void {
  const validations = require('dynalite/validations') as { validateExpressions: ((data: Record<string, unknown>, only?: unknown) => string | undefined) & { remembered?: true } };
  if (validations.validateExpressions.remembered) return;
  const parse = validations.validateExpressions;
  const cache = new Map<string, { readonly message: string | undefined; readonly parsed: Record<string, unknown> }>();
  const remembered = (data: Record<string, unknown>, only?: unknown): string | undefined => {
    const key = JSON.stringify([
      data['UpdateExpression'],
      data['ConditionExpression'],
      data['KeyConditionExpression'],
      data['FilterExpression'],
      data['ProjectionExpression'],
      data['ExpressionAttributeNames'],
      data['ExpressionAttributeValues'],
      only,
    ]);
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit);
      Object.assign(data, structuredClone(hit.parsed));
      return hit.message;
    }
    const message = parse(data, only);
    const parsed: Record<string, unknown> = {};
    for (const field of PARSED) if (data[field] !== undefined) parsed[field] = data[field];
    try {
      cache.set(key, { message, parsed: structuredClone(parsed) });
    } catch {
      // A tree that cannot be copied is not kept: the next request parses again.
      return message;
    }
    if (cache.size > EXPRESSION_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    return message;
  };
  validations.validateExpressions = Object.assign(remembered, { remembered: true as const });
}

/**
 * Swaps dynalite's request type check for {@link checkTypes} (./type-checks.ts): the same
 * answers for a fraction of the CPU. dynalite calls it through its validations module on every
 * request, so replacing the module's export is enough; the original is kept on the new
 * function for the differential test.
 */
function checkTypesCheaply(): void {
  const validations = require('dynalite/validations') as { checkTypes: ((data: Record<string, unknown>, types: Record<string, unknown>) => Record<string, unknown>) & { original?: unknown } };
  if (validations.checkTypes.original) return;
  const original = validations.checkTypes;
  validations.checkTypes = Object.assign((data: Record<string, unknown>, types: Record<string, unknown>) => checkTypes(data, types as Parameters<typeof checkTypes>[1]), { original });
}

/**
 * Keeps dynalite's table descriptions in memory. Every request first reads its table's
 * description from LevelDB (`getTable`: a get and a JSON decode of the key schema and every
 * index) before it touches an item; the runtime's tables change only when they are created,
 * updated or deleted, and every such change goes through the same sub-database's `put` or
 * `del`, which drop the entry. A read that started before a change is not remembered (a
 * per-table generation), so a description is never older than LevelDB's. The remembered
 * object is the one each reader gets, as a fresh decode would be but shared: dynalite's
 * actions change a description only to write it back (deleteTable, updateTable), and the
 * write drops it.
 */
function rememberTables(store: DynaliteStore): void {
  const tables = store.tableDb;
  const get = tables.get.bind(tables);
  const put = tables.put.bind(tables);
  const del = tables.del.bind(tables);
  const known = new Map<string, unknown>();
  const generations = new Map<string, number>();
  const changed = (key: string): void => {
    known.delete(key);
    generations.set(key, (generations.get(key) ?? 0) + 1);
  };
  tables.get = (key, cb) => {
    if (known.has(key)) {
      const table = known.get(key);
      process.nextTick(() => cb(null, table));
      return;
    }
    const generation = generations.get(key) ?? 0;
    get(key, (err, value) => {
      if (!err && value !== undefined && (generations.get(key) ?? 0) === generation) known.set(key, value);
      cb(err, value);
    });
  };
  tables.put = (key, value, cb) => {
    changed(key);
    put(key, value, (err) => {
      changed(key);
      cb(err);
    });
  };
  tables.del = (key, cb) => {
    changed(key);
    del(key, (err) => {
      changed(key);
      cb(err);
    });
  };
}

/** The part of dynalite's store (`db.create`) the transaction code and {@link rememberTables} use. */
interface DynaliteStore {
  readonly db: { batch(ops: readonly LevelOp[], cb: (err?: Error | null) => void): void };
  readonly tableDb: SubDb;
  readonly options: Record<string, unknown>;
  getTable(name: string, cb: (err: DynaliteError | null, table?: DynaliteTable) => void): void;
  getItemDb(name: string): SubDb;
  getIndexDb(indexType: string, tableName: string, indexName: string): SubDb;
}
interface DynaliteTable {
  readonly TableName: string;
}
interface SubDb {
  lock(keys: string | string[], exec: (release: <F extends (...args: never[]) => void>(done: F) => F) => void): void;
  get(key: string, cb: (err: (Error & { name: string }) | null, value?: unknown) => void): void;
  put(key: string, value: unknown, cb: (err?: Error | null) => void): void;
  del(key: string, cb: (err?: Error | null) => void): void;
}
type LevelOp = { readonly type: 'put'; readonly key: string; readonly value: unknown } | { readonly type: 'del'; readonly key: string };
type DynaliteAction = (store: DynaliteStore, data: Record<string, unknown>, cb: (err: DynaliteError | null, out?: unknown) => void) => void;
interface Validation {
  readonly types: Record<string, unknown>;
  readonly custom?: unknown;
}
interface DynaliteValidations {
  checkTypes(data: unknown, types: Record<string, unknown>): Record<string, unknown>;
  checkValidations(data: Record<string, unknown>, types: Record<string, unknown>, custom: unknown, store: DynaliteStore): void;
}
interface DynaliteDb {
  validateKey(key: unknown, table: DynaliteTable): DynaliteError | null | undefined;
  validateItem(item: unknown, table: DynaliteTable): DynaliteError | null | undefined;
  createKey(key: unknown, table: DynaliteTable): string;
  checkConditional(data: Record<string, unknown>, existing: unknown): DynaliteError | null | undefined;
  create: (options: Record<string, unknown>) => DynaliteStore;
}

/** AWS's limit on actions per TransactWriteItems request (raised from 25 to 100 in 2022). */
const MAX_TRANSACT_ITEMS = 100;

/** How long AWS remembers a ClientRequestToken: a repeat within it succeeds without applying again. */
const IDEMPOTENCY_WINDOW_MS = 10 * 60_000;

const KINDS = ['ConditionCheck', 'Put', 'Delete', 'Update'] as const;
type Kind = (typeof KINDS)[number];

/** What a request is answered with. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
}

const validationError = (message: string): Answer => ({ status: 400, body: { __type: 'com.amazon.coral.validate#ValidationException', message } });

/**
 * `TransactWriteItems`, which dynalite 4.0 lacks, built on dynalite's own parts so its semantics
 * are DynamoDB's as dynalite already implements them: each action is validated by dynalite's
 * validation of the single-item operation it names, and applied by that operation's own code.
 * What the transaction adds: every item's lock is held from the first read to the last write,
 * every condition is checked before anything is written, and the writes (items and index
 * entries) go to LevelDB in one atomic batch. A failed condition cancels the whole request
 * with `TransactionCanceledException` and one `CancellationReasons` entry per action, in order
 * (`Item` for `ReturnValuesOnConditionCheckFailure: ALL_OLD`), as AWS answers.
 *
 * Not modelled: AWS's `TransactionConflictException` (a plain write to an item under a
 * transaction waits for the item's lock here instead of failing), and isolation against plain
 * reads that run while the batch is written (AWS serializes them; here a GetItem can see a
 * transaction's writes before LevelDB has applied the whole batch — its batch is one call, so
 * the window is that call).
 */
class Transactions {
  readonly #tokens = new Map<string, { readonly body: string; readonly at: number }>();
  readonly #validations: DynaliteValidations = require('dynalite/validations') as DynaliteValidations;
  readonly #db: DynaliteDb = require('dynalite/db') as DynaliteDb;

  constructor(readonly store: DynaliteStore) {}

  /** Answers one TransactWriteItems request body (already parsed). */
  async write(data: Record<string, unknown>, bodyText: string): Promise<Answer> {
    const items = data['TransactItems'];
    if (!Array.isArray(items) || items.length === 0) return validationError("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null and must have length greater than or equal to 1");
    if (items.length > MAX_TRANSACT_ITEMS) {
      return validationError(`1 validation error detected: Value of length ${items.length} at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to ${MAX_TRANSACT_ITEMS}`);
    }
    const token = typeof data['ClientRequestToken'] === 'string' ? data['ClientRequestToken'] : undefined;
    if (token !== undefined) {
      const seen = this.#remembered(token);
      if (seen && seen.body !== bodyText) return { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException', message: `ClientRequestToken ${token} was used with a different request within the last 10 minutes` } };
      if (seen) return { status: 200, body: {} };
    }
    const actions: { kind: Kind; data: Record<string, unknown>; table: DynaliteTable; key: string }[] = [];
    const seen = new Set<string>();
    const tables = new Map<string, Promise<DynaliteTable | DynaliteError>>();
    for (const [index, entry] of items.entries()) {
      const kinds = KINDS.filter((k) => entry !== null && typeof entry === 'object' && (entry as Record<string, unknown>)[k] !== undefined);
      if (kinds.length !== 1) return validationError(`TransactItems[${index}] must name exactly one of ConditionCheck, Put, Delete or Update; it names ${kinds.length === 0 ? 'none' : kinds.join(', ')}`);
      const kind = kinds[0]!;
      const validated = this.#validate(kind, (entry as Record<string, unknown>)[kind]);
      if ('answer' in validated) return validated.answer;
      const checked = validated.data;
      const name = String(checked['TableName']);
      // One lookup per table, not per action: a bulk cancel sends 100 actions on one table.
      let lookup = tables.get(name);
      if (!lookup) {
        lookup = new Promise<DynaliteTable | DynaliteError>((resolve) => this.store.getTable(name, (err, t) => resolve(err ?? t!)));
        tables.set(name, lookup);
      }
      const table = await lookup;
      if (table instanceof Error) return { status: (table as { statusCode?: number }).statusCode ?? 400, body: table.body };
      const invalid = kind === 'Put' ? this.#db.validateItem(checked['Item'], table) : this.#db.validateKey(checked['Key'], table);
      if (invalid) return { status: 400, body: invalid.body };
      const key = this.#db.createKey(kind === 'Put' ? checked['Item'] : checked['Key'], table);
      const id = `${table.TableName}\u0000${key}`;
      if (seen.has(id)) return validationError('Transaction request cannot include multiple operations on one item');
      seen.add(id);
      actions.push({ kind, data: checked, table, key });
    }
    const answer = await this.#underLocks(actions);
    if (answer.status === 200 && token !== undefined) this.#tokens.set(token, { body: bodyText, at: Date.now() });
    return answer;
  }

  #remembered(token: string): { readonly body: string } | undefined {
    const now = Date.now();
    for (const [t, v] of this.#tokens) if (now - v.at > IDEMPOTENCY_WINDOW_MS) this.#tokens.delete(t);
    return this.#tokens.get(token);
  }

  /** dynalite's validation of the single-item operation an action is (ConditionCheck as a conditional delete's shape, with its condition required). */
  #validate(kind: Kind, input: unknown): { readonly data: Record<string, unknown> } | { readonly answer: Answer } {
    if (input === null || typeof input !== 'object') return { answer: validationError(`${kind} must be an object`) };
    if (kind === 'ConditionCheck' && typeof (input as Record<string, unknown>)['ConditionExpression'] !== 'string') {
      return { answer: validationError('ConditionCheck requires a ConditionExpression') };
    }
    const operation = kind === 'Put' ? 'putItem' : kind === 'Update' ? 'updateItem' : 'deleteItem';
    const validation = require(`dynalite/validations/${operation}`) as Validation;
    try {
      const data = this.#validations.checkTypes(structuredClone(input), validation.types);
      this.#validations.checkValidations(data, validation.types, validation.custom, this.store);
      return { data };
    } catch (error) {
      const e = error as DynaliteError & { statusCode?: number };
      if (e.statusCode) return { answer: { status: e.statusCode, body: e.body } };
      throw error;
    }
  }

  /** Locks every item (in key order, so two transactions cannot deadlock), checks and computes every action, then writes all or nothing. */
  async #underLocks(actions: readonly { kind: Kind; data: Record<string, unknown>; table: DynaliteTable; key: string }[]): Promise<Answer> {
    const byTable = new Map<string, string[]>();
    for (const a of actions) byTable.set(a.table.TableName, [...(byTable.get(a.table.TableName) ?? []), a.key]);
    const releases: (() => void)[] = [];
    try {
      for (const name of [...byTable.keys()].sort()) {
        const keys = [...new Set(byTable.get(name))].sort();
        await new Promise<void>((resolve) => this.store.getItemDb(name).lock(keys, (release) => {
          releases.push(release(() => undefined));
          resolve();
        }));
      }
      const ops: LevelOp[] = [];
      const reasons: Record<string, unknown>[] = [];
      let failed = false;
      for (const action of actions) {
        const outcome = await this.#apply(action, ops);
        if (outcome === 'ok') reasons.push({ Code: 'None' });
        else if ('reason' in outcome) {
          failed = true;
          reasons.push(outcome.reason);
        } else return outcome;
      }
      if (failed) {
        const codes = reasons.map((r) => String(r['Code'])).join(', ');
        return {
          status: 400,
          body: { __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException', Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes}]`, CancellationReasons: reasons },
        };
      }
      await new Promise<void>((resolve, reject) => this.store.db.batch(ops, (err) => (err ? reject(err) : resolve())));
      return { status: 200, body: {} };
    } finally {
      for (const release of releases) release();
    }
  }

  /**
   * Runs one action against a view of the store whose locks are already held and whose writes
   * are collected into `ops` instead of applied: dynalite's operation code computes the new
   * item and its index entries, and nothing reaches LevelDB until every action passed.
   */
  async #apply(action: { kind: Kind; data: Record<string, unknown>; table: DynaliteTable; key: string }, ops: LevelOp[]): Promise<'ok' | { reason: Record<string, unknown> } | Answer> {
    const itemDb = this.store.getItemDb(action.table.TableName);
    if (action.kind === 'ConditionCheck') {
      const old = await new Promise<unknown>((resolve, reject) => itemDb.get(action.key, (err, v) => (err && err.name !== 'NotFoundError' ? reject(err) : resolve(err ? undefined : v))));
      const invalid = this.#db.checkConditional(action.data, old);
      return invalid ? this.#reason(invalid) : 'ok';
    }
    const collecting = (prefix: string, real: SubDb): SubDb => ({
      lock: (_keys, exec) => exec((done) => done),
      get: (key, cb) => real.get(key, cb),
      put: (key, value, cb) => {
        ops.push({ type: 'put', key: prefix + key, value });
        cb();
      },
      del: (key, cb) => {
        ops.push({ type: 'del', key: prefix + key });
        cb();
      },
    });
    // dynalite names its sub-databases so (db/index.js getItemDb / getIndexDb); all share one LevelDB.
    const view: DynaliteStore = Object.assign(Object.create(this.store) as DynaliteStore, {
      getItemDb: (name: string) => collecting(`item-${name}~`, this.store.getItemDb(name)),
      getIndexDb: (type: string, table: string, index: string) => collecting(`index-${type.toLowerCase()}~${table}~${index}~`, this.store.getIndexDb(type, table, index)),
    });
    const operation = action.kind === 'Put' ? 'putItem' : action.kind === 'Update' ? 'updateItem' : 'deleteItem';
    const run = require(`dynalite/actions/${operation}`) as DynaliteAction;
    const error = await new Promise<DynaliteError | null>((resolve) => run(view, { ...action.data, ReturnValues: 'NONE' }, (err) => resolve(err)));
    if (!error) return 'ok';
    if (error.body?.__type?.endsWith('ConditionalCheckFailedException')) return this.#reason(error);
    const status = (error as { statusCode?: number }).statusCode;
    if (status) return { status, body: error.body };
    throw error;
  }

  #reason(error: DynaliteError): { reason: Record<string, unknown> } {
    return { reason: { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed', ...(error.body?.Item ? { Item: error.body.Item } : {}) } };
  }
}

/** Reads a request's body whole, refusing past `limit` bytes (dynalite's own limit is 16 MB; a transaction's is 4 MB). */
async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One TransactWriteItems request, from its body to its answer; never a 500 for a bad body. */
async function answerTransaction(req: IncomingMessage, res: ServerResponse, transactions: Transactions): Promise<void> {
  res.setHeader('x-amzn-RequestId', randomUUID());
  const text = await readBody(req, MAX_TRANSACT_BYTES);
  if (text === undefined) return sendJson(res, validationError(`Transaction request size exceeds the limit of ${MAX_TRANSACT_BYTES} bytes`));
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return sendJson(res, { status: 400, body: { __type: 'com.amazon.coral.service#SerializationException', Message: 'The request body is not valid JSON' } });
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return sendJson(res, { status: 400, body: { __type: 'com.amazon.coral.service#SerializationException', Message: 'The request body must be a JSON object' } });
  sendJson(res, await transactions.write(data as Record<string, unknown>, text));
}

/** AWS's limit on a TransactWriteItems request's total size. */
const MAX_TRANSACT_BYTES = 4 * 1024 * 1024;

function sendJson(res: ServerResponse, answer: Answer): void {
  const text = JSON.stringify(answer.body);
  res.statusCode = answer.status;
  res.setHeader('Content-Type', JSON_CONTENT_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * Creates the local DynamoDB. Tables become ACTIVE at once (AWS takes seconds; tests should
 * not wait for it), and every operation dynalite supports is served, plus TransactWriteItems
 * ({@link Transactions}); streams, PartiQL and TransactGetItems are not (valence needs none).
 */
export function createDynamoDbService(options: DynamoDbServiceOptions = {}): LocalService {
  // dynalite and LevelDB load on the first request: a local cloud used without DynamoDB
  // never pays for them, and the cloud itself starts faster.
  let instance: { server: Server; listener: (req: IncomingMessage, res: ServerResponse) => void; transactions: Transactions } | undefined;
  const ensure = () => {
    if (instance) return instance;
    const dynalite = require('dynalite') as DynaliteFactory;
    teachReturnValuesOnConditionCheckFailure();
    rememberExpressionParses();
    checkTypesCheaply();
    let path: string | undefined;
    if (options.dataDir) {
      path = join(options.dataDir, 'dynamodb');
      mkdirSync(path, { recursive: true });
    }
    // dynalite keeps its store to itself; the transactions need it, so it is caught as made.
    const db = require('dynalite/db') as DynaliteDb;
    const create = db.create;
    let store: DynaliteStore | undefined;
    db.create = (o) => (store = create(o));
    let server: Server;
    try {
      server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) });
    } finally {
      db.create = create;
    }
    if (!store) throw new Error('dynalite did not create its store through db.create');
    rememberTables(store);
    const listener = server.listeners('request')[0] as ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    if (!listener) throw new Error('dynalite did not install a request listener');
    instance = { server, listener, transactions: new Transactions(store) };
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
      const { listener, transactions } = ensure();
      if (operation === 'TransactWriteItems') {
        await answerTransaction(req, res, transactions);
        return;
      }
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
