/**
 * API Gateway's request validation, as a method's `RequestValidatorId`, `RequestParameters`
 * and `RequestModels` configure it: required parameters and, for a JSON body, the model's
 * JSON Schema. A request that fails is answered 400 `BadRequestException` before the function
 * runs, with AWS's own messages, so a body that AWS would refuse is refused locally too.
 *
 * Why it matters: the CDK template is the contract. A field the SDK sends and the model does
 * not allow (`additionalProperties: false`) passes every test that skips the model, then fails
 * on every real deploy. The schema is checked by Ajv (a maintained JSON Schema validator, here
 * through aws-local-stepfunctions' own dependency tree) rather than by hand.
 *
 * Draft 4 (API Gateway's dialect) differs from the draft Ajv implements in `exclusiveMinimum` and
 * `exclusiveMaximum`, booleans there and numbers since: those are translated. Formats
 * (`format: "email"`, …) are not checked, as API Gateway does not check them either.
 */
import { createRequire } from 'node:module';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** A route or API the service cannot accept. */
export class ApiGatewayConfigError extends ValenceError {
  override readonly name = 'ApiGatewayConfigError';
  constructor(message: string) {
    super(ErrorCode.LOCAL_CLOUD_INVALID_CONFIG, message);
  }
}

/** What a method's validator checks. */
export interface RequestValidation {
  /** `method.request.querystring.x`, `method.request.header.x`, `method.request.path.x` that must be present. */
  readonly requiredParameters?: readonly string[];
  /** JSON Schema (draft 4) of an `application/json` body; absent: the body is not validated. */
  readonly bodySchema?: unknown;
}

/** A request's parts, as the validator reads them. */
export interface ValidatedRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly query: URLSearchParams;
  readonly pathParameters: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Checks one request; `undefined` when it passes, else AWS's 400 message. */
export type RequestValidator = (request: ValidatedRequest) => string | undefined;

type ValidateFunction = ((data: unknown) => boolean) & { errors?: unknown };
interface AjvInstance {
  compile(schema: object): ValidateFunction;
}

let ajv: AjvInstance | undefined;
function schemaCompiler(): AjvInstance {
  if (ajv) return ajv;
  // Resolved from aws-local-stepfunctions (a peer the local cloud always has) when valence's
  // own tree has no ajv of its own.
  const require = createRequire(import.meta.url);
  let Ajv: new (options: object) => AjvInstance;
  try {
    Ajv = (require('ajv') as { default: typeof Ajv }).default;
  } catch {
    const fromSfn = createRequire(require.resolve('aws-local-stepfunctions'));
    Ajv = (fromSfn(fromSfn.resolve('ajv', { paths: [require.resolve('asl-validator')] })) as { default: typeof Ajv }).default;
  }
  ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false });
  return ajv;
}

/** Draft 4 → the draft Ajv reads: drops `$schema`/`id`, turns boolean exclusive bounds into numbers. */
function fromDraft4(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(fromDraft4);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  const input = schema as Record<string, unknown>;
  for (const [key, value] of Object.entries(input)) {
    if (key === '$schema' || key === 'id') continue;
    if ((key === 'exclusiveMinimum' || key === 'exclusiveMaximum') && typeof value === 'boolean') continue;
    out[key] = fromDraft4(value);
  }
  if (input['exclusiveMinimum'] === true && typeof input['minimum'] === 'number') {
    out['exclusiveMinimum'] = input['minimum'];
    delete out['minimum'];
  }
  if (input['exclusiveMaximum'] === true && typeof input['maximum'] === 'number') {
    out['exclusiveMaximum'] = input['maximum'];
    delete out['maximum'];
  }
  return out;
}

const PARAMETER = /^method\.request\.(querystring|header|path|multivaluequerystring|multivalueheader)\.(.+)$/;

/**
 * Compiles a method's validation once, at deploy; a schema Ajv cannot compile is a
 * deploy-time error, as API Gateway refuses such a model when it is created.
 */
export function compileRequestValidation(validation: RequestValidation, where: string): RequestValidator | undefined {
  const required = (validation.requiredParameters ?? []).map((name) => {
    const match = PARAMETER.exec(name);
    if (!match) throw new ApiGatewayConfigError(`${where}: request parameter '${name}' is not method.request.{querystring|header|path}.NAME`);
    return { name, location: match[1]!, key: match[2]! };
  });
  let check: ValidateFunction | undefined;
  if (validation.bodySchema !== undefined) {
    if (validation.bodySchema === null || typeof validation.bodySchema !== 'object') throw new ApiGatewayConfigError(`${where}: the model's schema is not a JSON object`);
    try {
      check = schemaCompiler().compile(fromDraft4(validation.bodySchema) as object);
    } catch (error) {
      throw new ApiGatewayConfigError(`${where}: the model's schema does not compile: ${(error as Error).message}`);
    }
  }
  if (required.length === 0 && !check) return undefined;
  return (request) => {
    const missing = required.filter(({ location, key }) => {
      if (location === 'path') return request.pathParameters[key] === undefined;
      if (location === 'querystring' || location === 'multivaluequerystring') return !request.query.has(key);
      return request.headers[key.toLowerCase()] === undefined;
    });
    // AWS's wording: "Missing required request parameters: [a, b]".
    if (missing.length > 0) return `Missing required request parameters: [${missing.map(({ key }) => key).join(', ')}]`;
    if (!check) return undefined;
    // The model is for application/json; API Gateway picks it for a request without a content type too.
    const contentType = String(request.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
    if (contentType !== 'application/json') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(request.body.length === 0 ? '{}' : request.body.toString('utf8'));
    } catch {
      return 'Invalid request body';
    }
    return check(value) ? undefined : 'Invalid request body';
  };
}
