/**
 * Request bodies, one copy for every service of the local cloud: read whole with a size cap
 * (so a huge body is refused while it streams in, never buffered), or drained unread.
 *
 * The router reads and verifies the body of every request except S3's before a service sees
 * it, and hands the service a replay of it ({@link replayRequest}); services call
 * {@link readBody} either way.
 */
import { IncomingMessage } from 'node:http';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** A request body is larger than the service accepts. */
export class BodyTooLargeError extends ValenceError {
  override readonly name = 'BodyTooLargeError';
  constructor(readonly limit: number) {
    super(ErrorCode.LOCAL_BODY_TOO_LARGE, `The request body exceeds the ${limit} bytes this service accepts`);
  }
}

const BODY = Symbol('valence.localcloud.body');
type WithBody = IncomingMessage & { [BODY]?: Buffer };

/** The largest body {@link readBody} reads when no limit is given (the router caps earlier). */
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

/**
 * Reads a whole request body, refusing it with {@link BodyTooLargeError} as soon as more than
 * `limit` bytes arrived (reading then stops: nothing more is buffered).
 */
export async function readBody(req: IncomingMessage, limit = DEFAULT_BODY_LIMIT): Promise<Buffer> {
  await Promise.resolve();
  const known = (req as WithBody)[BODY];
  if (known) {
    if (known.length > limit) throw new BodyTooLargeError(limit);
    return known;
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLargeError(limit);
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer | string): void => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buffer.length;
      if (size > limit) {
        // Stop reading (nothing more is buffered) but keep the socket, so the 413 can be sent;
        // the caller answers with `Connection: close`.
        cleanup();
        req.pause();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(buffer);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * A request that reads as `req` did but whose body is `body`, already read: libraries that
 * consume the request stream themselves (dynalite) see the same bytes the router verified.
 */
export function replayRequest(req: IncomingMessage, body: Buffer): IncomingMessage {
  const replay = new IncomingMessage(req.socket) as WithBody;
  replay._read = () => {};
  replay.method = req.method;
  replay.url = req.url;
  replay.headers = req.headers;
  replay.rawHeaders = req.rawHeaders;
  replay.httpVersion = req.httpVersion;
  replay.httpVersionMajor = req.httpVersionMajor;
  replay.httpVersionMinor = req.httpVersionMinor;
  replay.complete = true;
  replay[BODY] = body;
  if (body.length > 0) replay.push(body);
  replay.push(null);
  return replay;
}

/** Reads and discards a body nobody will read, so keep-alive connections stay usable. */
export function drain(req: IncomingMessage): void {
  req.resume();
  req.on('error', () => {});
}

/**
 * `stream` dressed as the request it reads from (method, url, headers, socket), for libraries
 * that take an `IncomingMessage` (s3rver) when the body must pass through a decoder or a
 * verifier first. Errors of `req` propagate to `stream`.
 */
export function standInRequest(req: IncomingMessage, stream: NodeJS.ReadWriteStream & NodeJS.EventEmitter, headers: IncomingMessage['headers'] = req.headers): IncomingMessage {
  req.on('error', (error) => (stream as unknown as { destroy(error: Error): void }).destroy(error));
  req.pipe(stream);
  return Object.assign(stream, {
    headers,
    rawHeaders: [] as string[],
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    socket: req.socket,
    connection: req.socket,
    complete: false,
    trailers: {},
    rawTrailers: [],
  }) as unknown as IncomingMessage;
}
