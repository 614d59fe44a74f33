// Unit tests aimed at the executor validation's boundaries and branches, which a mutation run
// (npm run mutation, bench/mutation.ts) showed the other model tests leave unchecked: each
// range bound on both sides, each optional option present and absent, and every kind of value
// executor options refuse.
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../sdk/errors.ts';
import { BatchExecutor, BraketExecutor, BraketHybridJobExecutor, Executor, LambdaExecutor, LocalExecutor, type TaskMetadata } from '../../../sdk/model/executors.ts';

const SV1 = 'arn:aws:braket:::device/quantum-simulator/amazon/sv1';
const batch = (over: Record<string, unknown>) => () => new BatchExecutor({ jobQueue: 'q', vcpus: 1, memoryMiB: 512, ...over });
const refusedOption = (make: () => unknown, option: string) => expect(make).toThrow(new RegExp(`option "${option}" must be`));

describe('BatchExecutor option bounds', () => {
  it('accepts each bound and refuses one step past it', () => {
    expect(batch({ vcpus: 256 })().options.vcpus).toBe(256);
    expect(batch({ vcpus: 0.25 })().options.vcpus).toBe(0.25);
    refusedOption(batch({ vcpus: 0 }), 'vcpus');
    refusedOption(batch({ vcpus: 256.5 }), 'vcpus');
    refusedOption(batch({ vcpus: Infinity }), 'vcpus');
    refusedOption(batch({ vcpus: '1' }), 'vcpus');
    expect(batch({ memoryMiB: 4 })().options.memoryMiB).toBe(4);
    expect(batch({ memoryMiB: 4_194_304 })().options.memoryMiB).toBe(4_194_304);
    refusedOption(batch({ memoryMiB: 3 }), 'memoryMiB');
    refusedOption(batch({ memoryMiB: 4_194_305 }), 'memoryMiB');
    refusedOption(batch({ memoryMiB: 512.5 }), 'memoryMiB');
    refusedOption(batch({ memoryMiB: '512' }), 'memoryMiB');
    expect(batch({ gpus: 0 })().options.gpus).toBe(0);
    expect(batch({ gpus: 64 })().options.gpus).toBe(64);
    refusedOption(batch({ gpus: -1 }), 'gpus');
    refusedOption(batch({ gpus: 65 }), 'gpus');
  });

  it('keeps optional options only when given, and refuses blank strings', () => {
    const plain = batch({})();
    expect(plain.options).toEqual({ jobQueue: 'q', vcpus: 1, memoryMiB: 512 });
    expect('jobDefinition' in plain.options).toBe(false);
    expect('gpus' in plain.options).toBe(false);
    expect(batch({ jobDefinition: 'def', gpus: 2 })().options).toEqual({ jobQueue: 'q', jobDefinition: 'def', vcpus: 1, memoryMiB: 512, gpus: 2 });
    refusedOption(batch({ jobQueue: '   ' }), 'jobQueue');
    refusedOption(batch({ jobQueue: 7 }), 'jobQueue');
    refusedOption(batch({ jobDefinition: '' }), 'jobDefinition');
    refusedOption(() => new BatchExecutor(null as never), 'options');
    refusedOption(() => new BatchExecutor('q' as never), 'options');
  });

  it('names the value it refused in the message', () => {
    expect(batch({ vcpus: 0 })).toThrow('got 0');
    expect(batch({ jobQueue: '' })).toThrow('got ""');
    expect(batch({ memoryMiB: null })).toThrow('got null');
    expect(batch({ memoryMiB: undefined })).toThrow('got undefined');
    expect(batch({ memoryMiB: true })).toThrow('got true');
    expect(batch({ memoryMiB: {} })).toThrow('got object');
  });
});

describe('BraketExecutor and BraketHybridJobExecutor options', () => {
  it('bounds shots on both sides', () => {
    expect(new BraketExecutor({ deviceArn: SV1, shots: 0 }).options.shots).toBe(0);
    expect(new BraketExecutor({ deviceArn: SV1, shots: 100_000 }).options.shots).toBe(100_000);
    refusedOption(() => new BraketExecutor({ deviceArn: SV1, shots: -1 }), 'shots');
    refusedOption(() => new BraketExecutor({ deviceArn: SV1, shots: 100_001 }), 'shots');
  });

  it('takes device ARNs with and without an account, and refuses others', () => {
    expect(new BraketExecutor({ deviceArn: 'arn:aws:braket:us-east-1:123456789012:device/qpu/ionq/Aria-1', shots: 1 }).kind).toBe('braket');
    for (const deviceArn of ['arn:aws:s3:::device/x', 'device/quantum-simulator', `${SV1} `, `x${SV1}`, 'arn:aws:braket:::device/']) {
      refusedOption(() => new BraketExecutor({ deviceArn, shots: 1 }), 'deviceArn');
      refusedOption(() => new BraketHybridJobExecutor({ deviceArn }), 'deviceArn');
    }
    refusedOption(() => new BraketExecutor(null as never), 'options');
    refusedOption(() => new BraketHybridJobExecutor(undefined as never), 'options');
  });

  it('keeps the hybrid job options given, and only those', () => {
    expect(new BraketHybridJobExecutor({ deviceArn: SV1 }).options).toEqual({ deviceArn: SV1 });
    expect(new BraketHybridJobExecutor({ deviceArn: SV1, roleArn: 'r', instanceType: 'ml.m5.large' }).options).toEqual({ deviceArn: SV1, roleArn: 'r', instanceType: 'ml.m5.large' });
    refusedOption(() => new BraketHybridJobExecutor({ deviceArn: SV1, roleArn: ' ' }), 'roleArn');
    refusedOption(() => new BraketHybridJobExecutor({ deviceArn: SV1, instanceType: '' }), 'instanceType');
  });

  it('reports each built-in kind', () => {
    expect([new LambdaExecutor().kind, batch({})().kind, new BraketHybridJobExecutor({ deviceArn: SV1 }).kind, new LocalExecutor().kind]).toEqual(['lambda', 'batch', 'braket', 'local']);
  });
});

class Probe extends Executor {
  static override readonly executorName: string = 'mutants-probe';
  override cancel(_t: TaskMetadata, _h: string): Promise<boolean> {
    return Promise.resolve(false);
  }
}

describe('executor options are plain JSON data', () => {
  it('accepts nested plain data, null prototypes and undefined members, frozen and copied', () => {
    const source = { list: [1, 'a', true, null, [2]], nested: { deep: { n: 0.5 } }, skipped: undefined, bare: Object.assign(Object.create(null) as object, { k: 1 }) };
    const probe = new Probe(source);
    expect(Object.isFrozen(probe.options)).toBe(true);
    source.list.push(9);
    expect(probe.options['list']).toEqual([1, 'a', true, null, [2]]);
    expect(probe.toJSON()).toMatchObject({ kind: 'custom', name: 'mutants-probe' });
  });

  it.each([
    [{ n: NaN }, 'options.n is not a finite number'],
    [{ n: -Infinity }, 'options.n is not a finite number'],
    [{ list: [1, [2, () => 3]] }, 'options.list[1][1] is a function'],
    [{ when: new Date(0) }, 'options.when is not a plain object'],
    [{ a: { b: new Map() } }, 'options.a.b is not a plain object'],
    [{ big: 1n }, 'options.big is a bigint'],
    [{ list: [Symbol('s')] }, 'options.list[0] is a symbol'],
  ])('refuses %o: %s', (options, problem) => {
    const make = () => new Probe(options as never);
    expect(make).toThrow(ValidationError);
    expect(make).toThrow(`Probe: ${problem}; executor options must be plain JSON data`);
  });

  it('refuses a second class under a taken name, an invalid name, and an unknown name', () => {
    class Twin extends Probe {}
    Executor.register(Probe);
    expect(() => new Twin({})).toThrow(/already registered by class Probe/);
    class Nameless extends Executor {
      override cancel(): Promise<boolean> {
        return Promise.resolve(true);
      }
    }
    expect(() => new Nameless({})).toThrow(/needs a static executorName/);
    class TooLong extends Probe {
      static override readonly executorName: string = 'x'.repeat(65);
    }
    expect(() => new TooLong({})).toThrow(/needs a static executorName/);
    expect(Executor.lookup('mutants-probe')).toBe(Probe);
    expect(() => Executor.fromJSON({ kind: 'custom', name: 'no-such-executor', options: {} })).toThrow(/no executor class is registered as "no-such-executor"/);
    const back = Executor.fromJSON(new Probe({ a: 1 }).toJSON());
    expect(back).toBeInstanceOf(Probe);
    expect(back.options).toEqual({ a: 1 });
  });
});
