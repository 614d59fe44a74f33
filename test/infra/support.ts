// Shared setup of the infra tests: a stack with an Orchestrator, synthesized without bundling
// (NodejsFunction bundling is skipped through 'aws:cdk:bundling-stacks'), in a temp outdir.
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadWorkflows, Orchestrator, type OrchestratorProps, type WorkflowsModule } from '../../infra/orchestrator.ts';

/** The repository root (tests run from it). */
export const REPO = resolve(import.meta.dirname, '..', '..');
/** Two lattices (`infra-fixture-pipeline` with a BatchExecutor node on `research-queue`, `infra-fixture-single`). */
export const FIXTURE_WORKFLOWS = join(REPO, 'test', 'infra', 'fixtures', 'workflows.ts');
export const STACK_NAME = 'test-stack';

const outdirs: string[] = [];

/** The feature flags cdk.json gives the real app, so tests see the template a deploy sees. */
export function cdkJsonContext(): Record<string, unknown> {
  return (JSON.parse(readFileSync(join(REPO, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
}

/**
 * A fresh App that skips bundling and writes to its own temp dir. CDK's built-in
 * CloudFormation validation (≈7 s of CPU per synth) is off unless asked for, as in the app.
 */
export function testApp(options: { readonly cloudFormationValidation?: boolean } = {}): App {
  return new App({
    outdir: testOutdir(),
    builtinCloudFormationValidation: options.cloudFormationValidation ?? false,
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
  });
}

/**
 * A temp outdir for an App, removed by {@link removeTestOutdirs}: an App without one makes a
 * `cdk.out*` in the temp dir that nothing removes.
 */
export function testOutdir(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'valence-infra-test-'));
  outdirs.push(outdir);
  return outdir;
}

/** Removes every temp outdir made so far (call in afterAll). */
export function removeTestOutdirs(): void {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

let fixture: WorkflowsModule | undefined;
/** The fixture workflows module, loaded once. */
export async function fixtureWorkflows(): Promise<WorkflowsModule> {
  return (fixture ??= await loadWorkflows(FIXTURE_WORKFLOWS));
}

/** A synthesized orchestrator stack. */
export interface Synthesized {
  readonly app: App;
  readonly stack: Stack;
  readonly orchestrator: Orchestrator;
  readonly template: Template;
}

/** GIVEN a stack named `test-stack` holding an Orchestrator over the fixture workflows (plus `props`). */
export async function synthesize(
  props: Partial<OrchestratorProps> = {},
  build?: (stack: Stack) => Partial<OrchestratorProps>,
  /** WHEN: changes made after construction, before synthesis (grants). */
  then?: (orchestrator: Orchestrator, stack: Stack) => void,
): Promise<Synthesized> {
  const app = testApp();
  const stack = new Stack(app, STACK_NAME);
  const extra = build ? build(stack) : {};
  const orchestrator = new Orchestrator(stack, 'Orchestrator', { workflows: await fixtureWorkflows(), ...props, ...extra });
  then?.(orchestrator, stack);
  return { app, stack, orchestrator, template: Template.fromStack(stack) };
}

/**
 * Renders a CloudFormation value as a readable string: `Fn::Join` joined, `Ref` as
 * `${Name}`, `Fn::GetAtt` as `${Name.Attr}`, so IAM resources can be compared as text.
 */
export function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(render).join(',');
  if (value && typeof value === 'object') {
    const node = value as Record<string, unknown>;
    if ('Fn::Join' in node) {
      const [delimiter, parts] = node['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(delimiter);
    }
    if ('Fn::Sub' in node) return String(node['Fn::Sub']);
    if ('Ref' in node) return `\${${String(node.Ref)}}`;
    if ('Fn::GetAtt' in node) return `\${${(node['Fn::GetAtt'] as string[]).join('.')}}`;
  }
  return JSON.stringify(value);
}

/** One Allow statement, normalized: sorted actions, rendered resources. */
export interface NormalizedStatement {
  readonly actions: string[];
  readonly resources: string[];
  readonly condition?: unknown;
}

/** Every Allow statement of the policies attached to `role`, normalized. */
export function statementsOf(template: Template, stack: Stack, role: IRole): NormalizedStatement[] {
  const roleRef = JSON.stringify(stack.resolve(role.roleName));
  const policies = template.findResources('AWS::IAM::Policy');
  const statements: NormalizedStatement[] = [];
  for (const policy of Object.values(policies)) {
    const properties = policy.Properties as { Roles: unknown[]; PolicyDocument: { Statement: Record<string, unknown>[] } };
    if (!properties.Roles.some((r) => JSON.stringify(r) === roleRef)) continue;
    for (const statement of properties.PolicyDocument.Statement) {
      if (statement.Effect !== 'Allow') continue;
      const actions = ([] as string[]).concat(statement.Action as string | string[]).sort();
      const resources = ([] as unknown[]).concat(statement.Resource).map(render).sort();
      statements.push({ actions, resources, ...(statement.Condition ? { condition: statement.Condition } : {}) });
    }
  }
  return statements;
}

/** Action → sorted resources, over all statements (for "exactly these permissions" checks). */
export function permissionMap(statements: readonly NormalizedStatement[]): Record<string, string[]> {
  const map: Record<string, Set<string>> = {};
  for (const statement of statements) {
    for (const action of statement.actions) for (const resource of statement.resources) (map[action] ??= new Set()).add(resource);
  }
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => a.localeCompare(b)).map(([action, resources]) => [action, [...resources].sort()]));
}
