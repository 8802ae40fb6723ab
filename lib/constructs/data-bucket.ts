import { type CfnElement, Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';

/** Where the real-time router archives its raw frames (lambdas/realtime-router/archive.ts's default). */
export const FRAME_ARCHIVE_PREFIX = 'realtime/frames/';
export interface DataBucketProps {
  /** Encrypts the objects (SSE-KMS with a bucket key). */
  readonly key: kms.IKey;
  /** Days a quarantined export (quarantine/) is kept before it expires (>= 1). */
  readonly quarantineExpirationDays: number;
  /** Days a replaced or deleted object version is kept (>= 1). */
  readonly noncurrentVersionExpirationDays: number;
  readonly removalPolicy: RemovalPolicy;
  /**
   * Days the server access logs are kept.
   * @default 365
   */
  readonly accessLogExpirationDays?: number;
}

/**
 * The data bucket (raw/ uploads, quarantine/, training/): private, KMS-encrypted, versioned, TLS
 * only, with server access logs in a bucket of their own, and the managed policy of what an ingest
 * consumer may do with it.
 */
export class DataBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  /**
   * What a consumer of raw/ uploads may do with the bucket: read the uploads, write quarantine copies
   * and training objects. A managed policy here (not grants from the compute stack) keeps the
   * bucket's references inside the data stack.
   */
  readonly ingestAccessPolicy: iam.ManagedPolicy;
  /** What the real-time router may do with the bucket: put raw-frame archive objects, nothing else. */
  readonly frameArchivePolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: DataBucketProps) {
    super(scope, id);
    const accessLogExpirationDays = props.accessLogExpirationDays ?? 365;
    for (const [name, days] of [
      ['quarantineExpirationDays', props.quarantineExpirationDays],
      ['noncurrentVersionExpirationDays', props.noncurrentVersionExpirationDays],
      ['accessLogExpirationDays', accessLogExpirationDays],
    ] as const) {
      if (!Number.isInteger(days) || days < 1)
        throw new Error(`data bucket: ${name} must be a positive integer, got ${days}`);
    }

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      // Server access logs can only be delivered to an SSE-S3 bucket.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [
        {
          expiration: Duration.days(accessLogExpirationDays),
          noncurrentVersionExpiration: Duration.days(30),
        },
      ],
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: false,
    });
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'data-bucket/',
      lifecycleRules: [
        {
          id: 'quarantine-expiry',
          prefix: 'quarantine/',
          expiration: Duration.days(props.quarantineExpirationDays),
        },
        {
          id: 'noncurrent-expiry',
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionExpirationDays),
        },
      ],
      removalPolicy: props.removalPolicy,
    });

    this.ingestAccessPolicy = new iam.ManagedPolicy(this, 'IngestAccess', {
      description: 'read raw/ uploads; write quarantine/ and training/ objects',
      statements: [
        new iam.PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: [this.bucket.arnForObjects('raw/*')],
        }),
        new iam.PolicyStatement({
          actions: ['s3:PutObject'],
          resources: [this.bucket.arnForObjects('quarantine/*'), this.bucket.arnForObjects('training/*')],
        }),
        // Without ListBucket a missing object answers AccessDenied, which must alarm; NoSuchKey is dropped.
        new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
        new iam.PolicyStatement({
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.key.keyArn],
        }),
      ],
    });
    this.frameArchivePolicy = new iam.ManagedPolicy(this, 'FrameArchiveAccess', {
      description: `write real-time raw-frame archive objects under ${FRAME_ARCHIVE_PREFIX}`,
      statements: [
        new iam.PolicyStatement({
          actions: ['s3:PutObject'],
          resources: [this.bucket.arnForObjects(`${FRAME_ARCHIVE_PREFIX}*`)],
        }),
        new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [props.key.keyArn] }),
      ],
    });
    const bucketId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnElement);
    acknowledge(this.frameArchivePolicy, {
      [`AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${FRAME_ARCHIVE_PREFIX}*]`]:
        'archive objects are keyed by router epoch and sequence below the archive prefix',
    });
    acknowledge(this.ingestAccessPolicy, {
      [`AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/raw/*]`]: 'uploads arrive under any key below raw/',
      [`AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/quarantine/*]`]:
        'quarantine copies mirror the raw/ keys',
      [`AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/training/*]`]:
        'training objects are keyed by domain and date',
    });
    acknowledge(this.bucket, {
      'HIPAA.Security-S3BucketReplicationEnabled':
        'versioned, KMS-encrypted bucket; cross-region replication is a disaster-recovery decision outside this stack',
    });
    acknowledge(this.accessLogs, {
      'HIPAA.Security-S3BucketReplicationEnabled': 'server access logs; not replicated',
      'HIPAA.Security-S3DefaultEncryptionKMS':
        'S3 server access logs can only be delivered to an SSE-S3 bucket',
    });
  }
}
