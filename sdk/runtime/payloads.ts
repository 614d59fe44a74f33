/**
 * The S3 payload store: arguments, node inputs and outputs, graphs and results.
 *
 * Only ids travel through Step Functions (its 256 KiB state limit never bites); every value
 * lives here, in valence's safe serialization format, under `dispatches/{dispatchId}/`.
 */
import { PAYLOAD_PREFIX } from '../contract.ts';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { LIMITS } from '../contract.ts';
import { ErrorCode, ValenceError, type ValenceErrorOptions } from '../errors.ts';
import { deserialize, serialize } from './serialization.ts';
import { outputHashOf, type NodeAddress } from './content.ts';
import { UNBOUNDED_SIGNAL, callSignal, sendOptions } from './signals.ts';

/** The object keys of one dispatch. Kept in one place so infra's lifecycle rule matches them. */
export const payloadKeys = {
  prefix: (dispatchId: string) => `${PAYLOAD_PREFIX}${dispatchId}/`,
  graph: (dispatchId: string) => `${PAYLOAD_PREFIX}${dispatchId}/graph.json`,
  args: (dispatchId: string) => `${PAYLOAD_PREFIX}${dispatchId}/args`,
  nodeInputs: (dispatchId: string, nodeId: number) => `${PAYLOAD_PREFIX}${dispatchId}/nodes/${nodeId}/inputs`,
  nodeOutput: (dispatchId: string, nodeId: number) => `${PAYLOAD_PREFIX}${dispatchId}/nodes/${nodeId}/output`,
  nodeError: (dispatchId: string, nodeId: number) => `${PAYLOAD_PREFIX}${dispatchId}/nodes/${nodeId}/error`,
  result: (dispatchId: string) => `${PAYLOAD_PREFIX}${dispatchId}/result`,
  braketOutputPrefix: (dispatchId: string, nodeId: number) => `${PAYLOAD_PREFIX}${dispatchId}/nodes/${nodeId}/braket`,
  /** Written before a forced `TerminateJob`: the job runner exits at once on SIGTERM instead of after its grace period. */
  forceStop: (dispatchId: string, nodeId: number) => `${PAYLOAD_PREFIX}${dispatchId}/nodes/${nodeId}/force-stop`,
} as const;

/** Thrown when an expected payload is missing. */
export class PayloadNotFoundError extends ValenceError {
  override readonly name: string = 'PayloadNotFoundError';
  declare readonly code: typeof ErrorCode.PAYLOAD_NOT_FOUND;
  constructor(
    /** The object key that was read. */
    readonly key: string,
    options: ValenceErrorOptions = {},
  ) {
    super(ErrorCode.PAYLOAD_NOT_FOUND, `Payload s3://…/${key} does not exist`, options);
  }
}

/**
 * Reads and writes serialized values in the dispatch bucket. Every call runs under the
 * store's {@link signal} (the invocation's, once bound with {@link withSignal}) and, when
 * given, the caller's own.
 */
export class PayloadStore {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    /** Bounds every call of this store. @default a signal that never aborts */
    readonly signal: AbortSignal = UNBOUNDED_SIGNAL,
  ) {}

  /** The same bucket, with every call bounded by `signal` (a handler's invocation signal). */
  withSignal(signal: AbortSignal): PayloadStore {
    return signal === this.signal ? this : new PayloadStore(this.s3, this.bucket, signal);
  }

  private options(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
    return sendOptions(callSignal(this.signal, signal));
  }

  /** Stores a value (serialized) under `key`. */
  async putValue(key: string, value: unknown, signal?: AbortSignal): Promise<void> {
    await this.putText(key, serialize(value), signal);
  }

  /** Stores already-serialized or plain text. */
  async putText(key: string, text: string, signal?: AbortSignal): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: text }), this.options(signal));
  }

  /**
   * Stores a node's output: returns the serialized text when it fits the node item
   * ({@link LIMITS.inlineOutputBytes}), so the caller writes it with the node's end and S3 is
   * not touched; otherwise stores it in S3 and returns no `output`. Either way `outputHash` is
   * the text's SHA-256, the address a redispatch reuses the result by.
   */
  async putNodeOutput(dispatchId: string, nodeId: number, value: unknown, signal?: AbortSignal): Promise<{ output?: string; outputHash: string }> {
    const text = serialize(value);
    const outputHash = outputHashOf(text);
    if (Buffer.byteLength(text, 'utf8') <= LIMITS.inlineOutputBytes) return { output: text, outputHash };
    await this.putText(payloadKeys.nodeOutput(dispatchId, nodeId), text, signal);
    return { outputHash };
  }

  /**
   * Reads a node's output: inline from its item when stored there, else from S3 — another
   * dispatch's object when the result was reused (`outputRef`).
   */
  async getNodeOutput<T = unknown>(
    node: { readonly dispatchId: string; readonly nodeId: number; readonly output?: string; readonly outputRef?: NodeAddress },
    signal?: AbortSignal,
  ): Promise<T> {
    if (node.output !== undefined) return deserialize<T>(node.output);
    const at = node.outputRef ?? node;
    return this.getValue<T>(payloadKeys.nodeOutput(at.dispatchId, at.nodeId), signal);
  }

  /** Reads a value stored with {@link putValue}. */
  async getValue<T = unknown>(key: string, signal?: AbortSignal): Promise<T> {
    return deserialize<T>(await this.getText(key, signal));
  }

  /** Reads an object as text. */
  async getText(key: string, signal?: AbortSignal): Promise<string> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), this.options(signal));
      return (await out.Body?.transformToString('utf8')) ?? '';
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') throw new PayloadNotFoundError(key);
      throw error;
    }
  }
}
