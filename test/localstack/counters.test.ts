import { describe, expect, it } from 'vitest';
import { RequestCounters, diffCounters } from '../../localstack/core/counters.ts';

describe('RequestCounters', () => {
  it('counts per service and operation and sums', () => {
    // Prepare
    const counters = new RequestCounters();
    // Act
    counters.record('dynamodb', 'PutItem');
    counters.record('dynamodb', 'PutItem');
    counters.record('dynamodb', 'GetItem');
    counters.record('s3', 'GetObject');
    // Assess
    expect(counters.get('dynamodb', 'PutItem')).toBe(2);
    expect(counters.get('dynamodb')).toBe(3);
    expect(counters.get('lambda')).toBe(0);
    expect(counters.total()).toBe(4);
    expect(counters.snapshot()).toEqual({ dynamodb: { GetItem: 1, PutItem: 2 }, s3: { GetObject: 1 } });
  });

  it('snapshots are copies, reset forgets, diff keeps only growth', () => {
    const counters = new RequestCounters();
    counters.record('s3', 'PutObject');
    const before = counters.snapshot();
    counters.record('s3', 'PutObject');
    counters.record('states', 'StartExecution');
    expect(before).toEqual({ s3: { PutObject: 1 } });
    expect(diffCounters(before, counters.snapshot())).toEqual({ s3: { PutObject: 1 }, states: { StartExecution: 1 } });
    counters.reset();
    expect(counters.snapshot()).toEqual({});
  });
});
