/**
 * The dispatch, cancel and status API on the API handler (the cancel handler's function):
 * `POST /dispatches`, `POST /uploads`, `GET /dispatches/{id}`, `POST /dispatches/{id}/cancel`
 * and `GET /dispatches/{id}/cancels/{requestId}`, IAM-authorized, with request bodies validated
 * before they reach the handler.
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { API } from '../../sdk/contract.ts';
import { acknowledge } from './nag.ts';

/** Props of {@link CancelApi}. */
export interface CancelApiProps {
  readonly stackName: string;
  readonly handler: lambda.IFunction;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** @default true */
  readonly cloudWatchRole?: boolean;
  /** Every method's throttling on the stage (its method setting for all resources and methods). */
  readonly throttling: { readonly rateLimit: number; readonly burstLimit: number };
}

/**
 * The REST API, built into the Orchestrator's own scope (ids `Api`, `ApiAccessLogs`) so its
 * logical ids stay those of earlier versions. Its Lambda integration grants API Gateway
 * invoking the handler.
 */
export class CancelApi {
  readonly api: apigw.RestApi;

  constructor(scope: Construct, props: CancelApiProps) {
    const accessLogs = new logs.LogGroup(scope, 'ApiAccessLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.api = new apigw.RestApi(scope, 'Api', {
      restApiName: `${props.stackName}-api`,
      description: 'valence: dispatch, cancel and read dispatches',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      cloudWatchRole: props.cloudWatchRole ?? true,
      cloudWatchRoleRemovalPolicy: props.removalPolicy,
      defaultMethodOptions: { authorizationType: apigw.AuthorizationType.IAM },
      deployOptions: {
        stageName: API.stage,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        tracingEnabled: true,
        // Applied as the stage's `/*/*` method setting: every method, requests past it answered 429.
        throttlingRateLimit: props.throttling.rateLimit,
        throttlingBurstLimit: props.throttling.burstLimit,
      },
    });
    // RestApi adds an `Endpoint` output of its own; the Orchestrator's ApiUrl is the one connect() reads.
    this.api.node.tryRemoveChild('Endpoint');
    this.addMethods(props.handler);
    this.acknowledgeFindings();
  }

  private addMethods(handler: lambda.IFunction): void {
    const cancelModel = this.api.addModel('CancelRequest', {
      contentType: 'application/json',
      modelName: 'CancelRequest',
      schema: {
        schema: apigw.JsonSchemaVersion.DRAFT4,
        title: 'CancelRequest',
        type: apigw.JsonSchemaType.OBJECT,
        additionalProperties: false,
        // Shapes only. The handler checks the values (an empty list, ids past 2^53, paths, the
        // reason's length, the list's length) and names the bad one; API Gateway's refusal says
        // only "Invalid request body". Every field the SDK sends must be listed: with
        // `additionalProperties: false` API Gateway refuses any other before the handler runs
        // (the local cloud's assembly mode enforces the model; that is how a missing `force`,
        // which made every forced cancel a 400 on AWS, was found).
        properties: {
          taskIds: {
            type: apigw.JsonSchemaType.ARRAY,
            // A node id, or a path into sublattices such as "5/2".
            items: { oneOf: [{ type: apigw.JsonSchemaType.INTEGER }, { type: apigw.JsonSchemaType.STRING }] },
          },
          reason: { type: apigw.JsonSchemaType.STRING },
          force: { type: apigw.JsonSchemaType.BOOLEAN },
        },
      },
    });
    // Shapes only here too: the handler names a bad value (a size past the limit, an unknown lattice).
    const dispatchModel = this.api.addModel('DispatchRequest', {
      contentType: 'application/json',
      modelName: 'DispatchRequest',
      schema: {
        schema: apigw.JsonSchemaVersion.DRAFT4,
        title: 'DispatchRequest',
        type: apigw.JsonSchemaType.OBJECT,
        additionalProperties: false,
        required: ['lattice'],
        properties: {
          lattice: { type: apigw.JsonSchemaType.STRING },
          // The arguments in valence's serialization format, or the id of their presigned upload.
          args: { type: apigw.JsonSchemaType.STRING },
          argsUpload: { type: apigw.JsonSchemaType.STRING },
          graphHash: { type: apigw.JsonSchemaType.STRING },
          // Makes the request safe to retry: a retry answers with the first one's dispatch.
          clientToken: { type: apigw.JsonSchemaType.STRING },
        },
      },
    });
    const uploadModel = this.api.addModel('UploadRequest', {
      contentType: 'application/json',
      modelName: 'UploadRequest',
      schema: {
        schema: apigw.JsonSchemaVersion.DRAFT4,
        title: 'UploadRequest',
        type: apigw.JsonSchemaType.OBJECT,
        additionalProperties: false,
        required: ['bytes'],
        properties: { bytes: { type: apigw.JsonSchemaType.INTEGER } },
      },
    });
    const bodyValidator = this.api.addRequestValidator('CancelRequestValidator', { validateRequestBody: true, validateRequestParameters: true });
    const parameterValidator = this.api.addRequestValidator('StatusRequestValidator', { validateRequestBody: false, validateRequestParameters: true });
    const integration = new apigw.LambdaIntegration(handler);
    const dispatches = this.api.root.addResource('dispatches');
    dispatches.addMethod('POST', integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: bodyValidator,
      requestModels: { 'application/json': dispatchModel },
    });
    // Arguments too large to send inline: a presigned S3 PUT, so callers need no bucket access.
    this.api.root.addResource('uploads').addMethod('POST', integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: bodyValidator,
      requestModels: { 'application/json': uploadModel },
    });
    const dispatchResource = dispatches.addResource('{id}');
    dispatchResource.addMethod('GET', integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: parameterValidator,
      // `?result=true` adds the result (inline, or a presigned URL when large).
      requestParameters: { 'method.request.path.id': true, 'method.request.querystring.result': false },
    });
    dispatchResource.addResource('cancel').addMethod('POST', integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: bodyValidator,
      requestModels: { 'application/json': cancelModel },
      requestParameters: { 'method.request.path.id': true },
    });
    // One cancel request's report, or its progress (a cancel answered 202 finishes outside its request).
    dispatchResource.addResource('cancels').addResource('{requestId}').addMethod('GET', integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: parameterValidator,
      requestParameters: { 'method.request.path.id': true, 'method.request.path.requestId': true },
    });
  }

  private acknowledgeFindings(): void {
    acknowledge(this.api.deploymentStage, 'APIG3', 'Every method requires SigV4-signed IAM credentials and the stage is throttled (apiThrottling); a WAF in front would add cost without closing an open door');
    for (const method of this.api.methods) {
      acknowledge(method, 'COG4', 'Callers are AWS principals (the SDK and CLI sign with SigV4): AWS_IAM authorization, not a Cognito user pool');
    }
    const apiLogsRole = this.api.node.tryFindChild('CloudWatchRole');
    if (apiLogsRole) {
      acknowledge(apiLogsRole, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]', "The account-level role API Gateway needs to write access logs; AWS's managed policy is the documented one");
    }
  }
}
