/**
 * The credentials the local cloud accepts.
 *
 * Most services accept any access key, as LocalStack does, so tools configured for LocalStack
 * work unchanged; API Gateway's AWS_IAM authorization is the one place that checks a signature,
 * and it checks it against this store.
 */
import type { CredentialStore } from './service.ts';

/** One access key pair. */
export interface LocalCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** LocalStack's convention, which every local AWS tool already assumes. */
export const DEFAULT_CREDENTIALS: LocalCredentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/** A mutable {@link CredentialStore}: tests add a second identity to check who called. */
export class StaticCredentialStore implements CredentialStore {
  readonly #secrets = new Map<string, string>();

  constructor(initial: readonly LocalCredentials[] = [DEFAULT_CREDENTIALS]) {
    for (const pair of initial) this.add(pair);
  }

  /** Accepts one more key pair (replacing the secret of a known key). */
  add(pair: LocalCredentials): void {
    this.#secrets.set(pair.accessKeyId, pair.secretAccessKey);
  }

  /** Stops accepting a key. */
  remove(accessKeyId: string): void {
    this.#secrets.delete(accessKeyId);
  }

  secretFor(accessKeyId: string): string | undefined {
    return this.#secrets.get(accessKeyId);
  }
}
