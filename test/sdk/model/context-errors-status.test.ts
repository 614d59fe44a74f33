// Covers sdk/model/context.ts, sdk/errors.ts and sdk/status.ts.
import { describe, expect, it } from 'vitest';
import * as publicApi from '../../../sdk/index.ts';
import {
  DispatchStatus,
  NodeStatus,
  TERMINAL_NODE_STATUSES,
  TaskCancelledError,
  ValenceError,
  ValidationCode,
  ValidationError,
  isCancellation,
  isTerminalDispatchStatus,
  isTerminalNodeStatus,
  taskContext,
} from '../../../sdk/index.ts';
import { NO_TASK_CONTEXT, runWithTaskContext } from '../../../sdk/model/index.ts';

describe('taskContext', () => {
  it('is unavailable outside a running electron', () => {
    expect(() => taskContext()).toThrow(expect.objectContaining({ code: NO_TASK_CONTEXT, name: 'ValenceError' }));
  });

  it('follows the electron across awaits, and contexts do not leak into each other', async () => {
    const read = async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const { dispatchId, nodeId, attempt, signal } = taskContext();
      return { dispatchId, nodeId, attempt, aborted: signal.aborted };
    };
    const controller = new AbortController();
    controller.abort(new TaskCancelledError());
    const [first, second] = await Promise.all([
      runWithTaskContext({ dispatchId: 'd1', nodeId: 1, attempt: 1, signal: new AbortController().signal }, read),
      runWithTaskContext({ dispatchId: 'd2', nodeId: 7, attempt: 2, signal: controller.signal }, read),
    ]);
    expect(first).toEqual({ dispatchId: 'd1', nodeId: 1, attempt: 1, aborted: false });
    expect(second).toEqual({ dispatchId: 'd2', nodeId: 7, attempt: 2, aborted: true });
  });

  it('keeps runWithTaskContext out of the public entry', () => {
    expect(publicApi).not.toHaveProperty('runWithTaskContext');
    expect(publicApi).toHaveProperty('taskContext');
  });
});

describe('errors', () => {
  it('carry explicit names, stable codes and causes', () => {
    const cause = new Error('root');
    const validation = new ValidationError(ValidationCode.INVALID_NAME, 'bad', { lattice: 'l', nodeId: 2, cause });
    expect(validation).toBeInstanceOf(ValenceError);
    expect(validation).toMatchObject({ name: 'ValidationError', code: 'VALIDATION_INVALID_NAME', lattice: 'l', nodeId: 2, cause });
    const cancelled = new TaskCancelledError('stop', { dispatchId: 'd', nodeId: 3, reason: 'user' });
    expect(cancelled).toMatchObject({ name: 'TaskCancelledError', code: 'TASK_CANCELLED', dispatchId: 'd', nodeId: 3, reason: 'user' });
    expect(String(cancelled)).toBe('TaskCancelledError: stop');
    expect(new ValenceError('X', 'y')).not.toHaveProperty('cause');
  });

  it('has unique, prefixed validation codes', () => {
    const codes = Object.values(ValidationCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^VALIDATION_[A-Z_]+$/);
  });

  it('recognise cancellation directly, wrapped, aggregated, and as plain data', () => {
    const cancelled = new TaskCancelledError();
    expect(isCancellation(cancelled)).toBe(true);
    expect(isCancellation(new Error('outer', { cause: new Error('middle', { cause: cancelled }) }))).toBe(true);
    expect(isCancellation(new AggregateError([new Error('x'), cancelled]))).toBe(true);
    expect(isCancellation(structuredClone({ name: cancelled.name, message: cancelled.message }))).toBe(true);
    expect(isCancellation({ errorType: 'TaskCancelledError', errorMessage: 'from Lambda' })).toBe(true);
    expect(isCancellation({ Error: 'TaskCancelledError', Cause: '...' })).toBe(true);
    expect(isCancellation({ message: 'x', cause: { code: 'TASK_CANCELLED' } })).toBe(true);
  });

  it('do not mistake other failures for cancellation, and survive cycles', () => {
    expect(isCancellation(new Error('boom'))).toBe(false);
    expect(isCancellation(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isCancellation(undefined)).toBe(false);
    expect(isCancellation('TaskCancelledError')).toBe(false);
    const cyclic: { cause?: unknown } = {};
    cyclic.cause = cyclic;
    expect(isCancellation(cyclic)).toBe(false);
  });
});

describe('statuses', () => {
  it('define the terminal sets once', () => {
    expect([...TERMINAL_NODE_STATUSES].sort()).toEqual(['CANCELLED', 'COMPLETED', 'FAILED']);
    expect(Object.values(NodeStatus).filter(isTerminalNodeStatus).sort()).toEqual(['CANCELLED', 'COMPLETED', 'FAILED']);
    expect(isTerminalNodeStatus(NodeStatus.NEW_OBJECT)).toBe(false);
    expect(isTerminalNodeStatus(NodeStatus.RUNNING)).toBe(false);
    expect(isTerminalDispatchStatus(DispatchStatus.RUNNING)).toBe(false);
    expect(isTerminalDispatchStatus(DispatchStatus.CANCELLED)).toBe(true);
    expect(isTerminalNodeStatus('PENDING')).toBe(false);
  });
});
