/**
 * AWS errors on the wire, one copy for every service of the local cloud: the three formats AWS
 * errors come in, and the error class services throw to answer with one.
 *
 * SDKs and the AWS CLI parse these bodies into their usual exceptions, so a client that would
 * fail on AWS fails the same way locally.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** The wire formats AWS errors come in. */
export const ErrorProtocol = {
  /** awsJson1.0/1.1 and restJson1: `{"__type": code, "message": ...}` plus `x-amzn-ErrorType`. */
  Json: 'json',
  /** restXml (S3): `<Error><Code/><Message/><RequestId/></Error>`. */
  RestXml: 'rest-xml',
  /** awsQuery (CloudFormation, STS): `<ErrorResponse><Error><Type/><Code/><Message/></Error>…`. */
  Query: 'query',
} as const;
/** One of {@link ErrorProtocol}. */
export type ErrorProtocol = (typeof ErrorProtocol)[keyof typeof ErrorProtocol];

/** An AWS error as answered: HTTP status, AWS error code (the SDK exception name), message. */
export interface AwsErrorShape {
  readonly status: number;
  /** AWS error code, e.g. `ThrottlingException`, `ClientException`. */
  readonly code: string;
  readonly message: string;
}

/**
 * An error a local service answers with instead of a result. Thrown by operation handlers and
 * rendered once, at the edge, so that handlers read as plain code. `code` is valence's
 * (`LOCAL_AWS_ERROR`); the AWS code the client sees is `awsCode`.
 */
export class AwsServiceError extends ValenceError {
  override readonly name: string = 'AwsServiceError';
  /** The AWS error code, e.g. `ClientException`, `ExecutionDoesNotExist`. */
  readonly awsCode: string;
  /** HTTP status. */
  readonly status: number;

  constructor(awsCode: string, status: number, message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.LOCAL_AWS_ERROR, message, options);
    this.awsCode = awsCode;
    this.status = status;
  }

  /** The error as {@link sendAwsError} renders it. */
  toShape(): AwsErrorShape {
    return { status: this.status, code: this.awsCode, message: this.message };
  }
}

/** A request id in the shape AWS uses; every response carries one. */
export function newRequestId(): string {
  return randomUUID();
}

/** Escapes text for an XML element body. */
export function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c);
}

/** How a JSON-protocol service dresses its errors. */
export interface JsonErrorStyle {
  /** @default 'application/json' */
  readonly contentType?: string;
  /** Namespace written before the code in `__type` (Step Functions: `com.amazonaws.swf.service.v2.model`). */
  readonly typeNamespace?: string;
  /** API Gateway's shape: the body is `{ message }` alone, the code only in `x-amzn-ErrorType`. */
  readonly messageOnly?: boolean;
}

/**
 * Answers with an AWS error in `protocol`'s wire format. Safe to call on a response whose
 * headers were already sent: it then only ends the response.
 */
export function sendAwsError(res: ServerResponse, protocol: ErrorProtocol, error: AwsErrorShape, style: JsonErrorStyle = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const requestId = newRequestId();
  let body: string;
  let contentType: string;
  if (protocol === ErrorProtocol.Json) {
    body = JSON.stringify(
      style.messageOnly ? { message: error.message } : { __type: style.typeNamespace ? `${style.typeNamespace}#${error.code}` : error.code, message: error.message },
    );
    contentType = style.contentType ?? 'application/json';
    res.setHeader('x-amzn-ErrorType', error.code);
  } else if (protocol === ErrorProtocol.RestXml) {
    body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Error><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message><RequestId>${requestId}</RequestId></Error>`;
    contentType = 'application/xml';
  } else {
    const type = error.status >= 500 ? 'Receiver' : 'Sender';
    body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<ErrorResponse><Error><Type>${type}</Type><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message></Error>` +
      `<RequestId>${requestId}</RequestId></ErrorResponse>`;
    contentType = 'text/xml';
  }
  res.statusCode = error.status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('x-amzn-RequestId', requestId);
  res.setHeader('x-amz-request-id', requestId);
  res.end(body);
}

/**
 * Answers a JSON-protocol request that failed: an {@link AwsServiceError} as itself, anything
 * else as a 500 with the service's internal-error code (`ServerException`, `InternalFailure`, …).
 */
export function sendFailure(res: ServerResponse, error: unknown, internalCode: string, style: JsonErrorStyle = {}): void {
  const shape = error instanceof AwsServiceError ? error.toShape() : { status: 500, code: internalCode, message: error instanceof Error ? error.message : String(error) };
  sendAwsError(res, ErrorProtocol.Json, shape, style);
}
