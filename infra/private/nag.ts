/**
 * cdk-nag (AwsSolutions) acknowledgements, each with the reason it is right for valence.
 *
 * cdk-nag 3 reads CDK's own `Validations.of(construct).acknowledge(...)` and wants one
 * acknowledgement per finding, e.g. `AwsSolutions-IAM5[Resource::<Table.Arn>/index/*]`.
 * Wildcards are acknowledged where the statement granting them is written (see
 * {@link allow}), so no wildcard can appear without a reason next to it.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';

/** Acknowledges one AwsSolutions rule on `scope` and everything under it. */
export function acknowledge(scope: IConstruct, rule: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-${rule}`, reason });
}

/** A statement to add to a role: a reason is required as soon as an action or resource holds a `*`. */
export interface AllowStatement {
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  /** Why the wildcard is needed (and how far it reaches). */
  readonly wildcardReason?: string;
  readonly conditions?: Record<string, unknown>;
}

/**
 * Adds an Allow statement to `role` and acknowledges its wildcards (IAM5 findings) with the
 * statement's reason. A wildcard without a reason is a programming error.
 */
export function allow(role: iam.Role, statement: AllowStatement): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: [...statement.actions],
      resources: [...statement.resources],
      ...(statement.conditions ? { conditions: statement.conditions } : {}),
    }),
  );
  const stack = Stack.of(role);
  const findings = [
    ...statement.actions.filter((action) => action.includes('*')).map((action) => `Action::${action}`),
    ...statement.resources.map((resource) => flattenReference(stack.resolve(resource))).filter((r) => r.includes('*')).map((r) => `Resource::${r}`),
  ];
  if (findings.length === 0) return;
  if (!statement.wildcardReason) {
    throw new Error(`Statement ${statement.actions.join(',')} on ${role.node.path} has wildcards (${findings.join(', ')}) but no reason`);
  }
  for (const finding of findings) acknowledge(role, `IAM5[${finding}]`, statement.wildcardReason);
}

/** Acknowledges the IAM5 findings of `resources` (tokens allowed) that a construct's own grant added. */
export function acknowledgeWildcardResources(scope: IConstruct, resources: readonly string[], reason: string): void {
  const stack = Stack.of(scope);
  for (const resource of resources) acknowledge(scope, `IAM5[Resource::${flattenReference(stack.resolve(resource))}]`, reason);
}

/**
 * Flattens a resolved CloudFormation value into cdk-nag's finding syntax: `Fn::Join` joined,
 * `Ref` as `<Name>`, `Fn::GetAtt` as `<Name.Attr>`, `${x}` as `<x>`.
 */
export function flattenReference(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    if (node['Fn::Join']) {
      const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
      return items.map(flattenReference).join(delimiter);
    }
    if (node['Fn::Sub']) return flattenReference(node['Fn::Sub']);
    if (node['Fn::GetAtt']) {
      const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
      return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
    }
    if (node['Fn::ImportValue']) return flattenReference(node['Fn::ImportValue']);
    if (node.Ref) return `<${flattenReference(node.Ref)}>`;
  }
  return JSON.stringify(value);
}
