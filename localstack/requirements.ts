/**
 * The packages the local cloud runs on. They are optional peer dependencies of valence, so a
 * project that only dispatches to AWS installs none of them; importing `valence/local` (or
 * running `valence local`) without them fails at once, naming every missing one.
 */
import { createRequire } from 'node:module';
import { ErrorCode, ValenceError } from '../sdk/errors.ts';

/** DynamoDB, S3 and Step Functions emulators, and tsx (Lambda sandboxes load TypeScript workflows as written). */
export const LOCAL_CLOUD_PACKAGES = ['dynalite', 's3rver', 'aws-local-stepfunctions', 'tsx'] as const;

/** The IAM evaluator the local cloud enforces a cloud assembly's policies with (assembly mode only). */
export const IAM_PACKAGES = ['@cloud-copilot/iam-simulate'] as const;

/** The packages of `names` (by default {@link LOCAL_CLOUD_PACKAGES}) that cannot be resolved from valence's installation. */
export function missingLocalCloudPackages(names: readonly string[] = LOCAL_CLOUD_PACKAGES): string[] {
  const require = createRequire(import.meta.url);
  return names.filter((name) => {
    try {
      require.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

/** Throws a `PEER_DEPENDENCIES_MISSING` error, in one line, when a local-cloud package is missing. */
export function assertLocalCloudPackages(): void {
  const missing = missingLocalCloudPackages();
  if (missing.length === 0) return;
  throw new ValenceError(
    ErrorCode.PEER_DEPENDENCIES_MISSING,
    `valence/local needs packages that are not installed: ${missing.join(', ')}. Install them with: npm install -D ${missing.join(' ')}`,
  );
}

/** Throws a `PEER_DEPENDENCIES_MISSING` error, in one line, when a package `feature` needs is missing. */
export function assertPackages(feature: string, names: readonly string[]): void {
  const missing = missingLocalCloudPackages(names);
  if (missing.length === 0) return;
  throw new ValenceError(ErrorCode.PEER_DEPENDENCIES_MISSING, `${feature} needs packages that are not installed: ${missing.join(', ')}. Install them with: npm install -D ${missing.join(' ')}`);
}
