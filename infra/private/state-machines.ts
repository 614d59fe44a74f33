/**
 * One Standard state machine per lattice (compiled by the SDK compiler) and the graph runner
 * for sublattices, with their log group and the role that may invoke the step handler.
 */
import { ArnFormat, Stack, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { compileGraphRunner, compileLattice } from '../../sdk/compiler/index.ts';
import { GRAPH_RUNNER_NAME, LIMITS } from '../../sdk/contract.ts';
import { OrchestratorValidationCode } from './errors.ts';
import { acknowledgeWildcardResources, allow } from './nag.ts';
import { checkedStateMachineName, type Settings } from './settings.ts';

/** Placeholder for the step handler's ARN in compiled definitions, filled by `DefinitionSubstitutions`. */
const STEP_HANDLER_ARN_SUBSTITUTION = 'StepHandlerArn';

/**
 * The state machines, built into the Orchestrator's own scope (ids `Lattice-{name}`,
 * `GraphRunner`, `StateMachineRole`, `StateMachineLogs`) so their logical ids stay those of
 * earlier versions. The role is granted invoking the step handler, and — for machines with a
 * Distributed Map — starting and stopping their own child executions; nothing else.
 */
export class StateMachines {
  /** One state machine per lattice, by lattice name. */
  readonly lattices: Readonly<Record<string, sfn.StateMachine>>;
  /** The generic state machine that runs sublattices. */
  readonly graphRunner: sfn.StateMachine;

  constructor(scope: Construct, settings: Settings, stepHandler: lambda.IFunction) {
    const { removalPolicy } = settings;
    const logGroup = new logs.LogGroup(scope, 'StateMachineLogs', {
      // The vended-logs prefix keeps Step Functions' log delivery inside the log resource policy's size limit.
      logGroupName: `/aws/vendedlogs/states/${settings.stackName}`,
      retention: settings.logRetention,
      removalPolicy,
    });
    const role = new iam.Role(scope, 'StateMachineRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: 'valence state machines: invoke the step handler',
    });
    allow(role, { actions: ['lambda:InvokeFunction'], resources: [stepHandler.functionArn] });
    // Step Functions' log delivery and X-Ray calls: CDK adds them, and neither supports resource-level permissions.
    acknowledgeWildcardResources(role, ['*'], 'CloudWatch Logs delivery (logs:*LogDelivery, DescribeLogGroups, resource policies) and X-Ray actions support only the * resource');

    const stepHandlerArn = `\${${STEP_HANDLER_ARN_SUBSTITUTION}}`;
    const stateMachine = (id: string, name: string, definition: unknown, what: string): sfn.StateMachine => {
      const body = JSON.stringify(definition);
      if (Buffer.byteLength(body) > LIMITS.definitionBytes) {
        settings.invalid(
          OrchestratorValidationCode.DEFINITION_TOO_LARGE,
          `${what} compiles to a ${Buffer.byteLength(body)}-byte definition; Step Functions allows ${LIMITS.definitionBytes}. Split it with sublattices.`,
        );
      }
      return new sfn.StateMachine(scope, id, {
        stateMachineName: name,
        stateMachineType: sfn.StateMachineType.STANDARD,
        definitionBody: sfn.DefinitionBody.fromString(body),
        definitionSubstitutions: { [STEP_HANDLER_ARN_SUBSTITUTION]: stepHandler.functionArn },
        role,
        logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
        tracingEnabled: true,
        removalPolicy,
      });
    };

    // Machines with a Distributed Map (split lattices, and the graph runner, which splits large
    // graphs) start their partitions as child executions of themselves: Step Functions needs
    // StartExecution on the machine and Describe/StopExecution on its map runs' executions
    // (what CDK grants for a DistributedMap construct; a definition from a string gets none).
    const distributed: string[] = [];
    const noteDistributed = (name: string, definition: unknown): void => {
      if (JSON.stringify(definition).includes('"Mode":"DISTRIBUTED"')) distributed.push(name);
    };

    const machines: Record<string, sfn.StateMachine> = {};
    for (const lattice of settings.lattices) {
      if (lattice.shape === 'argument') continue;
      const { definition, graphHash } = compileLattice(lattice.lattice, { stepHandlerArn, ...(settings.partition === undefined ? {} : { partition: settings.partition }) });
      const what = `lattice "${lattice.name}"`;
      const name = checkedStateMachineName(settings, lattice.name, what);
      noteDistributed(name, definition);
      const machine = stateMachine(`Lattice-${lattice.name}`, name, definition, what);
      // The graph hash is also in the definition's Comment; the tag makes stale deploys visible in the console.
      Tags.of(machine).add('valence:lattice', lattice.name);
      Tags.of(machine).add('valence:graph-hash', graphHash);
      machines[lattice.name] = machine;
    }
    this.lattices = machines;
    const graphRunnerName = checkedStateMachineName(settings, GRAPH_RUNNER_NAME, 'the graph runner');
    const graphRunner = compileGraphRunner({ stepHandlerArn, ...(settings.partition === undefined ? {} : { partition: settings.partition }) }).definition;
    noteDistributed(graphRunnerName, graphRunner);
    this.graphRunner = stateMachine('GraphRunner', graphRunnerName, graphRunner, 'the graph runner');

    // ARNs from names, not from the machines' tokens: the machines depend on this role.
    const stack = Stack.of(scope);
    const arnOf = (resource: 'stateMachine' | 'execution', resourceName: string) => stack.formatArn({ service: 'states', resource, resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    if (distributed.length > 0) {
      allow(role, { actions: ['states:StartExecution'], resources: distributed.map((name) => arnOf('stateMachine', name)) });
      allow(role, {
        actions: ['states:DescribeExecution', 'states:StopExecution'],
        resources: distributed.map((name) => arnOf('execution', `${name}/*`)),
        wildcardReason: "A Distributed Map's child executions are named by Step Functions at run time (execution:<machine>/<map label>:<id>); the pattern is this machine's own map runs only",
      });
    }
  }
}
