/**
 * The construct's validation error: what cannot be deployed, found at synth time.
 */
import { ErrorCode, ValenceError } from '../../sdk/errors.ts';

/** What exactly {@link OrchestratorValidationError} found wrong (its `reason`). */
export const OrchestratorValidationCode = {
  /** The workflows module exports no lattice. */
  NO_LATTICES: 'INFRA_NO_LATTICES',
  /** A state machine name would be longer than 80 characters, or has characters Step Functions rejects. */
  INVALID_STATE_MACHINE_NAME: 'INFRA_INVALID_STATE_MACHINE_NAME',
  /** Two different lattices share a name (their state machines would collide). */
  DUPLICATE_LATTICE: 'INFRA_DUPLICATE_LATTICE',
  /** A compiled definition exceeds Step Functions' 1 MiB limit. */
  DEFINITION_TOO_LARGE: 'INFRA_DEFINITION_TOO_LARGE',
  /** A prop is out of range or contradicts another prop. */
  INVALID_PROP: 'INFRA_INVALID_PROP',
} as const;
/** One of {@link OrchestratorValidationCode}. */
export type OrchestratorValidationCode = (typeof OrchestratorValidationCode)[keyof typeof OrchestratorValidationCode];

/**
 * Thrown by the `Orchestrator` constructor when props or the workflows module cannot be
 * deployed. `code` is always `ORCHESTRATOR_INVALID_PROPS` (one {@link ErrorCode} for every
 * such refusal); `reason` says which check failed.
 */
export class OrchestratorValidationError extends ValenceError {
  override readonly name = 'OrchestratorValidationError';
  constructor(
    /** Which check failed. */
    readonly reason: OrchestratorValidationCode,
    message: string,
    /** Path of the construct that rejected its props. */
    readonly constructPath: string,
  ) {
    super(ErrorCode.ORCHESTRATOR_INVALID_PROPS, `${constructPath}: ${message}`);
  }
}
