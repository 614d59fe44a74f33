// The deployment contract: what infra and the local deploy write is what the runtime reads.
import { describe, expect, it } from 'vitest';
import { ConfigurationError, DEFAULTS, ENV, fromEnvironment, toEnvironment } from '../../sdk/contract.ts';
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

const names = {
  table: 'valence-table',
  bucket: 'valence-payloads-000000000000',
  stackName: 'valence',
  stateMachinePrefix: 'arn:aws:states:us-east-1:000000000000:stateMachine:valence_',
  graphRunnerArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:valence_graph-runner',
};

describe('toEnvironment / fromEnvironment', () => {
  it('round-trips a deployment, defaults included', () => {
    const config = { ...names, jobQueue: 'arn:aws:batch:us-east-1:000000000000:job-queue/q', jobDefinition: 'arn:aws:batch:us-east-1:000000000000:job-definition/d:1' };
    expect(fromEnvironment(toEnvironment(config))).toEqual({ ...config, watchdogIntervalMs: DEFAULTS.watchdogIntervalMs, leaseMs: DEFAULTS.leaseMs, pollIntervalMs: DEFAULTS.pollIntervalMs });
  });

  it('writes tuning only when it differs from the defaults, and reads it back', () => {
    expect(Object.keys(toEnvironment({ ...names, leaseMs: DEFAULTS.leaseMs }))).not.toContain(ENV.leaseMs);
    const env = toEnvironment({ ...names, leaseMs: 3000, watchdogIntervalMs: 50 });
    expect(env[ENV.leaseMs]).toBe('3000');
    expect(fromEnvironment(env)).toMatchObject({ leaseMs: 3000, watchdogIntervalMs: 50, pollIntervalMs: DEFAULTS.pollIntervalMs });
  });

  it('leaves optional names out when unset', () => {
    const config = fromEnvironment(toEnvironment(names));
    expect('jobQueue' in config).toBe(false);
    expect('jobDefinition' in config).toBe(false);
  });

  it('names the missing variable', () => {
    const env: Record<string, string | undefined> = { ...toEnvironment(names), [ENV.bucket]: undefined };
    const error = (() => {
      try {
        fromEnvironment(env);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toBeInstanceOf(ValenceError);
    expect((error as ConfigurationError).code).toBe(ErrorCode.CONFIGURATION_INVALID);
    expect((error as Error).message).toContain(ENV.bucket);
  });

  it('refuses a tuning value that is not a positive number', () => {
    for (const raw of ['0', '-5', 'soon']) {
      expect(() => fromEnvironment({ ...toEnvironment(names), [ENV.leaseMs]: raw })).toThrow(new RegExp(`${ENV.leaseMs} must be a positive number, got "${raw}"`));
    }
  });
});
