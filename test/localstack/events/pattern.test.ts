import { describe, expect, it } from 'vitest';
import { InvalidEventPatternError, matchesPattern, parsePattern } from '../../../localstack/events/pattern.ts';

const event = {
  version: '0',
  id: 'e-1',
  'detail-type': 'Batch Job State Change',
  source: 'aws.batch',
  account: '000000000000',
  time: '2026-01-01T00:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:batch:us-east-1:000000000000:job/j-1'],
  detail: { status: 'FAILED', attempts: 3, jobName: 'valence-d1-n4', container: { exitCode: 137 }, tags: ['a', 'b'] },
};
const matches = (pattern: object): boolean => matchesPattern(parsePattern(pattern), event);

describe('EventBridge event patterns', () => {
  it('matches exact-value lists, nested, with any listed value', () => {
    expect(matches({ source: ['aws.batch'], 'detail-type': ['Batch Job State Change'], detail: { status: ['SUCCEEDED', 'FAILED'] } })).toBe(true);
    expect(matches({ source: ['aws.batch'], detail: { status: ['SUCCEEDED'] } })).toBe(false);
    expect(matches({ source: ['aws.braket'] })).toBe(false);
    expect(matches({ detail: { container: { exitCode: [137] } } })).toBe(true);
    expect(matches({ detail: { container: { exitCode: ['137'] } } })).toBe(false);
  });

  it('matches an array field when any element matches', () => {
    expect(matches({ detail: { tags: ['b'] } })).toBe(true);
    expect(matches({ resources: [{ prefix: 'arn:aws:batch:' }] })).toBe(true);
    expect(matches({ detail: { tags: ['c'] } })).toBe(false);
  });

  it('applies content filters', () => {
    expect(matches({ detail: { jobName: [{ prefix: 'valence-' }] } })).toBe(true);
    expect(matches({ detail: { jobName: [{ suffix: '-n5' }] } })).toBe(false);
    expect(matches({ detail: { status: [{ 'anything-but': ['SUCCEEDED', 'RUNNING'] }] } })).toBe(true);
    expect(matches({ detail: { status: [{ 'anything-but': 'FAILED' }] } })).toBe(false);
    expect(matches({ detail: { status: [{ 'anything-but': { prefix: 'FAIL' } }] } })).toBe(false);
    expect(matches({ detail: { attempts: [{ numeric: ['>', 1, '<=', 3] }] } })).toBe(true);
    expect(matches({ detail: { attempts: [{ numeric: ['>', 3] }] } })).toBe(false);
    expect(matches({ detail: { status: [{ 'equals-ignore-case': 'failed' }] } })).toBe(true);
    expect(matches({ detail: { jobName: [{ wildcard: 'valence-*-n4' }] } })).toBe(true);
  });

  it('tells present from absent fields with exists', () => {
    expect(matches({ detail: { statusReason: [{ exists: false }] } })).toBe(true);
    expect(matches({ detail: { statusReason: [{ exists: true }] } })).toBe(false);
    expect(matches({ detail: { status: [{ exists: true }] } })).toBe(true);
    // A missing field matches nothing but exists:false, not even anything-but.
    expect(matches({ detail: { statusReason: [{ 'anything-but': 'x' }] } })).toBe(false);
  });

  it('matches any branch of $or', () => {
    expect(matches({ $or: [{ source: ['aws.braket'] }, { detail: { status: ['FAILED'] } }] })).toBe(true);
    expect(matches({ $or: [{ source: ['aws.braket'] }, { detail: { status: ['RUNNING'] } }] })).toBe(false);
  });

  it('rejects patterns EventBridge rejects', () => {
    expect(() => parsePattern('{not json')).toThrow(InvalidEventPatternError);
    expect(() => parsePattern({ source: 'aws.batch' })).toThrow(/Event pattern is not valid/);
    expect(() => parsePattern({ source: [] })).toThrow(InvalidEventPatternError);
    expect(() => parsePattern({ source: [{ sometimes: true }] })).toThrow(InvalidEventPatternError);
    expect(() => parsePattern({ detail: { n: [{ numeric: ['~', 1] }] } })).toThrow(InvalidEventPatternError);
  });
});
