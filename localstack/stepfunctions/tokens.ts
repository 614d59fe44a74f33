/**
 * Task tokens of callback (`.waitForTaskToken`) tasks.
 *
 * A token stays known after its task ends, so that a late `SendTask*` call fails the way AWS
 * fails it (`TaskTimedOut`) instead of looking like garbage (`InvalidToken`).
 */
import { randomBytes } from 'node:crypto';
import { StatesErrorCode, StatesServiceError } from './protocol.ts';

/** What a waiting task does when a `SendTask*` call names its token. */
export interface TaskTokenWaiter {
  succeed(outputJson: string): void;
  fail(error: string | undefined, cause: string | undefined): void;
  heartbeat(): void;
}

interface TokenEntry {
  readonly executionArn: string;
  /** Undefined once the task ended (completed, failed, timed out, or its execution closed). */
  waiter: TaskTokenWaiter | undefined;
}

/** Longest token the API accepts, as on AWS. */
const MAX_TOKEN_LENGTH = 2048;

/** Every token minted by one Step Functions service. */
export class TaskTokenRegistry {
  private readonly entries = new Map<string, TokenEntry>();
  private readonly byExecution = new Map<string, Set<string>>();

  /** Mints an opaque token (AWS tokens are long base64 strings too). */
  mint(executionArn: string, waiter: TaskTokenWaiter): string {
    const token = `AQ${randomBytes(96).toString('base64url')}`;
    this.entries.set(token, { executionArn, waiter });
    let tokens = this.byExecution.get(executionArn);
    if (!tokens) {
      tokens = new Set();
      this.byExecution.set(executionArn, tokens);
    }
    tokens.add(token);
    return token;
  }

  /** Marks a token's task as ended; later `SendTask*` calls get `TaskTimedOut`. */
  end(token: string): void {
    const entry = this.entries.get(token);
    if (entry) entry.waiter = undefined;
  }

  /** Ends every token of an execution (it was stopped, failed or timed out). */
  endExecution(executionArn: string): void {
    for (const token of this.byExecution.get(executionArn) ?? []) this.end(token);
  }

  /** Forgets an execution's tokens entirely (the execution itself is gone). */
  forgetExecution(executionArn: string): void {
    for (const token of this.byExecution.get(executionArn) ?? []) this.entries.delete(token);
    this.byExecution.delete(executionArn);
  }

  /**
   * The waiter of a live token. Unknown or malformed tokens are `InvalidToken`; tokens of
   * ended tasks are `TaskTimedOut`, as AWS answers both.
   */
  waiterFor(token: string): TaskTokenWaiter {
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new StatesServiceError(
        StatesErrorCode.ValidationException,
        `1 validation error detected: Value at 'taskToken' failed to satisfy constraint: Member must have length less than or equal to ${MAX_TOKEN_LENGTH}`,
      );
    }
    const entry = this.entries.get(token);
    if (!entry) throw new StatesServiceError(StatesErrorCode.InvalidToken, "Invalid Token: 'Invalid token'");
    if (!entry.waiter) {
      throw new StatesServiceError(StatesErrorCode.TaskTimedOut, "Task Timed Out: 'Provided task does not exist anymore'");
    }
    return entry.waiter;
  }
}
