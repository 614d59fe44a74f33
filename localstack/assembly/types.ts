/**
 * What an assembly deploy made, as types only: `cloud.ts` names them (a cloud's `assembly`)
 * and `deploy.ts` makes them, and neither may import the other (test/arch/no-cycles.test.ts).
 */
/** A policy document attached to a role, as the template writes it (resolved). */
export interface RolePolicy {
  readonly name: string;
  readonly document: unknown;
}

/** A role of the template, with every identity policy attached to it. */
export interface AssemblyRole {
  readonly logicalId: string;
  readonly arn: string;
  readonly name: string;
  /** Inline policies, `AWS::IAM::Policy` resources attached to the role, managed policies of the template. */
  readonly policies: readonly RolePolicy[];
  /** AWS managed policy ARNs the role names; their documents are not in the template. */
  readonly awsManagedPolicies: readonly string[];
}

/** One API method as the template defines it. */
export interface AssemblyApiMethod {
  readonly apiId: string;
  readonly method: string;
  /** Resource path template, e.g. `/dispatches/{id}/cancel`. */
  readonly path: string;
  /** `NONE`, `AWS_IAM`, `CUSTOM`, `COGNITO_USER_POOLS`. */
  readonly authorizationType: string;
  /** Required request parameters (`method.request.path.id`, …) when the validator checks parameters. */
  readonly requiredParameters: readonly string[];
  /** JSON Schema of the body, when the validator checks the body. */
  readonly bodySchema?: unknown;
}

/** A Lambda function of the template, as registered. */
export interface AssemblyFunction {
  readonly logicalId: string;
  readonly name: string;
  readonly arn: string;
  readonly roleArn: string | undefined;
  /** The staged code folder the function runs from. */
  readonly codeDirectory: string;
}

/** What {@link deployAssembly} created. */
export interface AssemblyDeployment {
  readonly stackName: string;
  /** Stack outputs by key, resolved. */
  readonly outputs: Readonly<Record<string, string>>;
  readonly functions: readonly AssemblyFunction[];
  readonly roles: readonly AssemblyRole[];
  readonly apiMethods: readonly AssemblyApiMethod[];
  /** What `Ref` returns for each resource (a table's or a rule's name, a state machine's ARN). */
  readonly refs: Readonly<Record<string, string>>;
  /** The resolved template (every intrinsic evaluated), for tests and tools. */
  readonly resources: Readonly<Record<string, { readonly Type: string; readonly Properties: Record<string, unknown> }>>;
  /** What was not created, by resource type, with why. */
  readonly skipped: readonly { readonly type: string; readonly logicalIds: readonly string[]; readonly reason: string }[];
  /** Stops what the deploy left running and removes its staging folder. */
  stop(): Promise<void>;
}
