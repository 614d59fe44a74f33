/**
 * The local cloud's cloud-assembly mode: deploy what `cdk synth` wrote (`cdk.out`) — the
 * templates' resources, the bundled handlers, the roles — instead of valence's own deploy.
 *
 * @example
 * ```ts
 * const cloud = await startLocalCloud({ port: 0, assembly: 'cdk.out' });
 * ```
 * @module
 */
export { deployAssembly, describeSkipped, resolveTemplate, rolesOf, stageThrottlingByApi } from './deploy.ts';
export type { AssemblyApiMethod, AssemblyDeployOptions, AssemblyDeployment, AssemblyFunction, AssemblyRole, ResolvedTemplate, RolePolicy } from './deploy.ts';
export { readCloudAssembly, CloudAssemblyError } from './manifest.ts';
export type { AssemblyStack, CloudAssembly, CloudFormationTemplate, FileAsset, ImageAsset, TemplateResource } from './manifest.ts';
export { IntrinsicError, evaluateCondition, resolveIntrinsics } from './intrinsics.ts';
export type { IntrinsicScope } from './intrinsics.ts';
