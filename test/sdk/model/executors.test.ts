import { describe, expect, it } from 'vitest';
import {
  BatchExecutor,
  BraketExecutor,
  Executor,
  LambdaExecutor,
  LatticeRegistry,
  LocalExecutor,
  ValidationCode,
  ValidationError,
  electron,
  lattice,
} from '../../../sdk/index.ts';
import type { TaskMetadata } from '../../../sdk/index.ts';
import { EXECUTOR_RUNTIME_MISSING } from '../../../sdk/model/index.ts';

function validationError(act: () => unknown): ValidationError {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

const batchOptions = { jobQueue: 'gpu-queue', vcpus: 4, memoryMiB: 8192 };
const braketOptions = { deviceArn: 'arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1', shots: 1000 };

describe('built-in executors', () => {
  it('serialize kind, registry name and options', () => {
    expect(new LambdaExecutor().toJSON()).toEqual({ kind: 'lambda', name: 'lambda', options: {} });
    expect(new LocalExecutor().toJSON()).toEqual({ kind: 'local', name: 'local', options: {} });
    expect(new BatchExecutor({ ...batchOptions, jobDefinition: 'runner:3', gpus: 1 }).toJSON()).toEqual({
      kind: 'batch',
      name: 'batch',
      options: { ...batchOptions, jobDefinition: 'runner:3', gpus: 1 },
    });
    expect(new BraketExecutor(braketOptions).toJSON()).toEqual({ kind: 'braket', name: 'braket', options: braketOptions });
  });

  it('say which need a callback', () => {
    expect(new LambdaExecutor().usesCallback).toBe(false);
    expect(new BatchExecutor(batchOptions).usesCallback).toBe(true);
    expect(new BraketExecutor(braketOptions).usesCallback).toBe(true);
    expect(new LocalExecutor().usesCallback).toBe(true);
  });

  it('rebuild from their JSON', () => {
    for (const executor of [new LambdaExecutor(), new LocalExecutor(), new BatchExecutor(batchOptions), new BraketExecutor(braketOptions)]) {
      const rebuilt = Executor.fromJSON(JSON.parse(JSON.stringify(executor)));
      expect(rebuilt).toBeInstanceOf(executor.constructor);
      expect(rebuilt.toJSON()).toEqual(executor.toJSON());
    }
  });

  it.each([
    [{ ...batchOptions, jobQueue: '' }, 'jobQueue'],
    [{ ...batchOptions, jobQueue: undefined }, 'jobQueue'],
    [{ ...batchOptions, vcpus: 0 }, 'vcpus'],
    [{ ...batchOptions, vcpus: Number.NaN }, 'vcpus'],
    [{ ...batchOptions, memoryMiB: 1.5 }, 'memoryMiB'],
    [{ ...batchOptions, memoryMiB: 2 }, 'memoryMiB'],
    [{ ...batchOptions, gpus: -1 }, 'gpus'],
    [{ ...batchOptions, jobDefinition: 7 }, 'jobDefinition'],
  ])('BatchExecutor refuses %j, naming %s', (options, option) => {
    const error = validationError(() => new BatchExecutor(options as never));
    expect(error.code).toBe(ValidationCode.INVALID_OPTION);
    expect(error.message).toContain(`BatchExecutor: option "${option}"`);
  });

  it.each([
    [{ ...braketOptions, deviceArn: 'sv1' }, 'deviceArn'],
    [{ ...braketOptions, deviceArn: 'arn:aws:s3:::bucket' }, 'deviceArn'],
    [{ ...braketOptions, shots: -1 }, 'shots'],
    [{ ...braketOptions, shots: 100_001 }, 'shots'],
    [{ ...braketOptions, shots: 2.5 }, 'shots'],
  ])('BraketExecutor refuses %j, naming %s', (options, option) => {
    const error = validationError(() => new BraketExecutor(options));
    expect(error.code).toBe(ValidationCode.INVALID_OPTION);
    expect(error.message).toContain(`BraketExecutor: option "${option}"`);
  });

  it('leave cancelling to the runtime until it is loaded', async () => {
    await expect(new BatchExecutor(batchOptions).cancel({ dispatchId: 'd', nodeId: 1 }, 'arn:job')).rejects.toMatchObject({
      code: EXECUTOR_RUNTIME_MISSING,
    });
  });
});

describe('custom executors', () => {
  class SlurmExecutor extends Executor<{ partition: string; nodes?: number }> {
    static override readonly executorName = 'test-slurm';
    readonly cancelled: string[] = [];
    override async cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
      this.cancelled.push(`${taskMetadata.dispatchId}/${taskMetadata.nodeId}:${jobHandle}`);
      return true;
    }
  }

  it('are registered by name on first construction and rebuilt from graph metadata', async () => {
    const slurm = new SlurmExecutor({ partition: 'gpu', nodes: 2 });
    expect(slurm.kind).toBe('custom');
    expect(slurm.usesCallback).toBe(true);
    const job = electron({ executor: slurm }, function job() {
      return 1;
    });
    const graph = lattice({ name: 'custom-executor', registry: new LatticeRegistry() }, () => job()).template();
    const json = JSON.parse(JSON.stringify(graph)).nodes[0].executor;
    expect(json).toEqual({ kind: 'custom', name: 'test-slurm', options: { partition: 'gpu', nodes: 2 } });
    const rebuilt = Executor.fromJSON(json);
    expect(rebuilt).toBeInstanceOf(SlurmExecutor);
    await expect(rebuilt.cancel({ dispatchId: 'd1', nodeId: 4 }, 'job-17')).resolves.toBe(true);
    expect((rebuilt as SlurmExecutor).cancelled).toEqual(['d1/4:job-17']);
  });

  it('can be registered explicitly, idempotently', () => {
    class PbsExecutor extends Executor {
      static override readonly executorName = 'test-pbs';
      override async cancel(): Promise<boolean> {
        return false;
      }
    }
    Executor.register(PbsExecutor);
    Executor.register(PbsExecutor);
    expect(Executor.lookup('test-pbs')).toBe(PbsExecutor);
  });

  it('refuses a second class under a taken name, and a missing name', () => {
    class Impostor extends Executor {
      static override readonly executorName = 'batch';
      override async cancel(): Promise<boolean> {
        return false;
      }
    }
    expect(validationError(() => new Impostor({})).code).toBe(ValidationCode.DUPLICATE_EXECUTOR);
    class Nameless extends Executor {
      override async cancel(): Promise<boolean> {
        return false;
      }
    }
    expect(validationError(() => new Nameless({})).code).toBe(ValidationCode.INVALID_NAME);
  });

  it('refuses options that are not JSON data', () => {
    class Fussy extends Executor<Record<string, never>> {
      static override readonly executorName = 'test-fussy';
      override async cancel(): Promise<boolean> {
        return false;
      }
    }
    const error = validationError(() => new Fussy({ when: new Date() } as never));
    expect(error.code).toBe(ValidationCode.INVALID_OPTION);
    expect(error.message).toContain('options.when');
  });

  it('reports an unknown executor name', () => {
    const error = validationError(() => Executor.fromJSON({ kind: 'custom', name: 'never-registered', options: {} }));
    expect(error.code).toBe(ValidationCode.UNKNOWN_EXECUTOR);
  });
});
