/**
 * The credentials the local cloud accepts.
 *
 * Every service checks each request's SigV4 signature against this store, as AWS does; the
 * default pair is LocalStack's `test`/`test`, so tools configured for LocalStack work unchanged.
 */
import { ENV } from '../../sdk/contract.ts';
import type { CredentialStore } from './service.ts';

/** One access key pair. */
export interface LocalCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** A session token issued with the pair; requests signed with it must carry it. */
  readonly sessionToken?: string;
}

/** LocalStack's convention, which every local AWS tool already assumes. */
export const DEFAULT_CREDENTIALS: LocalCredentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/** A mutable {@link CredentialStore}: tests add a second identity to check who called. */
export class StaticCredentialStore implements CredentialStore {
  readonly #secrets = new Map<string, string>();
  readonly #tokens = new Map<string, string>();

  constructor(initial: readonly LocalCredentials[] = [DEFAULT_CREDENTIALS]) {
    for (const pair of initial) this.add(pair);
  }

  /** Accepts one more key pair (replacing the secret of a known key). */
  add(pair: LocalCredentials): void {
    this.#secrets.set(pair.accessKeyId, pair.secretAccessKey);
    if (pair.sessionToken === undefined) this.#tokens.delete(pair.accessKeyId);
    else this.#tokens.set(pair.accessKeyId, pair.sessionToken);
  }

  /** Stops accepting a key. */
  remove(accessKeyId: string): void {
    this.#secrets.delete(accessKeyId);
    this.#tokens.delete(accessKeyId);
  }

  secretFor(accessKeyId: string): string | undefined {
    return this.#secrets.get(accessKeyId);
  }

  sessionTokenFor(accessKeyId: string): string | undefined {
    return this.#tokens.get(accessKeyId);
  }
}

/** Host variables that would make a workload sign with the host's AWS identity instead of the cloud's. */
const HOST_CREDENTIAL_VARIABLES = [
  'AWS_SESSION_TOKEN',
  'AWS_SECURITY_TOKEN',
  'AWS_PROFILE',
  'AWS_DEFAULT_PROFILE',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
] as const;

/**
 * The environment a workload (a Lambda function's worker, a Batch or Braket job's process)
 * runs with: this process's environment without the host's AWS identity and without valence's
 * own deployment variables ({@link ENV}), then `layers` in order (the cloud's endpoint and key
 * pair first). So the runtime's own handlers and job runners sign every call back to the cloud
 * with a key pair the cloud holds, and never with a session token of the user's shell, which
 * the cloud would refuse; and a function sees the deployment's variables as configured, as on
 * AWS: a `VALENCE_WORKFLOWS` in the shell of `valence local` made the bundled API handler
 * import the TypeScript module by path, under plain node, and fail.
 */
export function workloadEnvironment(...layers: readonly (Readonly<Record<string, string>> | undefined)[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  for (const key of HOST_CREDENTIAL_VARIABLES) delete env[key];
  for (const key of Object.values(ENV)) delete env[key];
  for (const layer of layers) if (layer) Object.assign(env, layer);
  return env;
}
