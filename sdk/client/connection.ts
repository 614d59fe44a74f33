/**
 * How a client decides where it talks and as whom, in one place for the SDK's `connect()` and
 * the `valence` CLI alike: test credentials for a loopback endpoint (the local cloud and
 * LocalStack accept any key pair; a fresh shell has none), and the region from the AWS SDK's
 * own profile chain.
 */
import { loadConfig, NODE_REGION_CONFIG_FILE_OPTIONS, NODE_REGION_CONFIG_OPTIONS } from '@smithy/core/config';

/** Host names that reach this machine only: where the local cloud or LocalStack listens. */
const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[?::1\]?)$/i;

/** The key pair a loopback endpoint gets when the environment names no credentials. */
export const LOCAL_TEST_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

/** The region used when neither the arguments nor the profile chain name one. */
export const FALLBACK_REGION = 'us-east-1';

/** True when `endpoint` is a URL whose host is 127.0.0.0/8, `localhost` or `::1`. */
export function isLoopbackEndpoint(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return false;
  try {
    return LOOPBACK.test(new URL(endpoint).hostname);
  } catch {
    return false;
  }
}

/**
 * The credentials a client should pass for `endpoint`: the test pair for a loopback endpoint
 * when the environment names none (no `AWS_ACCESS_KEY_ID`, `AWS_PROFILE` or web identity), so
 * that `connect({ endpoint: 'http://127.0.0.1:4566' })` works in a fresh shell; otherwise
 * undefined, which leaves the AWS SDK's default provider chain in charge.
 */
export function loopbackCredentials(endpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): typeof LOCAL_TEST_CREDENTIALS | undefined {
  const named = Boolean(env.AWS_ACCESS_KEY_ID || env.AWS_PROFILE || env.AWS_WEB_IDENTITY_TOKEN_FILE);
  return isLoopbackEndpoint(endpoint) && !named ? LOCAL_TEST_CREDENTIALS : undefined;
}

/**
 * The region: `explicit` if given, else what the AWS SDK's own loader finds (`AWS_REGION`, then
 * `region` of the profile — `AWS_PROFILE` or `default` — in `~/.aws/config` or
 * `~/.aws/credentials`), else `AWS_DEFAULT_REGION`, else {@link FALLBACK_REGION}.
 */
export async function resolveRegion(explicit?: string): Promise<string> {
  if (explicit) return explicit;
  const fromChain = await loadConfig(
    { ...NODE_REGION_CONFIG_OPTIONS, default: () => process.env.AWS_DEFAULT_REGION ?? FALLBACK_REGION },
    NODE_REGION_CONFIG_FILE_OPTIONS,
  )();
  return fromChain || FALLBACK_REGION;
}
