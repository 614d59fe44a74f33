/**
 * Each handler's permissions, on its own role, every action named: what that handler's code
 * calls and nothing more. The resources come from the parts that own them (storage, jobs,
 * the stack's ARNs), which also carry the reasons for their wildcards.
 */
import { STACK_TAG, type StackArns } from './arns.ts';
import type { Handlers } from './handlers.ts';
import type { Jobs } from './jobs.ts';
import { allow } from './nag.ts';
import { OBJECT_READ, OBJECT_WRITE, type Storage } from './storage.ts';

/** The parts whose resources the handlers act on. */
export interface HandlerResources {
  readonly handlers: Handlers;
  readonly storage: Storage;
  readonly jobs: Jobs;
  readonly arns: StackArns;
}

/** Grants every handler (and the Braket and Batch job roles) what its code calls. */
export function grantHandlerPermissions(resources: HandlerResources): void {
  grantStepHandler(resources);
  grantCancelHandler(resources);
  grantCompletionHandler(resources);
  grantSweeper(resources);
  if (resources.jobs.jobRole) resources.storage.grantData(resources.jobs.jobRole, 'read-write');
}

/** Runs nodes, submits and stops jobs, starts child dispatches, releases waits. */
function grantStepHandler({ handlers, storage, jobs, arns }: HandlerResources): void {
  const role = handlers.step.role;
  storage.grantData(role, 'read-write');
  arns.grantStateMachines(role, ['states:StartExecution', 'states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat']);
  arns.grantExecutions(role, ['states:StopExecution']);
  // A node released from an `await` that also runs it is woken by an asynchronous invocation of this same function.
  allow(role, { actions: ['lambda:InvokeFunction'], resources: [handlers.step.nameArn!] });
  jobs.grantSubmit(role);
  jobs.grantStop(role);
  jobs.grantDescribe(role);
  allow(role, {
    actions: ['braket:CreateQuantumTask'],
    resources: [arns.braketDevices, arns.braketTasks],
    conditions: arns.tagsOwn,
    wildcardReason: 'Electrons name their Braket device (QPUs are regional, simulators are not); the task ARN is minted at creation',
  });
  arns.grantBraketTasks(role, ['braket:GetQuantumTask', 'braket:CancelQuantumTask']);
  // Hybrid jobs: created and (when cancelled mid-submit) stopped by the step handler, as the job role.
  allow(role, {
    actions: ['braket:CreateJob'],
    resources: [arns.braketDevices, arns.braketJobs],
    conditions: arns.tagsOwn,
    wildcardReason: 'Electrons name their Braket device; the hybrid job ARN is minted at creation',
  });
  arns.grantBraketJobs(role, ['braket:CancelJob']);
  // Create calls with tags are also authorized as braket:TagResource on the new resource.
  // Braket has no create-action condition key (Batch's is batch:CreateAction), so the grant
  // requires the resource to carry no stack tag yet: a task or job of another stack (tagged
  // with its own stack) cannot be retagged as this stack's and then stopped.
  allow(role, {
    actions: ['braket:TagResource'],
    resources: [arns.braketTasks, arns.braketJobs],
    conditions: { ...arns.tagsOwn, Null: { [`aws:ResourceTag/${STACK_TAG}`]: 'true' } },
    wildcardReason:
      "Only this stack's valence:stack tag (aws:RequestTag), and only on a task or job that has no valence:stack tag yet (Null aws:ResourceTag), as at creation; ARNs are minted by Braket. Braket has no create-only condition key, so an untagged task or job of another owner could still be tagged by this role",
  });
  allow(role, { actions: ['iam:PassRole'], resources: [handlers.braketJobRole.roleArn], conditions: { StringEquals: { 'iam:PassedToService': 'braket.amazonaws.com' } } });
  storage.grantPayloads(handlers.braketJobRole, [...OBJECT_READ, ...OBJECT_WRITE]);
}

/**
 * Serves the API: dispatches (records a dispatch, starts its execution, presigns and reads
 * argument uploads); flags nodes, stops executions and jobs, releases waits of cancelled nodes' dependents.
 */
function grantCancelHandler({ handlers, storage, jobs, arns }: HandlerResources): void {
  const role = handlers.cancel.role;
  storage.grantTable(role);
  // POST /dispatches: the deployed definition is read (stale-deploy check) and the execution started.
  arns.grantStateMachines(role, ['states:StartExecution', 'states:DescribeStateMachine']);
  storage.grantUploads(role);
  // Reports too large for the request item are stored as payload objects; a quantum task that
  // ended before its cancel landed has its result read and recorded.
  storage.grantPayloads(role, [...OBJECT_READ, 's3:PutObject']);
  // A cancel that outlasts the API's answer carries on in an asynchronous invocation of itself (lambdas/cancel.ts).
  allow(role, { actions: ['lambda:InvokeFunction'], resources: [handlers.cancel.nameArn!] });
  arns.grantExecutions(role, ['states:StopExecution']);
  arns.grantStateMachines(role, ['states:SendTaskSuccess', 'states:SendTaskFailure']);
  jobs.grantStop(role);
  jobs.grantDescribe(role);
  // Get: the ownership check reads a task's or job's tags before stopping it (drivers/ownership.ts).
  arns.grantBraketTasks(role, ['braket:GetQuantumTask', 'braket:CancelQuantumTask']);
  arns.grantBraketJobs(role, ['braket:GetJob', 'braket:CancelJob']);
}

/** Records how a job ended (outputs included) and releases the node's task token. */
function grantCompletionHandler({ handlers, storage, jobs, arns }: HandlerResources): void {
  const role = handlers.completion.role;
  storage.grantData(role, 'read-write');
  arns.grantStateMachines(role, ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat']);
  jobs.grantDescribe(role);
  arns.grantBraketTasks(role, ['braket:GetQuantumTask']);
  arns.grantBraketJobs(role, ['braket:GetJob']);
}

/** The cancel handler's powers, plus finishing what a lost event left waiting (reading jobs, writing outputs, releasing and heartbeating waits). */
function grantSweeper({ handlers, storage, jobs, arns }: HandlerResources): void {
  const role = handlers.sweeper.role;
  storage.grantData(role, 'read-write');
  // Describe: a dispatch whose execution ended on its own (FAILED, TIMED_OUT, ABORTED) is ended by the sweep (sweep.ts).
  arns.grantExecutions(role, ['states:StopExecution', 'states:DescribeExecution']);
  arns.grantStateMachines(role, ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat']);
  jobs.grantStop(role);
  jobs.grantDescribe(role);
  arns.grantBraketTasks(role, ['braket:GetQuantumTask', 'braket:CancelQuantumTask']);
  arns.grantBraketJobs(role, ['braket:GetJob', 'braket:CancelJob']);
}
