/**
 * The table (dispatch, node and cancel-request items, keys and indexes from the contract)
 * and the payload bucket (objects under the contract's `dispatches/` prefix) with its access
 * log bucket; and the grants on them.
 */
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { PAYLOAD_PREFIX, TABLE, UPLOAD_PREFIX } from '../../sdk/contract.ts';
import { allow } from './nag.ts';

/** Item actions on the table and its indexes: no Scan, no table management. */
export const TABLE_READ_WRITE = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];
/** Reading payload objects. */
export const OBJECT_READ = ['s3:GetObject'];
/** Writing payload objects. */
export const OBJECT_WRITE = ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'];

/** Props of {@link Storage}. */
export interface StorageProps {
  readonly removalPolicy: RemovalPolicy;
  readonly autoDeleteObjects: boolean;
  readonly payloadRetentionDays: number;
}

/**
 * The table and buckets. Built into the Orchestrator's own scope (ids `Table`, `Bucket`,
 * `AccessLogBucket`), so their logical ids are those of earlier versions and a deployed
 * stack keeps its data.
 */
export class Storage {
  readonly table: dynamodb.Table;
  readonly bucket: s3.Bucket;
  readonly accessLogBucket: s3.Bucket;

  constructor(scope: Construct, props: StorageProps) {
    this.table = new dynamodb.Table(scope, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.removalPolicy,
    });
    const { byJobHandle, byList } = TABLE.indexes;
    this.table.addGlobalSecondaryIndex({
      indexName: byJobHandle.name,
      partitionKey: { name: byJobHandle.partitionKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: byList.name,
      partitionKey: { name: byList.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: byList.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    this.accessLogBucket = new s3.Bucket(scope, 'AccessLogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Server access log delivery supports SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(Math.max(90, props.payloadRetentionDays)) }],
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: props.autoDeleteObjects,
    });
    this.bucket = new s3.Bucket(scope, 'Bucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // aws-cdk-lib's Bucket does not satisfy IBucket under exactOptionalPropertyTypes (`isWebsite?: boolean | undefined`).
      serverAccessLogsBucket: this.accessLogBucket as s3.IBucket,
      serverAccessLogsPrefix: 'payload-bucket/',
      lifecycleRules: [
        { id: 'expire-dispatches', prefix: PAYLOAD_PREFIX, expiration: Duration.days(props.payloadRetentionDays) },
        // A dispatch deletes the upload it read; one never dispatched (or whose delete failed) goes after a day.
        { id: 'expire-uploads', prefix: UPLOAD_PREFIX, expiration: Duration.days(1) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: props.autoDeleteObjects,
    });
  }

  /** The table and both of its indexes. */
  get tableResources(): string[] {
    return [this.table.tableArn, ...Object.values(TABLE.indexes).map((index) => `${this.table.tableArn}/index/${index.name}`)];
  }

  /** Every payload object. */
  get payloadObjects(): string {
    return this.bucket.arnForObjects(`${PAYLOAD_PREFIX}*`);
  }

  /** Allows item reads and writes on the table and its indexes. */
  grantTable(role: iam.Role): void {
    allow(role, { actions: TABLE_READ_WRITE, resources: this.tableResources });
  }

  /** Allows `actions` on payload objects. */
  grantPayloads(role: iam.Role, actions: readonly string[]): void {
    allow(role, { actions, resources: [this.payloadObjects], wildcardReason: `Payload objects of dispatches only (keys under ${PAYLOAD_PREFIX}, named by dispatch ids unknown at deploy time)` });
  }

  /**
   * Allows the API handler to presign uploads of dispatch arguments (the URL carries its
   * `s3:PutObject`), read them and delete them once dispatched: objects under the upload prefix only.
   */
  grantUploads(role: iam.Role): void {
    allow(role, {
      actions: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'],
      resources: [this.bucket.arnForObjects(`${UPLOAD_PREFIX}*`)],
      wildcardReason: `Uploaded dispatch arguments only (keys under ${UPLOAD_PREFIX}, named by upload ids minted per request)`,
    });
  }

  /** Allows the table, payload reads (and writes, for `read-write`), and listing the payload prefix. */
  grantData(role: iam.Role, objects: 'read' | 'read-write'): void {
    this.grantTable(role);
    this.grantPayloads(role, objects === 'read' ? OBJECT_READ : [...OBJECT_READ, ...OBJECT_WRITE]);
    // Without ListBucket a missing payload reads as AccessDenied instead of NoSuchKey.
    allow(role, { actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${PAYLOAD_PREFIX}*`] } } });
  }
}
