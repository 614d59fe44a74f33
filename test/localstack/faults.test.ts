import { describe, expect, it } from 'vitest';
import { FaultConfigError, FaultInjector, FaultKind, faultFor } from '../../localstack/core/faults.ts';

describe('FaultInjector', () => {
  it('injects nothing until configured', async () => {
    const faults = new FaultInjector();
    expect(faults.active).toBe(false);
    expect(await faults.decide('dynamodb', 'PutItem')).toBeUndefined();
    expect(faults.crashInvocation('step')).toBe(false);
  });

  it('matches service and operation, with * as a wildcard', async () => {
    const faults = new FaultInjector();
    faults.add({ service: 'dynamodb', operation: 'PutItem', errorRate: 1 });
    faults.add({ service: '*', operation: 'GetObject', errorRate: 1, error: FaultKind.ServerError });
    expect(await faults.decide('dynamodb', 'PutItem')).toEqual({ status: 400, code: 'ThrottlingException', message: 'Rate exceeded' });
    expect(await faults.decide('dynamodb', 'GetItem')).toBeUndefined();
    expect((await faults.decide('s3', 'GetObject'))?.code).toBe('InternalError');
  });

  it('draws the error rate from the given randomness and honours maxErrors', async () => {
    const draws = [0.1, 0.9, 0.2, 0.05];
    const faults = new FaultInjector({ random: () => draws.shift() ?? 0 });
    faults.add({ service: 'states', errorRate: 0.5, maxErrors: 2 });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await faults.decide('states', 'StartExecution'))?.code);
    // 0.1 < 0.5 fails, 0.9 passes, 0.2 fails, then maxErrors is reached.
    expect(codes).toEqual(['ThrottlingException', undefined, 'ThrottlingException', undefined]);
  });

  it('adds latency before answering', async () => {
    const faults = new FaultInjector();
    faults.add({ service: 's3', latencyMs: 120 });
    const started = performance.now();
    expect(await faults.decide('s3', 'PutObject')).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('stop() releases a pending latency at once', async () => {
    const faults = new FaultInjector();
    faults.add({ service: 's3', latencyMs: 60_000, errorRate: 1 });
    const started = performance.now();
    const pending = faults.decide('s3', 'PutObject');
    faults.stop();
    expect(await pending).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('crashes exactly the nth invocation of the named function', () => {
    const faults = new FaultInjector();
    faults.crashNthInvocation(2, 'step');
    const seen = ['other', 'step', 'arn:aws:lambda:us-east-1:000000000000:function:step', 'step'].map((name) => faults.crashInvocation(name));
    expect(seen).toEqual([false, false, true, false]);
    expect(faults.config().lambdaCrashes).toEqual([]);
  });

  it('rejects invalid configurations and keeps the old one', () => {
    const faults = new FaultInjector();
    faults.add({ service: 'dynamodb', errorRate: 1 });
    expect(() => faults.set({ rules: [{ service: 'dynamodb', errorRate: 2 }] })).toThrow(FaultConfigError);
    expect(() => faults.set({ rules: [{ service: 's3', error: 'boom' as never }] })).toThrow(/error must be one of/);
    expect(() => faults.set({ lambdaCrashes: [{ nth: 0 }] })).toThrow(/nth/);
    expect(faults.config().rules).toEqual([{ service: 'dynamodb', errorRate: 1 }]);
  });

  it('renders the error each service really sends', () => {
    expect(faultFor('s3', FaultKind.Throttling)).toMatchObject({ status: 503, code: 'SlowDown' });
    expect(faultFor('lambda', FaultKind.Throttling)).toMatchObject({ status: 429, code: 'TooManyRequestsException' });
    expect(faultFor('dynamodb', FaultKind.ServerError)).toMatchObject({ status: 500, code: 'InternalServerError' });
    expect(faultFor('batch', FaultKind.Unavailable)).toMatchObject({ status: 503, code: 'ServiceUnavailable' });
    expect(faultFor('batch', { status: 409, code: 'Conflict' })).toMatchObject({ status: 409, code: 'Conflict' });
  });
});
