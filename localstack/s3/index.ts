/**
 * S3 for the local cloud: s3rver (S3's REST API on the file system) inside this process.
 *
 * s3rver is a Koa app; the local cloud calls its request callback directly, so it needs no
 * port of its own. Two things s3rver lacks are done here, before it sees a request:
 * - `aws-chunked` bodies (streamed uploads with trailing checksums, the SDK's and CLI's default
 *   for streams) are decoded, so objects are stored without their chunk framing whatever the
 *   client's checksum settings;
 * - virtual-hosted requests to `<bucket>.localhost` are rewritten to path style.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { AwsServiceError, ErrorProtocol, sendAwsError } from '../wire/errors.ts';
import { standInRequest } from '../wire/body.ts';
import type { CredentialStore, LocalService, RequestContext } from '../core/service.ts';
import { parseCredentialScope, parseQuery, splitUrl } from '../core/sigv4.ts';

const require = createRequire(import.meta.url);

/** The slice of s3rver's filesystem store that {@link makePutsAtomic} replaces and uses. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: 'object'): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putObject(object: { bucket: string; key: string; content: Readable | Buffer; metadata: Record<string, string> }): Promise<{ md5: string; size: number }>;
}

/**
 * s3rver writes an object in place and answers the PUT when the body has been read, before
 * its write stream has flushed: a GET right after the PUT (a child reading its parent's 10 MB
 * output) could read the first 8 MiB and a cut-off string. AWS never shows a partial object.
 * Here the body is read whole, written to a temporary file beside the object and renamed over
 * it, and only then does the PUT answer: a reader sees the old object or the new one.
 */
function makePutsAtomic(store: FilesystemStore): void {
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(object.content)) chunks.push(object.content);
    else for await (const chunk of object.content) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    const body = Buffer.concat(chunks);
    const temporary = `${objectPath}.${process.pid}.${randomUUID()}.part`;
    await writeFile(temporary, body);
    await rename(temporary, objectPath);
    const md5 = createHash('md5').update(body).digest('hex');
    await store.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size: body.length, md5 };
  };
}

/** The slice of s3rver's (untyped) API the local cloud uses. */
interface S3rverApp {
  silent: boolean;
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  store: {
    getBucket(name: string): Promise<unknown>;
    putBucket(name: string): Promise<unknown>;
    putObject(object: unknown): Promise<{ md5: string; size: number }>;
    getObject(bucket: string, key: string): Promise<{ content: Readable } | null>;
  };
  logger: { close(): void; exceptions: { unhandle(): void } };
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverApp;
type S3ObjectConstructor = new (bucket: string, key: string, content: Readable | Buffer, metadata: Record<string, string>) => unknown;
interface AwsAccountModule {
  registry: Map<string, unknown>;
  DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void };
}

/** Options of the local S3. */
export interface S3ServiceOptions {
  /** Directory that keeps buckets across restarts. @default a temporary directory removed by stop() */
  readonly dataDir?: string;
  /** Secrets to register with s3rver (it checks that the access key exists, not the signature). */
  readonly credentials?: CredentialStore;
}

/** The local S3, plus in-process access for services that write results (Braket). */
export interface LocalS3Service extends LocalService {
  /** Creates a bucket unless it exists (as a `cdk deploy` would). */
  createBucket(bucket: string): Promise<void>;
  /** Stores an object without an HTTP round trip (not counted as a request). */
  writeObject(bucket: string, key: string, body: string | Buffer, contentType?: string): Promise<void>;
  /** Reads an object, or undefined when it does not exist. */
  readObject(bucket: string, key: string): Promise<Buffer | undefined>;
}

/** An S3 `NoSuchBucket` raised by the in-process API. */
export class NoSuchBucketError extends AwsServiceError {
  override readonly name = 'NoSuchBucketError';
  constructor(readonly bucket: string) {
    super('NoSuchBucket', 404, `The specified bucket does not exist: ${bucket}`);
  }
}

/** Creates the local S3 (path-style; `<bucket>.localhost` virtual hosts also work). */
export function createS3Service(options: S3ServiceOptions = {}): LocalS3Service {
  // s3rver (Koa, winston, …) loads on first use: a local cloud used without S3 never pays
  // for it, and the cloud itself starts faster.
  let instance:
    | { app: S3rverApp; callback: (req: IncomingMessage, res: ServerResponse) => Promise<void>; S3Object: S3ObjectConstructor; accounts: AwsAccountModule; directory: string }
    | undefined;
  const temporary = options.dataDir === undefined;
  let stopped = false;
  const ensure = () => {
    if (instance) return instance;
    if (stopped) throw new Error('the local S3 has stopped');
    const S3rver = require('s3rver') as S3rverConstructor;
    const S3Object = require('s3rver/lib/models/object') as S3ObjectConstructor;
    const accounts = require('s3rver/lib/models/account') as AwsAccountModule;
    const directory = options.dataDir ? join(options.dataDir, 's3') : mkdtempSync(join(tmpdir(), 'valence-s3-'));
    mkdirSync(directory, { recursive: true });
    const app = new S3rver({ directory, silent: true, vhostBuckets: false, resetOnClose: false, allowMismatchedSignatures: true });
    app.silent = true;
    makePutsAtomic(app.store as unknown as FilesystemStore);
    instance = { app, callback: app.callback(), S3Object, accounts, directory };
    return instance;
  };

  return {
    signingName: 's3',
    async handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
      rewriteVirtualHost(req);
      const operation = s3OperationOf(req.method ?? 'GET', req.url ?? '/', req.headers);
      ctx.count(operation);
      const fault = await ctx.fault(operation);
      if (fault || stopped) {
        req.resume();
        sendAwsError(res, ErrorProtocol.RestXml, fault ?? { status: 503, code: 'ServiceUnavailable', message: 'The local cloud is stopping' });
        return;
      }
      const { callback, accounts } = ensure();
      // s3rver checks that the access key exists (not the SigV4 signature); like LocalStack,
      // the local cloud accepts any key.
      const scope = parseCredentialScope(req);
      if (scope && !accounts.registry.has(scope.accessKeyId)) {
        accounts.DUMMY_ACCOUNT.createKeyPair(scope.accessKeyId, options.credentials?.secretFor(scope.accessKeyId) ?? '');
      }
      await callback(decodeAwsChunked(req), res);
    },
    async createBucket(bucket: string): Promise<void> {
      await ensure().app.store.putBucket(bucket);
    },
    async writeObject(bucket: string, key: string, body: string | Buffer, contentType = 'application/json'): Promise<void> {
      const { app, S3Object } = ensure();
      if (!(await app.store.getBucket(bucket))) throw new NoSuchBucketError(bucket);
      const content = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      await app.store.putObject(
        new S3Object(bucket, key, Readable.from([content]), {
          'content-type': contentType,
          'content-length': String(content.length),
          'last-modified': new Date().toUTCString(),
        }),
      );
    },
    async readObject(bucket: string, key: string): Promise<Buffer | undefined> {
      const object = await ensure().app.store.getObject(bucket, key);
      if (!object) return undefined;
      const chunks: Buffer[] = [];
      for await (const chunk of object.content) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
    stop(): Promise<void> {
      if (stopped) return Promise.resolve();
      stopped = true;
      if (!instance) return Promise.resolve();
      try {
        instance.app.logger.exceptions.unhandle();
        instance.app.logger.close();
        if (temporary) rmSync(instance.directory, { recursive: true, force: true });
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error), { cause: error }));
      }
      return Promise.resolve();
    },
  };
}

/** Rewrites `<bucket>.localhost[.…]` and `<bucket>.s3.localhost…` hosts to path style. */
function rewriteVirtualHost(req: IncomingMessage): void {
  const host = String(req.headers.host ?? '');
  const match = /^(.+?)(?:\.s3)?\.(localhost(?:\.localstack\.cloud)?)(:\d+)?$/.exec(host);
  if (!match) return;
  const [, bucket, base, port = ''] = match;
  if (!bucket || bucket === 's3') return;
  req.url = `/${bucket}${req.url === '/' ? '' : (req.url ?? '')}`;
  req.headers.host = `${base ?? 'localhost'}${port}`;
}

/** Capitalized S3 sub-resource names as they appear in operation names. */
const SUBRESOURCE_NAMES: Record<string, string> = {
  acl: 'Acl',
  cors: 'Cors',
  website: 'Website',
  policy: 'Policy',
  tagging: 'Tagging',
  versioning: 'Versioning',
  lifecycle: 'LifecycleConfiguration',
  notification: 'NotificationConfiguration',
  encryption: 'Encryption',
  logging: 'Logging',
  location: 'Location',
  replication: 'Replication',
  accelerate: 'AccelerateConfiguration',
  requestPayment: 'RequestPayment',
  ownershipControls: 'OwnershipControls',
  publicAccessBlock: 'PublicAccessBlock',
  'object-lock': 'ObjectLockConfiguration',
  attributes: 'Attributes',
  retention: 'Retention',
  'legal-hold': 'LegalHold',
};

/**
 * The S3 API operation a REST request is, as the SDK names it (`PutObject`, `ListObjectsV2`,
 * `CreateMultipartUpload`, …), derived from method, path and query as S3 itself does.
 */
export function s3OperationOf(method: string, url: string, headers: IncomingMessage['headers']): string {
  const { path, query: rawQuery } = splitUrl(url);
  const query = parseQuery(rawQuery);
  const has = (name: string) => Object.prototype.hasOwnProperty.call(query, name);
  const segments = path.split('/').filter(Boolean);
  const verb = method.toUpperCase();
  if (segments.length === 0) return verb === 'GET' ? 'ListBuckets' : `${verb}Service`;
  const subresource = Object.keys(SUBRESOURCE_NAMES).find(has);
  const isObject = segments.length > 1;
  if (!isObject) {
    if (subresource) {
      const name = SUBRESOURCE_NAMES[subresource] ?? subresource;
      if (verb === 'GET') return `GetBucket${name}`;
      if (verb === 'PUT') return `PutBucket${name}`;
      if (verb === 'DELETE') return `DeleteBucket${name}`;
    }
    switch (verb) {
      case 'GET':
        if (query['list-type'] === '2') return 'ListObjectsV2';
        if (has('uploads')) return 'ListMultipartUploads';
        if (has('versions')) return 'ListObjectVersions';
        return 'ListObjects';
      case 'HEAD':
        return 'HeadBucket';
      case 'PUT':
        return 'CreateBucket';
      case 'DELETE':
        return 'DeleteBucket';
      case 'POST':
        return has('delete') ? 'DeleteObjects' : 'PostObject';
      default:
        return `${verb}Bucket`;
    }
  }
  if (subresource && ['tagging', 'acl', 'attributes', 'retention', 'legal-hold'].includes(subresource)) {
    const name = SUBRESOURCE_NAMES[subresource] ?? subresource;
    if (verb === 'GET') return `GetObject${name}`;
    if (verb === 'PUT') return `PutObject${name}`;
    if (verb === 'DELETE') return `DeleteObject${name}`;
  }
  switch (verb) {
    case 'GET':
      return has('uploadId') ? 'ListParts' : 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      if (has('partNumber') && has('uploadId')) return headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart';
      return headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
    case 'DELETE':
      return has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    case 'POST':
      if (has('uploads')) return 'CreateMultipartUpload';
      if (has('uploadId')) return 'CompleteMultipartUpload';
      if (has('restore')) return 'RestoreObject';
      if (has('select')) return 'SelectObjectContent';
      return 'PostObject';
    default:
      return `${verb}Object`;
  }
}

/**
 * Returns the request itself, or — for an `aws-chunked` body — a stand-in request whose body
 * is the decoded payload and whose headers describe it (`content-length` is the decoded
 * length, `aws-chunked` is gone from `content-encoding`), which is what S3 itself stores.
 */
export function decodeAwsChunked(req: IncomingMessage): IncomingMessage {
  const sha = String(req.headers['x-amz-content-sha256'] ?? '');
  const encoding = String(req.headers['content-encoding'] ?? '');
  const chunked = sha.startsWith('STREAMING-') || encoding.split(',').some((e) => e.trim() === 'aws-chunked');
  if (!chunked) return req;
  const headers = { ...req.headers };
  const remaining = encoding
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e && e !== 'aws-chunked');
  if (remaining.length > 0) headers['content-encoding'] = remaining.join(',');
  else delete headers['content-encoding'];
  const decodedLength = headers['x-amz-decoded-content-length'];
  if (decodedLength !== undefined) headers['content-length'] = String(decodedLength);
  else delete headers['content-length'];
  delete headers['x-amz-decoded-content-length'];
  delete headers['x-amz-trailer'];
  headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  return standInRequest(req, new AwsChunkedDecoder(), headers);
}

/**
 * Strips `aws-chunked` framing: `hex-size[;chunk-signature=…]\r\n data \r\n … 0\r\n
 * trailers \r\n`. Chunk signatures and trailing checksums are not verified (s3rver does not
 * verify SigV4 either).
 */
export class AwsChunkedDecoder extends Transform {
  #buffer: Buffer = Buffer.alloc(0);
  #remaining = 0;
  #state: 'header' | 'data' | 'data-end' | 'trailer' | 'done' = 'header';

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    try {
      this.#drain();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#state !== 'done' && this.#state !== 'trailer') {
      callback(new Error('aws-chunked body ended before its final chunk'));
      return;
    }
    callback();
  }

  #drain(): void {
    for (;;) {
      if (this.#state === 'data') {
        if (this.#buffer.length === 0) return;
        const take = Math.min(this.#remaining, this.#buffer.length);
        this.push(this.#buffer.subarray(0, take));
        this.#buffer = this.#buffer.subarray(take);
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = 'data-end';
        continue;
      }
      if (this.#state === 'done') {
        this.#buffer = Buffer.alloc(0);
        return;
      }
      const eol = this.#buffer.indexOf('\r\n');
      if (eol < 0) {
        if (this.#buffer.length > 64 * 1024) throw new Error('aws-chunked framing line too long');
        return;
      }
      const line = this.#buffer.subarray(0, eol).toString('latin1');
      this.#buffer = this.#buffer.subarray(eol + 2);
      if (this.#state === 'data-end') {
        if (line !== '') throw new Error('aws-chunked data not followed by CRLF');
        this.#state = 'header';
      } else if (this.#state === 'header') {
        const size = Number.parseInt(line.split(';')[0] ?? '', 16);
        if (!Number.isFinite(size) || size < 0) throw new Error(`bad aws-chunked chunk header: ${line.slice(0, 80)}`);
        if (size === 0) this.#state = 'trailer';
        else {
          this.#remaining = size;
          this.#state = 'data';
        }
      } else if (line === '') {
        this.#state = 'done';
      }
    }
  }
}
