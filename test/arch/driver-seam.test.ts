// The executor-driver seam: what an executor kind does lives in sdk/runtime/drivers, and
// nothing else in sdk/, lambdas/ or infra/ branches on executor kinds or job kinds.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DriverKind, driverFor, driverForNode } from '../../sdk/runtime/drivers/index.ts';
import { DRIVER_TRAITS } from '../../sdk/runtime/drivers/kinds.ts';
import { BatchExecutor, BraketExecutor, BraketHybridJobExecutor, LambdaExecutor, LocalExecutor, type Executor } from '../../sdk/index.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const DRIVERS = 'sdk/runtime/drivers/';

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

/** Comparisons on an executor's kind or name, or on a stored job kind. */
const KIND_BRANCH = /executor\.kind\s*[!=]==|executor\.name\s*[!=]==|jobKind\s*[!=]==|switch\s*\([^)]*(executor\.kind|jobKind)|case\s+'(lambda|batch|braket|braket-task|braket-job|local|pid|custom|child-dispatch)'/;

describe('the driver seam', () => {
  it('no module outside sdk/runtime/drivers branches on executor or job kinds', () => {
    const offenders = ['sdk', 'lambdas', 'infra']
      .flatMap(sources)
      .filter((file) => !file.startsWith(DRIVERS))
      .flatMap((file) =>
        readFileSync(join(ROOT, file), 'utf8')
          .split('\n')
          .map((line, i) => [file, i + 1, line] as const)
          .filter(([, , line]) => KIND_BRANCH.test(line)),
      )
      .map(([file, line, text]) => `${file}:${line}: ${text.trim()}`);
    expect(offenders).toEqual([]);
  });

  it('the pattern catches the branches it is meant to (control)', () => {
    expect(KIND_BRANCH.test(`if (node.executor.kind !== 'batch') continue;`)).toBe(true);
    expect(KIND_BRANCH.test(`return node.executor.name === 'braket-hybrid' ? a : b;`)).toBe(true);
    expect(KIND_BRANCH.test(`switch (node.jobKind) {`)).toBe(true);
    expect(KIND_BRANCH.test(`  case 'braket-task': {`)).toBe(true);
    expect(KIND_BRANCH.test(`const driver = driverForJob(node);`)).toBe(false);
  });

  it('cancel.ts and completion.ts do not import each other', () => {
    const imports = (file: string): string[] => [...readFileSync(join(ROOT, file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    expect(imports('sdk/runtime/completion.ts')).not.toContain('./cancel.ts');
    expect(imports('sdk/runtime/cancel.ts').some((i) => i.includes('drivers/'))).toBe(true);
  });

  it('picks one driver per kind, and each names its own kind', () => {
    for (const kind of Object.values(DriverKind)) {
      const driver = driverFor(kind);
      expect(driver.kind).toBe(kind);
      expect(driver.usesCallback).toBe(DRIVER_TRAITS[kind].usesCallback);
    }
    const node = (executor: Executor) => ({ kind: 'electron' as const, executor: executor.toJSON() });
    expect(driverForNode(node(new LambdaExecutor())).kind).toBe('inline');
    expect(driverForNode(node(new BatchExecutor({ jobQueue: 'q', vcpus: 1, memoryMiB: 512 }))).kind).toBe('batch');
    expect(driverForNode(node(new BraketExecutor({ deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1', shots: 1 }))).kind).toBe('braket-task');
    expect(driverForNode(node(new BraketHybridJobExecutor({ deviceArn: 'arn:aws:braket:::device/quantum-simulator/amazon/sv1' }))).kind).toBe('braket-job');
    expect(driverForNode(node(new LocalExecutor())).kind).toBe('local');
    expect(driverForNode({ kind: 'sublattice', executor: new LambdaExecutor().toJSON() }).kind).toBe('child-dispatch');
  });

  it('each state-change event is claimed by exactly the driver of its service', async () => {
    const { jobEndFromEvent } = await import('../../sdk/runtime/drivers/index.ts');
    const batch = jobEndFromEvent({ source: 'aws.batch', 'detail-type': 'Batch Job State Change', detail: { jobArn: 'arn:j', status: 'FAILED', statusReason: 'x', container: { exitCode: 3 } } });
    expect(batch).toMatchObject({ handle: 'arn:j', end: { kind: 'failed', reason: 'x (exit code 3)' } });
    expect(batch!.driver.kind).toBe('batch');
    const task = jobEndFromEvent({ source: 'aws.braket', 'detail-type': 'Braket Task State Change', detail: { quantumTaskArn: 'arn:t', status: 'CANCELLED' } });
    expect(task!.driver.kind).toBe('braket-task');
    const job = jobEndFromEvent({ source: 'aws.braket', 'detail-type': 'Braket Job State Change', detail: { jobArn: 'arn:h', status: 'COMPLETED' } });
    expect(job!.driver.kind).toBe('braket-job');
    expect(jobEndFromEvent({ source: 'aws.batch', 'detail-type': 'Batch Job State Change', detail: { jobArn: 'arn:j', status: 'RUNNING' } })).toBeUndefined();
    expect(jobEndFromEvent({ source: 'aws.s3', 'detail-type': 'Object Created', detail: {} })).toBeUndefined();
  });
});
