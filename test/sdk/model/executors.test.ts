import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  BatchExecutor,
  BraketExecutor,
  BraketHybridJobExecutor,
  CustomExecutor,
  Executor,
  LambdaExecutor,
  LatticeRegistry,
  LocalExecutor,
  ValidationCode,
  ValidationError,
  electron,
  lattice,
} from '../../../sdk/index.ts';
import type { CustomTask, ExecutorJSON, TaskMetadata } from '../../../sdk/index.ts';
import { usesCallback } from '../../../sdk/runtime/drivers/kinds.ts';

function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const electronNode = (executor: Executor) => ({ kind: 'electron' as const, executor: executor.toJSON() });

/** True while a process with this id exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

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

  it('say through their driver which need a callback', () => {
    expect(usesCallback(electronNode(new LambdaExecutor()))).toBe(false);
    expect(usesCallback(electronNode(new BatchExecutor(batchOptions)))).toBe(true);
    expect(usesCallback(electronNode(new BraketExecutor(braketOptions)))).toBe(true);
    expect(usesCallback(electronNode(new BraketHybridJobExecutor({ deviceArn: braketOptions.deviceArn })))).toBe(true);
    expect(usesCallback(electronNode(new LocalExecutor()))).toBe(true);
  });

  it('rebuild from their JSON', () => {
    for (const executor of [new LambdaExecutor(), new LocalExecutor(), new BatchExecutor(batchOptions), new BraketExecutor(braketOptions)]) {
      const rebuilt = Executor.fromJSON(JSON.parse(JSON.stringify(executor)) as ExecutorJSON);
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

  it('cancel through their driver: LocalExecutor stops the process group its handle names', async () => {
    // GIVEN a process group that would live for a minute
    const child = spawn('/bin/sh', ['-c', 'sleep 60 & sleep 60; wait'], { detached: true, stdio: 'ignore' });
    const pid = child.pid!;
    await sleep(100);
    expect(alive(pid)).toBe(true);
    // WHEN the executor is asked to cancel it
    const stopped = await new LocalExecutor().cancel({ dispatchId: 'd', nodeId: 1 }, `pid:${pid}`);
    // THEN it is gone, and a second cancel finds nothing left to stop
    expect(stopped).toBe(true);
    await new Promise((resolve) => child.once('exit', resolve));
    expect(alive(pid)).toBe(false);
    for (let i = 0; i < 100 && groupExists(pid); i++) await sleep(20);
    expect(groupExists(pid)).toBe(false);
    await expect(new LocalExecutor().cancel({ dispatchId: 'd', nodeId: 1 }, `pid:${pid}`)).resolves.toBe(false);
  });

  it('LambdaExecutor.cancel resolves false: no handle names an inline electron, its cancel flag stops it', async () => {
    await expect(new LambdaExecutor().cancel({ dispatchId: 'd', nodeId: 1 }, 'anything')).resolves.toBe(false);
  });
});

describe('custom executors', () => {
  class SlurmExecutor extends CustomExecutor<{ partition: string; nodes?: number }> {
    static override readonly executorName = 'test-slurm';
    readonly cancelled: string[] = [];
    override run(task: CustomTask): Promise<unknown> {
      return Promise.resolve(task.electron(...task.args));
    }
    override cancel(taskMetadata: TaskMetadata, jobHandle: string): Promise<boolean> {
      this.cancelled.push(`${taskMetadata.dispatchId}/${taskMetadata.nodeId}:${jobHandle}`);
      return Promise.resolve(true);
    }
  }

  it('are registered by name on first construction and rebuilt from graph metadata', async () => {
    const slurm = new SlurmExecutor({ partition: 'gpu', nodes: 2 });
    expect(slurm.kind).toBe('custom');
    expect(usesCallback(electronNode(slurm))).toBe(true);
    const job = electron({ executor: slurm }, function job() {
      return 1;
    });
    const graph = lattice({ name: 'custom-executor', registry: new LatticeRegistry() }, () => job()).template();
    const json = (JSON.parse(JSON.stringify(graph)) as { nodes: { executor: ExecutorJSON }[] }).nodes[0]!.executor;
    expect(json).toEqual({ kind: 'custom', name: 'test-slurm', options: { partition: 'gpu', nodes: 2 } });
    const rebuilt = Executor.fromJSON(json);
    expect(rebuilt).toBeInstanceOf(SlurmExecutor);
    expect(rebuilt).toBeInstanceOf(CustomExecutor);
    await expect(rebuilt.cancel({ dispatchId: 'd1', nodeId: 4 }, 'job-17')).resolves.toBe(true);
    expect((rebuilt as SlurmExecutor).cancelled).toEqual(['d1/4:job-17']);
  });

  it('can be registered explicitly, idempotently', () => {
    class PbsExecutor extends Executor {
      static override readonly executorName = 'test-pbs';
      override cancel(): Promise<boolean> {
        return Promise.resolve(false);
      }
    }
    Executor.register(PbsExecutor);
    Executor.register(PbsExecutor);
    expect(Executor.lookup('test-pbs')).toBe(PbsExecutor);
  });

  it('refuses a second class under a taken name, and a missing name', () => {
    class Impostor extends Executor {
      static override readonly executorName = 'batch';
      override cancel(): Promise<boolean> {
        return Promise.resolve(false);
      }
    }
    expect(validationError(() => new Impostor({})).code).toBe(ValidationCode.DUPLICATE_EXECUTOR);
    class Nameless extends Executor {
      override cancel(): Promise<boolean> {
        return Promise.resolve(false);
      }
    }
    expect(validationError(() => new Nameless({})).code).toBe(ValidationCode.INVALID_NAME);
  });

  it('refuses options that are not JSON data', () => {
    class Fussy extends Executor<Record<string, never>> {
      static override readonly executorName = 'test-fussy';
      override cancel(): Promise<boolean> {
        return Promise.resolve(false);
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
