/**
 * One Standard state machine per lattice (compiled by the SDK compiler) and the graph runner
 * for sublattices, with their log group and the role that may invoke the step handler.
 */
import { Tags } from 'aws-cdk-lib';
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
 * earlier versions. The role is granted invoking the step handler and nothing else.
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

    const machines: Record<string, sfn.StateMachine> = {};
    for (const lattice of settings.lattices) {
      if (lattice.shape === 'argument') continue;
      const { definition, graphHash } = compileLattice(lattice.lattice, { stepHandlerArn });
      const what = `lattice "${lattice.name}"`;
      const machine = stateMachine(`Lattice-${lattice.name}`, checkedStateMachineName(settings, lattice.name, what), definition, what);
      // The graph hash is also in the definition's Comment; the tag makes stale deploys visible in the console.
      Tags.of(machine).add('valence:lattice', lattice.name);
      Tags.of(machine).add('valence:graph-hash', graphHash);
      machines[lattice.name] = machine;
    }
    this.lattices = machines;
    this.graphRunner = stateMachine('GraphRunner', checkedStateMachineName(settings, GRAPH_RUNNER_NAME, 'the graph runner'), compileGraphRunner({ stepHandlerArn }).definition, 'the graph runner');
  }
}
