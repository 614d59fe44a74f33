/**
 * The CDK app `cdk.json` runs: one stack holding one {@link Orchestrator}.
 *
 * The workflows module is `examples/index.ts` unless `-c workflows=./my-workflows.ts` or the
 * `VALENCE_WORKFLOWS` environment variable names another; the stack name is `valence` unless
 * `-c stackName=...` says otherwise. The module is loaded as written (the app runs under tsx).
 *
 * @example npx cdk deploy -c workflows=./my-workflows.ts -c stackName=my-valence
 * @module
 */
import { App, Stack } from 'aws-cdk-lib';
import { resolve } from 'node:path';
import { loadWorkflows, Orchestrator } from './orchestrator.ts';
import { VALENCE_ROOT } from './private/workflows.ts';
import { ENV } from '../sdk/contract.ts';

/** Workflows module deployed when neither context nor environment names one. */
const DEFAULT_WORKFLOWS = 'examples/index.ts';
/** Stack name used when the context names none. */
const DEFAULT_STACK_NAME = 'valence';

// CDK's built-in CloudFormation validation costs ≈7 s of CPU per synth (a WebAssembly rule
// engine) and would push `cdk synth` past its 10 s budget; the tests run it once on the same
// template. `CDK_VALIDATION=true npx cdk synth` turns it on here.
const app = new App({ builtinCloudFormationValidation: process.env.CDK_VALIDATION === 'true' });
const fromContext = app.node.tryGetContext('workflows') as string | undefined;
const workflowsPath = fromContext ?? process.env[ENV.workflows] ?? resolve(VALENCE_ROOT, DEFAULT_WORKFLOWS);
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? DEFAULT_STACK_NAME;

const workflows = await loadWorkflows(resolve(workflowsPath));
// Environment-agnostic on purpose: a stack bound to an account would look up its availability
// zones at synth time, and synth must work offline.
const stack = new Stack(app, stackName, { stackName, description: 'valence: serverless workflow orchestrator with cancellation you can trust' });
new Orchestrator(stack, 'Orchestrator', { workflows });
app.synth();
