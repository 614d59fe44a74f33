import * as cdk from 'aws-cdk-lib/core';
import { Construct } from 'constructs';
import { Orchestrator } from 'valence/cdk';

export class AppStack extends cdk.Stack {
  constructor(scope: Construct, id: string, props?: cdk.StackProps) {
    super(scope, id, props);

    // valence: one state machine per lattice of the workflows module, and what runs them.
    new Orchestrator(this, 'Valence', { workflows: 'src/workflows.ts' });
  }
}
