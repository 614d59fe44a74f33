/**
 * What an AWS request asks IAM for: its action (`dynamodb:GetItem`), the resource ARNs it
 * touches, and the request's condition keys (`s3:prefix`, `aws:RequestTag/...`), read from the
 * request as each service's wire protocol carries them. Resource tags (`aws:ResourceTag/...`)
 * are looked up by the caller, which knows the resources.
 *
 * @module
 */

/** One authorization question: every resource must be allowed for the request to be. */
export interface RequestedAction {
  readonly action: string;
  readonly resources: readonly string[];
  readonly context: Readonly<Record<string, string | string[]>>;
  /** A resource whose tags decide (`aws:ResourceTag/...`): its kind and id. */
  readonly taggedResource?: { readonly kind: 'batch-job' | 'braket-task' | 'braket-job'; readonly id: string };
  /**
   * Further questions the same request asks, every one of which must be allowed: DynamoDB's
   * TransactWriteItems has no IAM action of its own, and AWS authorizes each of its actions as
   * the single-item operation it is (`dynamodb:UpdateItem`, `dynamodb:ConditionCheckItem`, …).
   */
  readonly also?: readonly { readonly action: string; readonly resources: readonly string[] }[];
}

/** The IAM action of each TransactWriteItems action kind. */
const TRANSACT_ACTIONS: Readonly<Record<string, string>> = { ConditionCheck: 'dynamodb:ConditionCheckItem', Put: 'dynamodb:PutItem', Update: 'dynamodb:UpdateItem', Delete: 'dynamodb:DeleteItem' };

/** The request as the router saw it. */
export interface WireRequest {
  readonly service: string;
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer | undefined;
  readonly region: string;
  readonly accountId: string;
}

type Json = Record<string, unknown>;

const parseJson = (body: Buffer | undefined): Json => {
  if (!body || body.length === 0) return {};
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Json) : {};
  } catch {
    return {};
  }
};
const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const requestTags = (tags: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  if (tags && typeof tags === 'object') for (const [k, v] of Object.entries(tags as Json)) if (typeof v === 'string') out[`aws:RequestTag/${k}`] = v;
  if (Object.keys(out).length > 0) out['aws:TagKeys'] = Object.keys(tags as Json).join(',');
  return out;
};

/** The action a request asks for, or undefined for a request IAM does not govern here. */
export function requestedAction(req: WireRequest): RequestedAction | undefined {
  const { region, accountId } = req;
  const arn = (service: string, resource: string): string => `arn:aws:${service}:${region}:${accountId}:${resource}`;
  const target = typeof req.headers['x-amz-target'] === 'string' ? req.headers['x-amz-target'] : '';
  const operation = target.slice(target.indexOf('.') + 1);
  switch (req.service) {
    case 'dynamodb': {
      const body = parseJson(req.body);
      if (operation === 'TransactWriteItems') {
        const asked = new Map<string, Set<string>>();
        for (const entry of Array.isArray(body['TransactItems']) ? (body['TransactItems'] as unknown[]) : []) {
          for (const [kind, action] of Object.entries(TRANSACT_ACTIONS)) {
            const part = entry && typeof entry === 'object' ? ((entry as Json)[kind] as Json | undefined) : undefined;
            const table = part && typeof part === 'object' ? str(part['TableName']) : undefined;
            if (part) asked.set(action, (asked.get(action) ?? new Set()).add(table ? arn('dynamodb', `table/${table}`) : '*'));
          }
        }
        const questions = [...asked].map(([action, resources]) => ({ action, resources: [...resources] }));
        // An empty or malformed body still asks something: the broadest write on every table, so
        // only a role allowed that reaches the service's own refusal of the body.
        const [first, ...rest] = questions.length > 0 ? questions : [{ action: 'dynamodb:UpdateItem', resources: ['*'] }];
        return { action: first!.action, resources: first!.resources, context: {}, ...(rest.length > 0 ? { also: rest } : {}) };
      }
      const table = str(body['TableName']);
      const tables = table ? [table] : Object.keys((body['RequestItems'] as Json | undefined) ?? {});
      const index = str(body['IndexName']);
      const resources = tables.map((t) => arn('dynamodb', `table/${t}${index ? `/index/${index}` : ''}`));
      return { action: `dynamodb:${operation}`, resources: resources.length > 0 ? resources : ['*'], context: {} };
    }
    case 'states': {
      const body = parseJson(req.body);
      const resource = str(body['stateMachineArn']) ?? str(body['executionArn']) ?? '*';
      return { action: `states:${operation}`, resources: [resource], context: {} };
    }
    case 'events': {
      return { action: `events:${operation}`, resources: [arn('events', 'event-bus/default')], context: {} };
    }
    case 'lambda': {
      const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.path);
      if (invoke) {
        const name = decodeURIComponent(invoke[1]!);
        return { action: 'lambda:InvokeFunction', resources: [name.startsWith('arn:') ? name : arn('lambda', `function:${name}`)], context: {} };
      }
      return { action: `lambda:${req.method === 'GET' ? 'GetFunction' : 'Unknown'}`, resources: ['*'], context: {} };
    }
    case 'batch': {
      const op = /^\/v1\/([a-z]+)/i.exec(req.path)?.[1]?.toLowerCase() ?? '';
      const body = parseJson(req.body);
      const names: Record<string, string> = { submitjob: 'SubmitJob', terminatejob: 'TerminateJob', canceljob: 'CancelJob', describejobs: 'DescribeJobs', listjobs: 'ListJobs' };
      const action = `batch:${names[op] ?? op}`;
      if (op === 'submitjob') {
        const queue = str(body['jobQueue']) ?? '';
        const definition = str(body['jobDefinition']) ?? '';
        return {
          action,
          resources: [queue.startsWith('arn:') ? queue : arn('batch', `job-queue/${queue}`), definition.startsWith('arn:') ? definition : arn('batch', `job-definition/${definition}`)],
          context: requestTags(body['tags']),
        };
      }
      if (op === 'terminatejob' || op === 'canceljob') {
        const jobId = str(body['jobId']) ?? '';
        return { action, resources: [arn('batch', `job/${jobId}`)], context: {}, taggedResource: { kind: 'batch-job', id: jobId } };
      }
      return { action, resources: ['*'], context: {} };
    }
    case 'braket': {
      const segments = req.path.split('/').filter(Boolean).map(decodeURIComponent);
      const [first, label, verb] = segments;
      const body = parseJson(req.body);
      const kind = first === 'job' ? 'braket-job' : 'braket-task';
      if (segments.length === 1 && req.method === 'POST') {
        const action = first === 'quantum-task' ? 'CreateQuantumTask' : first === 'job' ? 'CreateJob' : first === 'quantum-tasks' ? 'SearchQuantumTasks' : 'SearchJobs';
        return { action: `braket:${action}`, resources: ['*'], context: requestTags(body['tags']) };
      }
      if (label !== undefined && (first === 'quantum-task' || first === 'job')) {
        const cancel = verb === 'cancel';
        const action = first === 'job' ? (cancel ? 'CancelJob' : 'GetJob') : cancel ? 'CancelQuantumTask' : 'GetQuantumTask';
        return { action: `braket:${action}`, resources: [label], context: {}, taggedResource: { kind, id: label } };
      }
      if (first === 'device') return { action: 'braket:GetDevice', resources: ['*'], context: {} };
      return undefined;
    }
    case 's3':
      return s3Action(req);
    case 'execute-api': {
      // /restapis/{id}/{stage}/_user_request_/{path}
      const parts = req.path.split('/');
      if (parts[1] !== 'restapis' || parts[4] !== '_user_request_') return undefined;
      const resourcePath = parts.slice(5).join('/');
      return { action: 'execute-api:Invoke', resources: [arn('execute-api', `${parts[2]}/${parts[3]}/${req.method}/${resourcePath}`)], context: {} };
    }
    case 'cloudformation': {
      const form = new URLSearchParams(req.body?.toString('utf8') ?? '');
      const action = form.get('Action') ?? req.query.get('Action') ?? 'Unknown';
      const stack = form.get('StackName') ?? req.query.get('StackName');
      const resource = stack === null ? '*' : stack.startsWith('arn:') ? stack : arn('cloudformation', `stack/${stack}/local`);
      return { action: `cloudformation:${action}`, resources: [resource], context: {} };
    }
    default:
      return undefined;
  }
}

function s3Action(req: WireRequest): RequestedAction {
  const host = String(req.headers['host'] ?? '');
  const virtual = /^([^.:]+)\.(s3\.)?localhost/.exec(host)?.[1];
  const segments = req.path.split('/').filter(Boolean).map(decodeURIComponent);
  const bucket = virtual ?? segments.shift() ?? '';
  const key = (virtual ? req.path.slice(1) : segments.join('/')).replace(/^\//, '');
  const q = req.query;
  if (!key) {
    if (req.method === 'GET' && (q.has('list-type') || [...q.keys()].length === 0 || q.has('prefix'))) {
      return { action: 's3:ListBucket', resources: [`arn:aws:s3:::${bucket}`], context: { 's3:prefix': q.get('prefix') ?? '' } };
    }
    if (req.method === 'PUT') return { action: 's3:CreateBucket', resources: [`arn:aws:s3:::${bucket}`], context: {} };
    if (req.method === 'DELETE') return { action: 's3:DeleteBucket', resources: [`arn:aws:s3:::${bucket}`], context: {} };
    if (req.method === 'POST' && q.has('delete')) return { action: 's3:DeleteObject', resources: [`arn:aws:s3:::${bucket}/*`], context: {} };
    return { action: req.method === 'HEAD' ? 's3:ListBucket' : 's3:ListBucket', resources: [`arn:aws:s3:::${bucket}`], context: {} };
  }
  const object = `arn:aws:s3:::${bucket}/${key}`;
  const action =
    req.method === 'GET' || req.method === 'HEAD'
      ? 's3:GetObject'
      : req.method === 'DELETE'
        ? q.has('uploadId')
          ? 's3:AbortMultipartUpload'
          : 's3:DeleteObject'
        : 's3:PutObject';
  return { action, resources: [object], context: {} };
}
