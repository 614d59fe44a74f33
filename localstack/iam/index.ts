/**
 * IAM enforcement for the local cloud: per-role credentials, and every signed request made
 * with them authorized against that role's identity policies (from the deployed template) by
 * `@cloud-copilot/iam-simulate`, a maintained evaluator of Allow/Deny, `Action`/`NotAction`,
 * resource wildcards and condition operators. Keys that are not a role's (the cloud's default
 * pair, test pairs) act as an administrator, so the demo and existing clients are unchanged.
 *
 * Not covered: resource-based policies (bucket, function, API policies), permission
 * boundaries, SCPs, session policies, and calls services make to each other in process
 * (Step Functions invoking Lambda, EventBridge delivering to Lambda), which sign nothing.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate';
import type { LocalCredentials, StaticCredentialStore } from '../core/credentials.ts';
import { requestedAction } from './actions.ts';
import type { RequestedAction, WireRequest } from './actions.ts';

export { requestedAction } from './actions.ts';
export type { RequestedAction, WireRequest } from './actions.ts';

/** A role and its identity policy documents. */
export interface IamRole {
  readonly arn: string;
  readonly policies: readonly { readonly name: string; readonly document: unknown }[];
}

/** Why a request was refused: the action and resource, for the service's AccessDenied. */
export interface AccessDenial {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly explicit: boolean;
}

/** Tags of a resource a request targets, for `aws:ResourceTag/...` conditions. */
export type ResourceTagLookup = (resource: NonNullable<RequestedAction['taggedResource']>) => Promise<Readonly<Record<string, string>> | undefined>;

/** Per-role credentials and authorization. */
export class IamEnforcer {
  readonly #roles = new Map<string, IamRole>();
  readonly #keys = new Map<string, string>();
  readonly #issued = new Map<string, LocalCredentials>();
  readonly #decisions = new Map<string, 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied'>();
  readonly #usage = new Map<string, Map<string, { allowed: number; denied: number }>>();
  readonly #store: StaticCredentialStore;
  readonly #accountId: string;
  readonly #tags: ResourceTagLookup;

  constructor(options: { readonly credentials: StaticCredentialStore; readonly accountId: string; readonly resourceTags: ResourceTagLookup }) {
    this.#store = options.credentials;
    this.#accountId = options.accountId;
    this.#tags = options.resourceTags;
  }

  /** Adds (or replaces) roles; their decisions so far are forgotten. */
  putRoles(roles: readonly IamRole[]): void {
    for (const role of roles) this.#roles.set(role.arn, role);
    this.#decisions.clear();
  }

  /** The roles known, by ARN. */
  roles(): readonly IamRole[] {
    return [...this.#roles.values()];
  }

  /**
   * Credentials that act as `roleArn` (an access key, secret and session token, as STS issues
   * for an assumed role); the same ones on every call for a role.
   */
  credentialsForRole(roleArn: string): LocalCredentials {
    const known = this.#issued.get(roleArn);
    if (known) return known;
    const pair: LocalCredentials = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64url'),
      sessionToken: randomBytes(48).toString('base64url'),
    };
    this.#store.add(pair);
    this.#keys.set(pair.accessKeyId, roleArn);
    this.#issued.set(roleArn, pair);
    return pair;
  }

  /** The variables a workload (a Lambda function) signs with to act as `roleArn`. */
  environmentForRole(roleArn: string): Record<string, string> {
    const pair = this.credentialsForRole(roleArn);
    return { AWS_ACCESS_KEY_ID: pair.accessKeyId, AWS_SECRET_ACCESS_KEY: pair.secretAccessKey, AWS_SESSION_TOKEN: pair.sessionToken ?? '' };
  }

  /** The role an access key acts as, or undefined for an administrator's key. */
  roleOf(accessKeyId: string | undefined): string | undefined {
    return accessKeyId === undefined ? undefined : this.#keys.get(accessKeyId);
  }

  /** Authorizes one request; undefined when allowed. */
  async authorize(accessKeyId: string | undefined, request: WireRequest): Promise<AccessDenial | undefined> {
    const roleArn = this.roleOf(accessKeyId);
    if (roleArn === undefined) return undefined;
    const asked = requestedAction(request);
    if (!asked) return undefined;
    let context = asked.context;
    if (asked.taggedResource) {
      const tags = await this.#tags(asked.taggedResource);
      if (tags) context = { ...context, ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v])) };
    }
    for (const question of [{ action: asked.action, resources: asked.resources }, ...(asked.also ?? [])]) {
      for (const resource of question.resources) {
        const decision = this.decide(roleArn, question.action, resource, context);
        this.#count(roleArn, question.action, decision === 'Allowed');
        if (decision !== 'Allowed') return { principal: roleArn, action: question.action, resource, explicit: decision === 'ExplicitlyDenied' };
      }
    }
    return undefined;
  }

  /** The evaluator's decision for one action on one resource (cached per question). */
  decide(roleArn: string, action: string, resource: string, context: Readonly<Record<string, string | string[]>> = {}): 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied' {
    const key = JSON.stringify([roleArn, action, resource, context]);
    const cached = this.#decisions.get(key);
    if (cached) return cached;
    const role = this.#roles.get(roleArn);
    // Unsafe: iam-data marks some actions wildcard-only (states:SendTaskSuccess) that AWS
    // scopes to a state machine, and CDK's grants name one; the evaluation itself is the same.
    const result = runUnsafeSimulation(
      {
        request: { principal: roleArn, action, resource: { resource, accountId: this.#accountId }, contextVariables: { ...context } },
        identityPolicies: (role?.policies ?? []).map((p) => ({ name: p.name, policy: p.document })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    const decision = result === 'Allowed' ? 'Allowed' : result === 'ExplicitlyDenied' ? 'ExplicitlyDenied' : 'ImplicitlyDenied';
    this.#decisions.set(key, decision);
    return decision;
  }

  /** Actions each role called (allowed and denied), from every authorized request since start. */
  usage(): Record<string, Record<string, { allowed: number; denied: number }>> {
    const out: Record<string, Record<string, { allowed: number; denied: number }>> = {};
    for (const [role, actions] of this.#usage) out[role] = Object.fromEntries([...actions].map(([a, c]) => [a, { ...c }]));
    return out;
  }

  #count(roleArn: string, action: string, allowed: boolean): void {
    const actions = this.#usage.get(roleArn) ?? new Map<string, { allowed: number; denied: number }>();
    this.#usage.set(roleArn, actions);
    const counts = actions.get(action) ?? { allowed: 0, denied: 0 };
    if (allowed) counts.allowed++;
    else counts.denied++;
    actions.set(action, counts);
  }
}

/** The message AWS sends with an identity-policy AccessDenied. */
export function denialMessage(denial: AccessDenial): string {
  const session = denial.principal.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/');
  return `User: ${session}/local is not authorized to perform: ${denial.action} on resource: ${denial.resource} because ${denial.explicit ? 'an explicit deny' : 'no identity-based policy allows'} the ${denial.action} action`;
}

/** One row of {@link leastPrivilegeTable}. */
export interface PrivilegeRow {
  readonly role: string;
  readonly action: string;
  /** Calls made (allowed and denied) since start. */
  readonly used: number;
  readonly denied: number;
  /** Whether a statement of the role's policies names the action (exactly or by wildcard). */
  readonly allowed: boolean;
  /** `unused`: allowed and never called (a least-privilege finding); `denied`: called and refused (a bug). */
  readonly finding: 'unused' | 'denied' | undefined;
}

/**
 * Actions each role called beside the actions its policies allow: what is allowed and never
 * used is a least-privilege finding, what is used and refused a bug.
 */
export function leastPrivilegeTable(enforcer: IamEnforcer): PrivilegeRow[] {
  const usage = enforcer.usage();
  const rows: PrivilegeRow[] = [];
  for (const role of enforcer.roles()) {
    const granted = new Set<string>();
    for (const policy of role.policies) {
      const statements = (policy.document as { Statement?: unknown }).Statement;
      for (const statement of Array.isArray(statements) ? (statements as { Effect?: string; Action?: string | string[] }[]) : []) {
        if (statement.Effect !== 'Allow') continue;
        for (const action of [statement.Action ?? []].flat()) granted.add(action);
      }
    }
    const used = usage[role.arn] ?? {};
    const pattern = (grant: string): RegExp => new RegExp(`^${grant.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
    const matches = (action: string): boolean => [...granted].some((g) => pattern(g).test(action));
    for (const [action, counts] of Object.entries(used)) {
      rows.push({ role: role.arn, action, used: counts.allowed + counts.denied, denied: counts.denied, allowed: matches(action), finding: counts.denied > 0 ? 'denied' : undefined });
    }
    for (const action of granted) {
      if (Object.keys(used).some((a) => pattern(action).test(a))) continue;
      rows.push({ role: role.arn, action, used: 0, denied: 0, allowed: true, finding: 'unused' });
    }
  }
  return rows;
}
