/**
 * The ARNs and ARN patterns the handlers work with, built from the stack name and never from
 * the state machine objects: the state machines reference the step handler, so a reference
 * back would be a dependency cycle.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { GRAPH_RUNNER_NAME, STATE_MACHINE_NAME_SEPARATOR, stateMachineName } from '../../sdk/contract.ts';
import { allow } from './nag.ts';

/** The tag key valence puts on every job and task it submits (sdk/runtime/drivers/ownership.ts). */
export const STACK_TAG = 'valence:stack';

/** This stack's state machine and execution ARNs, and the service ARN patterns valence's grants name. */
export class StackArns {
  /** `arn:aws:states:{region}:{account}:stateMachine:{stackName}_`: a lattice's ARN is this plus its name. */
  readonly stateMachineArnPrefix: string;
  /** Every state machine of this stack. */
  readonly stateMachines: string;
  /** Every execution of this stack's state machines. */
  readonly executions: string;
  /** The graph runner's ARN. */
  readonly graphRunnerArn: string;
  /** Batch jobs of this account and region (their ARNs are minted at submission). */
  readonly batchJobs: string;
  /** Braket quantum tasks of this account and region. */
  readonly braketTasks: string;
  /** Braket hybrid jobs of this account and region. */
  readonly braketJobs: string;
  /** Braket devices in any region (QPUs are regional, simulators are not). */
  readonly braketDevices: string;
  private readonly stackName: string;

  constructor(stack: Stack) {
    this.stackName = stack.stackName;
    this.stateMachineArnPrefix = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName(this.stackName, ''),
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.stateMachines = `${this.stateMachineArnPrefix}*`;
    this.executions = stack.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachineName(this.stackName, '*')}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.graphRunnerArn = `${this.stateMachineArnPrefix}${GRAPH_RUNNER_NAME}`;
    this.batchJobs = stack.formatArn({ service: 'batch', resource: 'job', resourceName: '*' });
    this.braketTasks = stack.formatArn({ service: 'braket', resource: 'quantum-task', resourceName: '*' });
    this.braketJobs = stack.formatArn({ service: 'braket', resource: 'job', resourceName: '*' });
    this.braketDevices = stack.formatArn({ service: 'braket', resource: 'device', resourceName: '*', region: '*', account: '' });
  }

  /** Allows `actions` on this stack's state machines. */
  grantStateMachines(role: iam.Role, actions: readonly string[]): void {
    allow(role, {
      actions,
      resources: [this.stateMachines],
      wildcardReason: `This stack's state machines only: their names all start with "${stateMachineName(this.stackName, '')}", and no other stack's can, since a stack name cannot hold "${STATE_MACHINE_NAME_SEPARATOR}"`,
    });
  }

  /** Allows `actions` on executions of this stack's state machines. */
  grantExecutions(role: iam.Role, actions: readonly string[]): void {
    allow(role, {
      actions,
      resources: [this.executions],
      wildcardReason: `Executions of this stack's state machines only ("${stateMachineName(this.stackName, '')}" names no other stack's); execution names are dispatch ids, unknown at deploy time`,
    });
  }

  /**
   * Allows `actions` on quantum tasks that carry this stack's `valence:stack` tag (Braket's
   * quantum-task resource supports `aws:ResourceTag`), so a forged handle cannot reach another's task.
   */
  grantBraketTasks(role: iam.Role, actions: readonly string[]): void {
    allow(role, {
      actions,
      resources: [this.braketTasks],
      conditions: this.ownTagged,
      wildcardReason: `Quantum task ARNs are minted by Braket at submission; only tasks tagged ${STACK_TAG}=${this.stackName} (aws:ResourceTag condition)`,
    });
  }

  /** Allows `actions` on hybrid jobs that carry this stack's `valence:stack` tag (Braket's job resource supports `aws:ResourceTag`). */
  grantBraketJobs(role: iam.Role, actions: readonly string[]): void {
    allow(role, {
      actions,
      resources: [this.braketJobs],
      conditions: this.ownTagged,
      wildcardReason: `Hybrid job ARNs are minted by Braket; only jobs tagged ${STACK_TAG}=${this.stackName} (aws:ResourceTag condition)`,
    });
  }

  /** The condition of every statement that acts on an existing job or task: it carries this stack's tag. */
  get ownTagged(): Record<string, Record<string, string>> {
    return { StringEquals: { [`aws:ResourceTag/${STACK_TAG}`]: this.stackName } };
  }

  /** The condition of every statement that creates a job or task: the request tags it with this stack. */
  get tagsOwn(): Record<string, Record<string, string>> {
    return { StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: this.stackName } };
  }
}
