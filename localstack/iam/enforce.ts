/**
 * IAM enforcement bound to a running local cloud: the router's authorization hook, and the
 * resource-tag lookups `aws:ResourceTag/...` conditions need (a Batch job's, a Braket task's
 * tags, read from the service over its own API with the administrator's key).
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { DescribeJobsCommand } from '@aws-sdk/client-batch';
import { GetJobCommand, GetQuantumTaskCommand } from '@aws-sdk/client-braket';
import type { LocalCloud } from '../cloud.ts';
import { protocolOfService } from '../core/gate.ts';
import type { Refusal } from '../core/gate.ts';
import { splitUrl } from '../core/sigv4.ts';
import { IamEnforcer, denialMessage } from './index.ts';

/** The error code each service answers an identity-policy refusal with. */
const DENIAL_CODES: Readonly<Record<string, string>> = {
  s3: 'AccessDenied',
  'execute-api': 'AccessDeniedException',
  cloudformation: 'AccessDenied',
};

/** Starts enforcing IAM on `cloud`: returns the enforcer and the router hook. */
export function enforceIam(cloud: LocalCloud): { enforcer: IamEnforcer; authorize: (req: IncomingMessage, body: Buffer | undefined, service: string, accessKeyId: string) => Promise<Refusal | undefined> } {
  const enforcer = new IamEnforcer({
    credentials: cloud.credentialStore,
    accountId: cloud.accountId,
    async resourceTags(resource) {
      try {
        if (resource.kind === 'batch-job') return (await cloud.clients.batch.send(new DescribeJobsCommand({ jobs: [resource.id] }))).jobs?.[0]?.tags;
        if (resource.kind === 'braket-task') return (await cloud.clients.braket.send(new GetQuantumTaskCommand({ quantumTaskArn: resource.id }))).tags;
        return (await cloud.clients.braket.send(new GetJobCommand({ jobArn: resource.id }))).tags;
      } catch {
        // An unknown resource has no tags: the service itself answers that it does not exist.
        return undefined;
      }
    },
  });
  return {
    enforcer,
    async authorize(req, body, service, accessKeyId) {
      const { path, query } = splitUrl(req.url);
      const denial = await enforcer.authorize(accessKeyId, {
        service,
        method: (req.method ?? 'GET').toUpperCase(),
        path,
        query: new URLSearchParams(query),
        headers: req.headers,
        body,
        region: cloud.region,
        accountId: cloud.accountId,
      });
      if (!denial) return undefined;
      return { protocol: protocolOfService(service), status: 403, code: DENIAL_CODES[service] ?? 'AccessDeniedException', message: denialMessage(denial) };
    },
  };
}
