/**
 * The DynamoDB store: the source of truth for every dispatch and node.
 *
 * One table, single-item conditional writes only (no transactions: DynamoDB emulators lack
 * them, and the protocol does not need them). Every status change names the status it leaves
 * in its condition, so a retried or duplicated invocation can never move a node twice and a
 * terminal status is never overwritten.
 *
 * Items, all under `pk = D#{dispatchId}`:
 * - `sk = D` — the dispatch;
 * - `sk = N#{nodeId, 6 digits}` — one per node (`jobHandle` feeds the `byJobHandle` index);
 * - `sk = C#{requestedAt}#{requestId}` — one per cancel request (the audit trail).
 * The `byList` index lists top-level dispatches (`listKey = DISPATCH`) and nodes that wait on
 * a live job (`listKey = ACTIVE`), which the sweeper polls: it heartbeats their waits, completes
 * them when a state-change event was lost, and cancels again when a cancel did not take.
 */
import { ConditionalCheckFailedException, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { TABLE } from '../contract.ts';
import { DispatchNotFoundError, TransientAwsError } from '../errors.ts';
import { DispatchStatus, NodeStatus, type CancelMethod } from '../status.ts';
import type { SerializedError } from './serialization.ts';
import { UNBOUNDED_SIGNAL, callSignal, sendOptions } from './signals.ts';
import type { ExecutorJSON } from '../model/executors.ts';
import type { NodeAddress, NodeContent } from './content.ts';

/** The dispatch item. */
export interface DispatchItem {
  readonly dispatchId: string;
  readonly lattice: string;
  readonly status: DispatchStatus;
  readonly startedAt: string;
  readonly endedAt?: string;
  readonly error?: SerializedError;
  readonly nodeCount: number;
  readonly stateMachineArn: string;
  readonly executionArn?: string;
  /** For a sublattice's child dispatch: the node that runs it. */
  readonly parent?: { readonly dispatchId: string; readonly nodeId: number };
  readonly cancelRequested: boolean;
  /** The whole-dispatch cancel request that flagged the dispatch first: the one that stops its execution. */
  readonly cancelRequestId?: string;
  readonly hasResult?: boolean;
  /** For a redispatch: the dispatch it re-runs, whose completed results it may reuse. */
  readonly redispatchOf?: string;
  /** A redispatch's dry run: nodes are decided (reuse or run) and never run; not listed. */
  readonly dryRun?: boolean;
}

/** One node item. */
export interface NodeItem {
  readonly dispatchId: string;
  readonly nodeId: number;
  readonly name: string;
  readonly kind: 'electron' | 'sublattice';
  /** Executor kind: `lambda`, `batch`, `braket`, `local`, or a custom executor's kind. */
  readonly executor: string;
  readonly status: NodeStatus;
  /** Electron name (for sublattice nodes, the sublattice's lattice name). */
  readonly electron: string;
  /** The executor as graph metadata stores it; custom executors are rebuilt from it to cancel. */
  readonly executorJson: ExecutorJSON;
  readonly retries: number;
  readonly graceSeconds: number;
  readonly parents: readonly number[];
  readonly children: readonly number[];
  /** Children that wait for this node in an `await` state (released when it ends). */
  readonly awaitingChildren: readonly number[];
  readonly attempts: number;
  readonly cancelRequested: boolean;
  readonly cancelReason?: string;
  /** When the first cancel request that flagged the node arrived. */
  readonly cancelRequestedAt?: string;
  /**
   * The cancel request that flagged the node first (issue 13). Only that request stops its
   * work and reports it `cancelled`; a concurrent request for the same node reports it as
   * merged into this one, so no target is stopped twice and none is counted twice.
   */
  readonly cancelRequestId?: string;
  /** A request with `force: true` flagged the node: its work is killed without a grace period. */
  readonly cancelForce?: boolean;
  readonly cancelledBy?: CancelMethod;
  /** What the cancel handler did to stop the node's job; the completion handler records it as `cancelledBy`. */
  readonly cancelAction?: CancelMethod;
  readonly startedAt?: string;
  readonly endedAt?: string;
  readonly error?: SerializedError;
  readonly jobHandle?: string;
  /** What the job handle names: `batch`, `batch-array-child`, `braket-task`, `braket-job`, `pid`, `custom`. */
  readonly jobKind?: string;
  readonly childDispatchId?: string;
  /** Task token of the waitForTaskToken state running this node (long-running executors). */
  readonly taskToken?: string;
  /** Task token of this node's `await` state, released when all parents are terminal. */
  readonly awaitToken?: string;
  /** The `await` state catches `NODE_ENDED_ERROR` (contract.ts): a node found ended is released with it, skipping its `run` state. */
  readonly awaitSkippable?: boolean;
  /**
   * The `await` state also runs the node (issue 18): its releaser wakes the node's run instead
   * of releasing the token, and the run releases it when the node ends. Such a waiting node is
   * listed (`listKey = ACTIVE`), so the sweeper finds a wake that was lost.
   */
  readonly awaitRuns?: boolean;
  /** Identifies the invocation that holds the node while it runs. */
  readonly runId?: string;
  /** Epoch ms until which {@link runId}'s claim holds without renewal. */
  readonly leaseUntil?: number;
  readonly hasOutput?: boolean;
  /**
   * The output's serialized text when it is at most {@link LIMITS.inlineOutputBytes} (UTF-8):
   * stored in this item so that children, results and the dashboard read it with the node's
   * status instead of one S3 GET each. Absent with `hasOutput` means the output is in S3.
   */
  readonly output?: string;
  /** Where the output's S3 object is when it is another dispatch's (a reused result, copied by reference). */
  readonly outputRef?: NodeAddress;
  /** SHA-256 of the serialized output (see content.ts). */
  readonly outputHash?: string;
  /** The deployed electron's identity when this node was claimed (see content.ts). */
  readonly identity?: string;
  /** The hash of the node's resolved inputs when it was claimed (see content.ts). */
  readonly inputHash?: string;
  /** Planned by a redispatch: the earlier node whose result this one may reuse, if the runtime confirms the content matches. */
  readonly reuse?: NodeAddress;
  /** The node whose result this one reused (the original producer, never a reuse of a reuse). */
  readonly reusedFrom?: NodeAddress;
  /** Why a planned reuse was refused at run time (the node then ran, or in a dry run would run). */
  readonly reuseRefused?: string;
}

/**
 * What a node's children read of it once it ended: its end and its output's address. A `run`
 * state whose parent's state ran just before it gets this from the state payload (the parent's
 * Task result), and a `run` state after an `await` gets its parents' views from the await's
 * release (settle.ts, `awaitReleased`), so the child reads no item for those parents (issue 18;
 * sdk/compiler/asl.ts). A terminal node's view never changes, so a copy is as good as a read.
 */
export type ParentView = Pick<NodeItem, 'dispatchId' | 'nodeId' | 'status' | 'cancelledBy' | 'hasOutput' | 'output' | 'outputRef' | 'outputHash' | 'reusedFrom'>;

/** The {@link ParentView} of a node: the fields it has, nothing else (it travels in a Step Functions payload). */
export function parentViewOf(node: ParentView): ParentView {
  const view: { -readonly [K in keyof ParentView]: ParentView[K] } = { dispatchId: node.dispatchId, nodeId: node.nodeId, status: node.status };
  if (node.cancelledBy !== undefined) view.cancelledBy = node.cancelledBy;
  if (node.hasOutput !== undefined) view.hasOutput = node.hasOutput;
  if (node.output !== undefined) view.output = node.output;
  if (node.outputRef !== undefined) view.outputRef = node.outputRef;
  if (node.outputHash !== undefined) view.outputHash = node.outputHash;
  if (node.reusedFrom !== undefined) view.reusedFrom = node.reusedFrom;
  return view;
}

/** One recorded cancel request: who, when, why and what. */
export interface CancelRequestItem {
  readonly requestId: string;
  readonly requestedAt: string;
  readonly requestedBy: string;
  readonly reason?: string;
  /** Node ids or sublattice paths as asked; empty means the whole dispatch. */
  readonly targets: readonly (number | string)[];
  /** How long to wait for running work to stop, when the caller set it. */
  readonly waitMs?: number;
  /** Skip the grace period: running work is killed at once (`force: true`). */
  readonly force?: boolean;
}

const pk = (dispatchId: string): string => `D#${dispatchId}`;
const nodeSk = (nodeId: number): string => `N#${String(nodeId).padStart(6, '0')}`;
const DISPATCH_SK = 'D';
/** BatchWriteItem requests of one dispatch's node items in flight at once. */
const NODE_BATCHES_IN_FLIGHT = 8;
/** Rounds of BatchWriteItem (the first and its retries of unprocessed items) before a dispatch gives up. */
const NODE_BATCH_ROUNDS = 10;
/**
 * Ending a not-started node CANCELLED: the one write {@link Store.cancelNotStarted} sends alone
 * and {@link Store.cancelNotStartedMany} sends 100 to a transaction. Only a node still
 * NEW_OBJECT, and flagged by no other request, is ended; the first request's flag is kept.
 */
const CANCEL_NOT_STARTED = {
  update:
    'SET #status = :cancelled, endedAt = :ended, cancelledBy = :by, cancelRequested = :true, cancelReason = if_not_exists(cancelReason, :reason), ' +
    'cancelRequestedAt = if_not_exists(cancelRequestedAt, :at), cancelRequestId = if_not_exists(cancelRequestId, :rid) REMOVE leaseUntil, listKey, listSort',
  condition: '#status = :new AND (attribute_not_exists(cancelRequestId) OR cancelRequestId = :rid)',
} as const;

function cancelNotStartedValues(cancel: { readonly requestId: string; readonly reason: string; readonly requestedAt: string; readonly endedAt: string; readonly cancelledBy: CancelMethod }): Record<string, unknown> {
  return {
    ':cancelled': NodeStatus.CANCELLED,
    ':ended': cancel.endedAt,
    ':by': cancel.cancelledBy,
    ':true': true,
    ':reason': cancel.reason,
    ':at': cancel.requestedAt,
    ':rid': cancel.requestId,
    ':new': NodeStatus.NEW_OBJECT,
  };
}

/** Most actions in one TransactWriteItems: AWS's limit. */
export const MAX_TRANSACT_ITEMS = 100;
/** Contended TransactWriteItems rounds (conflicts, throttled actions) before a bulk cancel write gives up; the request stays open and is resumed. */
const TRANSACT_ROUNDS = 10;

/** Whether an error is a failed condition (the expected outcome of a lost race). */
export function isConditionFailed(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException'
  );
}

/** DynamoDB's JSON (`{ S: 'x' }`, `{ N: '1' }`, …) as plain values, as lib-dynamodb reads them. */
function fromAttributeMap(map: Record<string, AttributeValue>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(map).map(([key, value]) => [key, fromAttribute(value)]));
}

function fromAttribute(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return fromAttributeMap(value.M);
  if (value.L !== undefined) return value.L.map(fromAttribute);
  if (value.SS !== undefined) return new Set(value.SS);
  if (value.NS !== undefined) return new Set(value.NS.map(Number));
  if (value.B !== undefined) return value.B;
  if (value.BS !== undefined) return new Set(value.BS);
  return undefined;
}

function strip<T>(item: Record<string, unknown> | undefined): T | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, listKey: _lk, listSort: _ls, entity: _e, ...rest } = item;
  return rest as T;
}

/**
 * Typed access to the table; every write that changes status is conditional.
 *
 * Every call runs under the store's {@link signal} (the invocation's, once bound with
 * {@link withSignal}) and, when given, the caller's own `signal`: an aborted call either
 * reached DynamoDB whole or not at all, because each is one single-item request.
 */
export class Store {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly table: string,
    /** Bounds every call of this store. @default a signal that never aborts */
    readonly signal: AbortSignal = UNBOUNDED_SIGNAL,
  ) {}

  /** The same table, with every call bounded by `signal` (a handler's invocation signal). */
  withSignal(signal: AbortSignal): Store {
    return signal === this.signal ? this : new Store(this.db, this.table, signal);
  }

  private options(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
    return sendOptions(callSignal(this.signal, signal));
  }

  /** Writes the dispatch item; fails if one with that id exists. */
  /** The dispatch a client token was claimed for, if any (see {@link claimDispatchToken}). */
  async dispatchOfToken(token: string, signal?: AbortSignal): Promise<string | undefined> {
    const read = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: `T#${token}`, sk: 'T' }, ConsistentRead: true }), this.options(signal));
    const id: unknown = read.Item?.['dispatchId'];
    return typeof id === 'string' ? id : undefined;
  }

  /**
   * Claims a dispatch request's client token for `dispatchId`: the first request with a token
   * wins, and resolves with its own id; a retry of the same request (the answer was lost, the
   * gateway answered 5xx) resolves with the winner's id, learnt from the failed condition
   * (`ReturnValuesOnConditionCheckFailure`), so the retry never starts a second run.
   */
  async claimDispatchToken(token: string, dispatchId: string, createdAt: string, signal?: AbortSignal): Promise<string> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: `T#${token}`, sk: 'T', entity: 'dispatch-token', dispatchId, createdAt },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
        this.options(signal),
      );
      return dispatchId;
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
      const old = (error as { Item?: Record<string, AttributeValue> }).Item;
      const winner = old ? fromAttributeMap(old)['dispatchId'] : undefined;
      if (typeof winner === 'string') return winner;
      return String(await this.dispatchOfToken(token, signal));
    }
  }

  async createDispatch(item: DispatchItem, signal?: AbortSignal): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: pk(item.dispatchId),
          sk: DISPATCH_SK,
          entity: 'dispatch',
          // A dry run is not a dispatch anyone ran: it stays off the dispatch list.
          listKey: item.parent ? 'CHILD' : item.dryRun ? 'DRYRUN' : 'DISPATCH',
          listSort: `${item.startedAt}#${item.dispatchId}`,
          ...item,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
      this.options(signal),
    );
  }

  /**
   * Writes a new dispatch's node items (status NEW_OBJECT, cancelRequested false) in
   * `BatchWriteItem` requests of 25 items, {@link NODE_BATCHES_IN_FLIGHT} at a time; items
   * DynamoDB leaves unprocessed (throttling) are sent again after a capped exponential backoff
   * with jitter, and still-unprocessed items after {@link NODE_BATCH_ROUNDS} rounds fail the
   * dispatch with a {@link TransientAwsError}. The puts are unconditional (BatchWriteItem cannot
   * carry a condition), which is safe because every caller writes a dispatch id it has just
   * minted, before its execution starts: no invocation can have touched these items yet.
   * AWS bills each item as a write all the same; what falls is requests and round trips.
   */
  async createNodes(nodes: readonly NodeItem[], signal?: AbortSignal): Promise<void> {
    const batches: Record<string, unknown>[][] = [];
    for (let i = 0; i < nodes.length; i += 25) {
      batches.push(nodes.slice(i, i + 25).map((node) => ({ PutRequest: { Item: { pk: pk(node.dispatchId), sk: nodeSk(node.nodeId), entity: 'node', ...node } } })));
    }
    const writeBatch = async (batch: Record<string, unknown>[]): Promise<void> => {
      let requests: Record<string, unknown>[] | undefined = batch;
      for (let round = 0; requests && requests.length > 0; round++) {
        if (round > 0) {
          if (round >= NODE_BATCH_ROUNDS) {
            throw new TransientAwsError(`DynamoDB left ${requests.length} node items unprocessed after ${NODE_BATCH_ROUNDS} BatchWriteItem rounds`);
          }
          const { abortSignal } = this.options(signal);
          const cap = Math.min(1000, 25 * 2 ** round);
          await sleep(cap / 2 + Math.random() * (cap / 2), undefined, abortSignal ? { signal: abortSignal } : {});
        }
        const out: BatchWriteCommandOutput = await this.db.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }), this.options(signal));
        requests = out.UnprocessedItems?.[this.table];
      }
    };
    const queue = [...batches];
    const workers = Array.from({ length: Math.min(NODE_BATCHES_IN_FLIGHT, queue.length) }, async () => {
      for (let batch = queue.shift(); batch; batch = queue.shift()) await writeBatch(batch);
    });
    await Promise.all(workers);
  }

  /** Reads the dispatch item (strongly consistent). */
  async getDispatch(dispatchId: string, signal?: AbortSignal): Promise<DispatchItem | undefined> {
    const out = await this.db.send(
      new GetCommand({ TableName: this.table, Key: { pk: pk(dispatchId), sk: DISPATCH_SK }, ConsistentRead: true }),
      this.options(signal),
    );
    return strip<DispatchItem>(out.Item);
  }

  /** Reads the dispatch item or throws {@link DispatchNotFoundError}. */
  async requireDispatch(dispatchId: string, signal?: AbortSignal): Promise<DispatchItem> {
    const item = await this.getDispatch(dispatchId, signal);
    if (!item) throw new DispatchNotFoundError(dispatchId);
    return item;
  }

  /** Reads one node (strongly consistent unless `consistent` is false, as the watchdog asks). */
  async getNode(dispatchId: string, nodeId: number, options: { consistent?: boolean; signal?: AbortSignal } = {}): Promise<NodeItem | undefined> {
    const out = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: pk(dispatchId), sk: nodeSk(nodeId) },
        ConsistentRead: options.consistent ?? true,
      }),
      this.options(options.signal),
    );
    return strip<NodeItem>(out.Item);
  }

  /** Reads several nodes of one dispatch (strongly consistent), in the order asked. */
  async getNodes(dispatchId: string, nodeIds: readonly number[], signal?: AbortSignal): Promise<NodeItem[]> {
    const found = new Map<number, NodeItem>();
    for (let i = 0; i < nodeIds.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = nodeIds
        .slice(i, i + 100)
        .map((id) => ({ pk: pk(dispatchId), sk: nodeSk(id) }));
      for (let round = 0; keys && keys.length > 0; round++) {
        const out: BatchGetCommandOutput = await this.db.send(
            new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }),
            this.options(signal),
          );
        for (const raw of out.Responses?.[this.table] ?? []) {
          const node = strip<NodeItem>(raw);
          if (node) found.set(node.nodeId, node);
        }
        keys = out.UnprocessedKeys?.[this.table]?.Keys;
        if (keys && keys.length > 0) {
          const { abortSignal } = this.options(signal);
          await sleep(Math.min(1000, 20 * 2 ** round), undefined, abortSignal ? { signal: abortSignal } : {});
        }
      }
    }
    return nodeIds.flatMap((id) => {
      const node = found.get(id);
      return node ? [node] : [];
    });
  }

  /** Reads every node of a dispatch, in id order. */
  async listNodes(dispatchId: string, signal?: AbortSignal): Promise<NodeItem[]> {
    return this.queryAll<NodeItem>(dispatchId, 'N#', signal);
  }

  /** Reads the cancel requests recorded on a dispatch, oldest first. */
  async listCancelRequests(dispatchId: string, signal?: AbortSignal): Promise<CancelRequestItem[]> {
    return this.queryAll<CancelRequestItem>(dispatchId, 'C#', signal);
  }

  private async queryAll<T>(dispatchId: string, prefix: string, signal?: AbortSignal): Promise<T[]> {
    const items: T[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': pk(dispatchId), ':prefix': prefix },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
        this.options(signal),
      );
      for (const raw of out.Items ?? []) {
        const item = strip<T>(raw);
        if (item) items.push(item);
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Lists top-level dispatches, newest first. */
  async listDispatches(options: { limit?: number; signal?: AbortSignal } = {}): Promise<DispatchItem[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: TABLE.indexes.byList.name,
        KeyConditionExpression: 'listKey = :k',
        ExpressionAttributeValues: { ':k': 'DISPATCH' },
        ScanIndexForward: false,
        Limit: options.limit ?? 50,
      }),
      this.options(options.signal),
    );
    return (out.Items ?? []).flatMap((raw) => strip<DispatchItem>(raw) ?? []);
  }

  /** Finds the nodes a job handle serves (one for most jobs, several for packed tasks). */
  async nodesByJobHandle(jobHandle: string, signal?: AbortSignal): Promise<NodeItem[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: TABLE.indexes.byJobHandle.name,
        KeyConditionExpression: 'jobHandle = :h',
        ExpressionAttributeValues: { ':h': jobHandle },
      }),
      this.options(signal),
    );
    return (out.Items ?? []).flatMap((raw) => strip<NodeItem>(raw) ?? []);
  }

  /** Every item of one `byList` list (`listKey`), across pages. */
  private async queryList<T>(listKey: string, signal?: AbortSignal): Promise<T[]> {
    const items: T[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: TABLE.indexes.byList.name,
          KeyConditionExpression: 'listKey = :k',
          ExpressionAttributeValues: { ':k': listKey },
          ExclusiveStartKey: start,
        }),
        this.options(signal),
      );
      for (const raw of out.Items ?? []) {
        const item = strip<T>(raw);
        if (item) items.push(item);
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Nodes that wait on a live job (from the job handle's recording to the node's end). */
  async listActiveNodes(signal?: AbortSignal): Promise<NodeItem[]> {
    return this.queryList<NodeItem>('ACTIVE', signal);
  }

  /**
   * Claims a node for a run: `NEW_OBJECT → RUNNING`, only while no cancel is requested.
   * Returns the claimed node, or — when the claim lost — the node as the winner left it
   * (`old`, from the refused write itself; undefined if the service did not return it).
   */
  async claimNode(
    dispatchId: string,
    nodeId: number,
    runId: string,
    leaseUntil: number,
    now: string,
    signal?: AbortSignal,
    content?: NodeContent,
  ): Promise<{ readonly item: NodeItem } | { readonly old: NodeItem | undefined }> {
    // The content address rides on the claim (no extra write): it says what produced the result.
    const values: Record<string, unknown> = { ':running': NodeStatus.RUNNING, ':run': runId, ':lease': leaseUntil, ':now': now, ':one': 1, ':new': NodeStatus.NEW_OBJECT, ':false': false };
    let update = 'SET #status = :running, runId = :run, leaseUntil = :lease, startedAt = :now, attempts = :one';
    if (content) {
      update += ', #identity = :identity, inputHash = :inputs';
      values[':identity'] = content.identity;
      values[':inputs'] = content.inputHash;
    }
    return this.conditionalUpdateOrOld(dispatchId, nodeId, update, '#status = :new AND cancelRequested = :false', values, signal, true);
  }

  /**
   * Takes over a RUNNING node whose holder's lease lapsed (the invocation crashed or timed
   * out). The attempt count goes up: that is a new try of the electron. A refused takeover
   * returns the node as it was (`old`), as {@link claimNode} does.
   */
  async takeOverNode(
    dispatchId: string,
    nodeId: number,
    runId: string,
    leaseUntil: number,
    nowMs: number,
    signal?: AbortSignal,
  ): Promise<{ readonly item: NodeItem } | { readonly old: NodeItem | undefined }> {
    return this.conditionalUpdateOrOld(
      dispatchId,
      nodeId,
      'SET runId = :run, leaseUntil = :lease ADD attempts :one',
      '#status = :running AND cancelRequested = :false AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)',
      { ':running': NodeStatus.RUNNING, ':run': runId, ':lease': leaseUntil, ':one': 1, ':false': false, ':now': nowMs },
      signal,
      true,
    );
  }

  /**
   * Renews the holder's lease and returns the node as it is now, so one write both keeps the
   * claim and tells the watchdog whether a cancel was requested. Undefined when the claim was
   * lost (another invocation took over, or the node ended).
   */
  async renewLease(dispatchId: string, nodeId: number, runId: string, leaseUntil: number, signal?: AbortSignal): Promise<NodeItem | undefined> {
    return this.conditionalUpdate(
      dispatchId,
      nodeId,
      'SET leaseUntil = :lease',
      'runId = :run AND #status = :running',
      { ':lease': leaseUntil, ':run': runId, ':running': NodeStatus.RUNNING },
      signal,
    );
  }

  /** Records why a planned reuse was refused (the node then runs as any other). */
  async noteReuseRefused(dispatchId: string, nodeId: number, reason: string, signal?: AbortSignal): Promise<void> {
    await this.conditionalUpdate(dispatchId, nodeId, 'SET reuseRefused = :why', 'attribute_exists(pk)', { ':why': reason }, signal);
  }

  /** Records that another try of the electron starts (retries within one claim). */
  async recordAttempt(dispatchId: string, nodeId: number, runId: string, attempts: number, error: SerializedError, signal?: AbortSignal): Promise<NodeItem | undefined> {
    return this.conditionalUpdate(
      dispatchId,
      nodeId,
      'SET attempts = :attempts, lastError = :error',
      'runId = :run AND #status = :running',
      { ':attempts': attempts, ':error': error, ':run': runId, ':running': NodeStatus.RUNNING },
      signal,
    );
  }

  /**
   * Records the job handle before the node waits on it, so that a cancel arriving at any
   * later moment can find and stop the job. Fails (undefined) if the node left RUNNING.
   */
  async recordJobHandle(
    dispatchId: string,
    nodeId: number,
    fields: { jobHandle: string; jobKind: string; taskToken?: string; childDispatchId?: string },
    signal?: AbortSignal,
  ): Promise<NodeItem | undefined> {
    const values: Record<string, unknown> = {
      ':h': fields.jobHandle,
      ':k': fields.jobKind,
      ':running': NodeStatus.RUNNING,
      ':active': 'ACTIVE',
      ':sort': `${dispatchId}#${nodeId}`,
    };
    let update = 'SET jobHandle = :h, jobKind = :k, listKey = :active, listSort = :sort';
    if (fields.taskToken) {
      update += ', taskToken = :t';
      values[':t'] = fields.taskToken;
    }
    if (fields.childDispatchId) {
      update += ', childDispatchId = :c';
      values[':c'] = fields.childDispatchId;
    }
    return this.conditionalUpdate(dispatchId, nodeId, update, '#status = :running', values, signal);
  }

  /** Stores the task token of the state waiting on a RUNNING node (a retried wait gets a new one). */
  async recordTaskToken(dispatchId: string, nodeId: number, taskToken: string, signal?: AbortSignal): Promise<NodeItem | undefined> {
    return this.conditionalUpdate(dispatchId, nodeId, 'SET taskToken = :t', 'attribute_exists(pk)', { ':t': taskToken }, signal);
  }

  /**
   * Stores the token of the node's `await` state, and whether that state catches
   * `NODE_ENDED_ERROR` (so a releaser may skip its `run` state); returns the node as it is now.
   */
  async recordAwaitToken(dispatchId: string, nodeId: number, awaitToken: string, signal?: AbortSignal, skippable = false, runs = false): Promise<NodeItem | undefined> {
    const values: Record<string, unknown> = { ':t': awaitToken };
    const set = ['awaitToken = :t'];
    const remove: string[] = [];
    if (skippable) {
      set.push('awaitSkippable = :true');
      values[':true'] = true;
    } else remove.push('awaitSkippable');
    if (runs) {
      // Listed while it waits: the sweeper hands a node whose wake was lost back to Step
      // Functions (sweep.ts). The node's end removes it from the list, as it does a job's.
      set.push('awaitRuns = :true', 'listKey = :active', 'listSort = :sort');
      Object.assign(values, { ':true': true, ':active': 'ACTIVE', ':sort': `${dispatchId}#${nodeId}` });
    } else remove.push('awaitRuns');
    const update = `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`;
    // Only a node that has not ended is listed: an ended one must not reappear in the sweeper's list.
    return this.conditionalUpdate(dispatchId, nodeId, update, runs ? 'attribute_exists(pk) AND NOT #status IN (:c, :f, :x)' : 'attribute_exists(pk)', runs ? { ...values, ':c': NodeStatus.COMPLETED, ':f': NodeStatus.FAILED, ':x': NodeStatus.CANCELLED } : values, signal);
  }

  /**
   * Ends a node: a terminal status, written only if the node is not terminal yet (and, when
   * `runId` is given, only by the invocation that holds it). Returns the node as written, or
   * undefined when another writer ended it first.
   */
  async finishNode(
    dispatchId: string,
    nodeId: number,
    outcome: {
      status: typeof NodeStatus.COMPLETED | typeof NodeStatus.FAILED | typeof NodeStatus.CANCELLED;
      endedAt: string;
      error?: SerializedError;
      cancelledBy?: CancelMethod;
      cancelReason?: string;
      hasOutput?: boolean;
      /** The serialized output, stored inline (the caller keeps it within the inline limit). */
      output?: string;
      /** SHA-256 of the serialized output. */
      outputHash?: string;
      /** The output is another dispatch's S3 object (a reused result). */
      outputRef?: NodeAddress;
      /** The node whose result this one reused. */
      reusedFrom?: NodeAddress;
      /** Why a planned reuse was refused. */
      reuseRefused?: string;
      runId?: string;
    },
    signal?: AbortSignal,
  ): Promise<NodeItem | undefined> {
    const values: Record<string, unknown> = {
      ':status': outcome.status,
      ':ended': outcome.endedAt,
      ':new': NodeStatus.NEW_OBJECT,
      ':running': NodeStatus.RUNNING,
    };
    let update = 'SET #status = :status, endedAt = :ended';
    if (outcome.error) {
      update += ', #error = :error';
      values[':error'] = outcome.error;
    }
    if (outcome.cancelledBy) {
      update += ', cancelledBy = :by';
      values[':by'] = outcome.cancelledBy;
    }
    if (outcome.cancelReason) {
      update += ', cancelReason = if_not_exists(cancelReason, :reason)';
      values[':reason'] = outcome.cancelReason;
    }
    if (outcome.hasOutput) update += ', hasOutput = :true';
    if (outcome.hasOutput) values[':true'] = true;
    if (outcome.output !== undefined) {
      update += ', #output = :output';
      values[':output'] = outcome.output;
    }
    for (const field of ['outputHash', 'outputRef', 'reusedFrom', 'reuseRefused'] as const) {
      if (outcome[field] === undefined) continue;
      update += `, ${field} = :${field}`;
      values[`:${field}`] = outcome[field];
    }
    update += ' REMOVE leaseUntil, listKey, listSort';
    let condition = '#status IN (:new, :running)';
    if (outcome.runId) {
      condition += ' AND runId = :run';
      values[':run'] = outcome.runId;
    }
    return this.conditionalUpdate(dispatchId, nodeId, update, condition, values, signal);
  }

  /**
   * Sets a node's cancel flag if it is not terminal. Returns the node after the write, or
   * undefined when it was already terminal (the caller reports it as such).
   */
  async requestNodeCancel(dispatchId: string, nodeId: number, reason: string, requestedAt: string, signal?: AbortSignal, requestId?: string, force?: boolean): Promise<NodeItem | undefined> {
    return this.conditionalUpdate(
      dispatchId,
      nodeId,
      'SET cancelRequested = :true, cancelReason = if_not_exists(cancelReason, :reason), cancelRequestedAt = if_not_exists(cancelRequestedAt, :at)' +
        (requestId ? ', cancelRequestId = if_not_exists(cancelRequestId, :rid)' : '') +
        // A forced request escalates a graceful one that flagged the node first.
        (force ? ', cancelForce = :true' : ''),
      '#status IN (:new, :running)',
      {
        ':true': true,
        ':reason': reason,
        ':at': requestedAt,
        ':new': NodeStatus.NEW_OBJECT,
        ':running': NodeStatus.RUNNING,
        ...(requestId ? { ':rid': requestId } : {}),
      },
      signal,
    );
  }

  /**
   * Flags and ends a node that has not started, in one write (issue 13: one call per
   * not-started target instead of a flag write, an end write and a read). The condition is
   * the claim's mirror: it holds only while the node is `NEW_OBJECT` and no other request
   * flagged it, so either this write or the step handler's claim wins, never both. Returns the
   * node as written, or undefined when it had started, ended, or belongs to another request.
   *
   * Not BatchWriteItem: its puts are unconditional, and replacing a node the step handler
   * claimed (or whose await token it just stored) a moment earlier would record a running
   * electron as never started and lose the token that releases its waiting state.
   */
  async cancelNotStarted(
    dispatchId: string,
    nodeId: number,
    cancel: { readonly requestId: string; readonly reason: string; readonly requestedAt: string; readonly endedAt: string; readonly cancelledBy: CancelMethod },
    signal?: AbortSignal,
  ): Promise<NodeItem | undefined> {
    return this.conditionalUpdate(dispatchId, nodeId, CANCEL_NOT_STARTED.update, CANCEL_NOT_STARTED.condition, cancelNotStartedValues(cancel), signal);
  }

  /**
   * {@link cancelNotStarted} for many nodes at once (issue 13: not-started targets are marked
   * in bulk): up to {@link MAX_TRANSACT_ITEMS} conditional updates in one `TransactWriteItems`
   * (callers run several at once), the only write DynamoDB has that is both batched and
   * conditional. Each node keeps exactly
   * the condition and update of the single write, so a node claimed, ended or flagged by
   * another request a moment earlier is refused, never overwritten. A refusal cancels the whole
   * transaction; its `CancellationReasons` say which nodes were refused (with the item as it
   * was, `ALL_OLD`), and the rest are sent again without them. Conflicts and throttles of single
   * actions are sent again after a capped backoff, up to {@link TRANSACT_ROUNDS} rounds.
   *
   * AWS bills a transactional write as two write units per item: on one dispatch (one
   * partition key, 1,000 write units a second) that is at most about 500 nodes a second,
   * against 1,000 for single writes; what falls is requests, from one per node to one per 100.
   *
   * Returns the ids ended, and each refused id with its item as it was (undefined when absent).
   */
  async cancelNotStartedMany(
    dispatchId: string,
    nodeIds: readonly number[],
    cancel: { readonly requestId: string; readonly reason: string; readonly requestedAt: string; readonly endedAt: string; readonly cancelledBy: CancelMethod },
    signal?: AbortSignal,
  ): Promise<{ readonly ended: number[]; readonly refused: Map<number, NodeItem | undefined> }> {
    const ended: number[] = [];
    const refused = new Map<number, NodeItem | undefined>();
    const values = cancelNotStartedValues(cancel);
    const action = (nodeId: number) => ({
      Update: {
        TableName: this.table,
        Key: { pk: pk(dispatchId), sk: nodeSk(nodeId) },
        UpdateExpression: CANCEL_NOT_STARTED.update,
        ConditionExpression: CANCEL_NOT_STARTED.condition,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    });
    if (nodeIds.length > MAX_TRANSACT_ITEMS) throw new RangeError(`cancelNotStartedMany takes at most ${MAX_TRANSACT_ITEMS} nodes (one transaction); got ${nodeIds.length}`);
    {
      let pending = [...nodeIds];
      // Rounds that only took refused nodes out go again at once and are not counted: each
      // removes at least one node. Rounds with a conflict or throttle back off and count.
      for (let round = 0; pending.length > 0; ) {
        if (round >= TRANSACT_ROUNDS) throw new TransientAwsError(`DynamoDB refused to end ${pending.length} not-started nodes after ${TRANSACT_ROUNDS} TransactWriteItems rounds (conflicts or throttling)`);
        try {
          await this.db.send(new TransactWriteCommand({ TransactItems: pending.map(action) }), this.options(signal));
          ended.push(...pending);
          pending = [];
        } catch (error) {
          const reasons = (error as { CancellationReasons?: { Code?: string; Item?: Record<string, AttributeValue> }[] }).CancellationReasons;
          if ((error as { name?: string }).name !== 'TransactionCanceledException' || !reasons || reasons.length !== pending.length) throw error;
          const again: number[] = [];
          let contended = false;
          pending.forEach((id, index) => {
            const code = reasons[index]?.Code;
            if (code === 'ConditionalCheckFailed') {
              const item = reasons[index]?.Item;
              refused.set(id, item ? strip<NodeItem>(fromAttributeMap(item)) : undefined);
              return;
            }
            if (code !== 'None') contended = true;
            again.push(id);
          });
          if (contended) {
            round++;
            const { abortSignal } = this.options(signal);
            const cap = Math.min(1000, 25 * 2 ** round);
            await sleep(cap / 2 + Math.random() * (cap / 2), undefined, abortSignal ? { signal: abortSignal } : {});
          }
          pending = again;
        }
      }
    }
    return { ended, refused };
  }

  /**
   * Claims the submission of a packed array job for the pack led by `leader`: true for the
   * one caller that may submit it, false for the others (who wait for {@link getPackJob}).
   */
  async claimPack(dispatchId: string, leader: number, runId: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: pk(dispatchId), sk: `P#${String(leader).padStart(6, '0')}`, entity: 'pack', runId },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
        this.options(signal),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw error;
    }
  }

  /** Records the array job a pack runs as. */
  async setPackJob(dispatchId: string, leader: number, jobArn: string, signal?: AbortSignal): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: pk(dispatchId), sk: `P#${String(leader).padStart(6, '0')}` },
        UpdateExpression: 'SET jobArn = :arn',
        ExpressionAttributeValues: { ':arn': jobArn },
      }),
      this.options(signal),
    );
  }

  /** The array job of a pack, once submitted. */
  async getPackJob(dispatchId: string, leader: number, signal?: AbortSignal): Promise<string | undefined> {
    const out = await this.db.send(
      new GetCommand({ TableName: this.table, Key: { pk: pk(dispatchId), sk: `P#${String(leader).padStart(6, '0')}` }, ConsistentRead: true }),
      this.options(signal),
    );
    return out.Item?.['jobArn'] as string | undefined;
  }

  /** Records how the cancel handler is stopping a node's job, for the completion handler to report. */
  async setCancelAction(dispatchId: string, nodeId: number, action: CancelMethod, signal?: AbortSignal): Promise<void> {
    await this.conditionalUpdate(dispatchId, nodeId, 'SET cancelAction = :a', 'attribute_exists(pk)', { ':a': action }, signal);
  }

  /** Marks the whole dispatch as asked to cancel (new nodes of it then never start). */
  async requestDispatchCancel(dispatchId: string, signal?: AbortSignal, requestId?: string): Promise<DispatchItem | undefined> {
    return this.conditionalDispatchUpdate(
      dispatchId,
      requestId ? 'SET cancelRequested = :true, cancelRequestId = if_not_exists(cancelRequestId, :rid)' : 'SET cancelRequested = :true',
      'attribute_exists(pk)',
      { ':true': true, ...(requestId ? { ':rid': requestId } : {}) },
      signal,
    );
  }

  /** Records the execution started for a dispatch. */
  async setExecutionArn(dispatchId: string, executionArn: string, signal?: AbortSignal): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: pk(dispatchId), sk: DISPATCH_SK },
        UpdateExpression: 'SET executionArn = :arn',
        ExpressionAttributeValues: { ':arn': executionArn },
      }),
      this.options(signal),
    );
  }

  /** Ends a dispatch unless it already ended. Returns the item as written, or undefined. */
  async finishDispatch(
    dispatchId: string,
    outcome: { status: DispatchStatus; endedAt: string; error?: SerializedError; hasResult?: boolean },
    signal?: AbortSignal,
  ): Promise<DispatchItem | undefined> {
    const values: Record<string, unknown> = { ':status': outcome.status, ':ended': outcome.endedAt, ':running': DispatchStatus.RUNNING };
    let update = 'SET #status = :status, endedAt = :ended';
    if (outcome.error) {
      update += ', #error = :error';
      values[':error'] = outcome.error;
    }
    if (outcome.hasResult) {
      update += ', hasResult = :true';
      values[':true'] = true;
    }
    return this.conditionalDispatchUpdate(dispatchId, update, '#status = :running', values, signal);
  }

  private async conditionalDispatchUpdate(
    dispatchId: string,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<DispatchItem | undefined> {
    const aliases: Record<string, string> = { '#status': 'status', '#error': 'error' };
    const names = Object.fromEntries(Object.entries(aliases).filter(([alias]) => update.includes(alias) || condition.includes(alias)));
    try {
      const out = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(dispatchId), sk: DISPATCH_SK },
          UpdateExpression: update,
          ConditionExpression: condition,
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
        this.options(signal),
      );
      return strip<DispatchItem>(out.Attributes);
    } catch (error) {
      if (isConditionFailed(error)) return undefined;
      throw error;
    }
  }

  /** Appends a cancel request to the dispatch's audit trail. */
  async recordCancelRequest(dispatchId: string, request: CancelRequestItem, signal?: AbortSignal): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: pk(dispatchId), sk: `C#${request.requestedAt}#${request.requestId}`, entity: 'cancel', ...request },
      }),
      this.options(signal),
    );
  }

  private async conditionalUpdate(
    dispatchId: string,
    nodeId: number,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<NodeItem | undefined> {
    const out = await this.conditionalUpdateOrOld(dispatchId, nodeId, update, condition, values, signal, false);
    return 'item' in out ? out.item : undefined;
  }

  /**
   * A conditional update that returns the node as written, or — when the condition failed — as
   * it was: with `returnOld`, from the failure itself (`ReturnValuesOnConditionCheckFailure:
   * 'ALL_OLD'`, no second request). `old` is undefined when there is no such item, and when the
   * service returned none (an emulator without the feature): the caller reads it then.
   */
  private async conditionalUpdateOrOld(
    dispatchId: string,
    nodeId: number,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    signal: AbortSignal | undefined,
    returnOld: boolean,
  ): Promise<{ readonly item: NodeItem } | { readonly old: NodeItem | undefined }> {
    // DynamoDB rejects names an expression does not use, so alias only what appears.
    // (`output` and `identity` are DynamoDB reserved words.)
    const aliases: Record<string, string> = { '#status': 'status', '#error': 'error', '#output': 'output', '#identity': 'identity' };
    const names = Object.fromEntries(
      Object.entries(aliases).filter(([alias]) => update.includes(alias) || condition.includes(alias)),
    );
    try {
      const out = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(dispatchId), sk: nodeSk(nodeId) },
          UpdateExpression: update,
          ConditionExpression: condition,
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
          ...(returnOld ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}),
        }),
        this.options(signal),
      );
      return { item: strip<NodeItem>(out.Attributes)! };
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
      // lib-dynamodb does not translate an error's item: it comes in DynamoDB's JSON.
      const raw = (error as { Item?: Record<string, AttributeValue> }).Item;
      return { old: raw ? strip<NodeItem>(fromAttributeMap(raw)) : undefined };
    }
  }

  /**
   * Records a cancel request as open (issue 13): durable before any flag is written, and listed
   * under `listKey = CANCEL_OPEN` so the sweeper finds a request whose handler crashed, timed
   * out or lost a write, and finishes it. {@link finishCancelRequest} closes it.
   */
  async openCancelRequest(dispatchId: string, request: CancelRequestItem, signal?: AbortSignal): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          pk: pk(dispatchId),
          sk: `C#${request.requestedAt}#${request.requestId}`,
          entity: 'cancel',
          ...request,
          dispatchId,
          state: 'OPEN',
          attempts: 0,
          progressAt: request.requestedAt,
          listKey: 'CANCEL_OPEN',
          listSort: `${request.requestedAt}#${dispatchId}#${request.requestId}`,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
      this.options(signal),
    );
  }

  /** Notes progress on an open cancel request (one more attempt, and when), so the sweeper leaves a live one alone. */
  async touchCancelRequest(
    dispatchId: string,
    request: Pick<CancelRequestItem, 'requestId' | 'requestedAt'>,
    progressAt: string,
    error: string | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(dispatchId), sk: `C#${request.requestedAt}#${request.requestId}` },
          UpdateExpression: error ? 'SET progressAt = :at, lastError = :e ADD attempts :one' : 'SET progressAt = :at ADD attempts :one',
          ConditionExpression: '#state = :open',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':at': progressAt, ':one': 1, ':open': 'OPEN', ...(error ? { ':e': error } : {}) },
        }),
        this.options(signal),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
  }

  /**
   * Records how far an open cancel request got (issue 13), so that the next invocation that
   * works on it (a continuation, or the sweeper) resumes instead of repeating what was done,
   * and `GET …/cancels/{requestId}` shows its progress. Ignored once the request is closed.
   */
  async checkpointCancelRequest(dispatchId: string, request: Pick<CancelRequestItem, 'requestId' | 'requestedAt'>, checkpoint: CancelCheckpoint, signal?: AbortSignal): Promise<void> {
    const entries = Object.entries(checkpoint).filter(([, value]) => value !== undefined);
    if (entries.length === 0) return;
    const names: Record<string, string> = { '#state': 'state' };
    const values: Record<string, unknown> = { ':open': 'OPEN' };
    const sets = entries.map(([key, value], i) => {
      names[`#c${i}`] = key;
      values[`:c${i}`] = value;
      return `#c${i} = :c${i}`;
    });
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(dispatchId), sk: `C#${request.requestedAt}#${request.requestId}` },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: '#state = :open',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
        this.options(signal),
      );
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
    }
  }

  /**
   * Closes a cancel request with its final report (JSON inline, or the S3 key of a report too
   * large for the item), and takes it off the sweeper's list. The first writer wins: false
   * when the request was already closed (a continuation and the sweeper both finished it).
   */
  async finishCancelRequest(
    dispatchId: string,
    request: Pick<CancelRequestItem, 'requestId' | 'requestedAt'>,
    finishedAt: string,
    report: { readonly inline: string } | { readonly key: string },
    signal?: AbortSignal,
  ): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pk(dispatchId), sk: `C#${request.requestedAt}#${request.requestId}` },
          UpdateExpression: `SET #state = :done, finishedAt = :at, ${'inline' in report ? 'report' : 'reportKey'} = :r REMOVE listKey, listSort, lastError`,
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(#state) OR #state = :open)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':done': 'DONE', ':at': finishedAt, ':r': 'inline' in report ? report.inline : report.key, ':open': 'OPEN' },
        }),
        this.options(signal),
      );
      return true;
    } catch (e) {
      if (isConditionFailed(e)) return false;
      throw e;
    }
  }

  /** Cancel requests not finished yet, oldest first (the sweeper's work list). */
  async listOpenCancelRequests(signal?: AbortSignal): Promise<OpenCancelRequest[]> {
    return this.queryList<OpenCancelRequest>('CANCEL_OPEN', signal);
  }

  /** One cancel request of a dispatch by its id, with its state and (once done) its report. */
  async getCancelRequest(dispatchId: string, requestId: string, signal?: AbortSignal): Promise<CancelRequestRecord | undefined> {
    const all = (await this.listCancelRequests(dispatchId, signal)) as CancelRequestRecord[];
    return all.find((r) => r.requestId === requestId);
  }
}

/** How far an open cancel request got: what {@link Store.checkpointCancelRequest} records. */
export interface CancelCheckpoint {
  /** Whether the request stopped the dispatch's execution; present once that step is done. */
  readonly executionStopped?: boolean;
  /** When the stop calls for running targets were sent; present once that step is done. */
  readonly stopsSentAt?: string;
  /** Stop calls that failed, by node id: `{ "3": "ThrottlingException: …" }`. */
  readonly stopErrors?: Readonly<Record<string, string>>;
  /** What paths into sublattices reported (their child dispatches' reports), as JSON. */
  readonly childReport?: string;
  /** Progress for callers and the CLI's bar. */
  readonly progress?: { readonly phase: string; readonly done: number; readonly total: number };
  /** Nodes another (finished or stale) request had flagged that this one stopped after all. */
  readonly adopted?: readonly number[];
  /**
   * A task cancel's release of waiting states went through the targets in id order up to this
   * one: a resumed attempt releases only those after it.
   */
  readonly releasedThrough?: number;
  /** When the last invocation working on it made progress (the sweeper leaves fresh ones alone). */
  readonly progressAt?: string;
}

/** A cancel request item as the store holds it: the request, and its progress (issue 13). */
export interface CancelRequestRecord extends CancelRequestItem {
  /** `OPEN` until its report is written, then `DONE`; absent on items written before issue 13. */
  readonly state?: 'OPEN' | 'DONE';
  readonly attempts?: number;
  /** When an attempt at it last started or ended. */
  readonly progressAt?: string;
  readonly lastError?: string;
  readonly finishedAt?: string;
  /** The final report, as JSON. */
  readonly report?: string;
  /** Where the final report is in S3, when it was too large for the item. */
  readonly reportKey?: string;
  readonly executionStopped?: boolean;
  readonly stopsSentAt?: string;
  readonly stopErrors?: Readonly<Record<string, string>>;
  readonly childReport?: string;
  readonly progress?: CancelCheckpoint['progress'];
  readonly adopted?: CancelCheckpoint['adopted'];
  readonly releasedThrough?: CancelCheckpoint['releasedThrough'];
}

/** An open cancel request on the sweeper's list, with the dispatch it belongs to. */
export interface OpenCancelRequest extends CancelRequestRecord {
  readonly dispatchId: string;
}
