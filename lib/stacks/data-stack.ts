import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { StageConfig } from '../config';
import { Cache } from '../constructs/cache';
import { DataBucket } from '../constructs/data-bucket';
import { Database } from '../constructs/database';
import { Network } from '../constructs/network';
import { acknowledge } from '../nag';

export interface DataStackProps extends StackProps {
  readonly config: StageConfig;
}

/**
 * Stateful resources: network, encryption key, the data bucket, PostgreSQL behind RDS Proxy and the
 * Redis replication group. Kept apart from compute so functions can be replaced freely while data
 * resources change rarely and deliberately. Wiring only: each part is a construct of lib/constructs.
 */
export class DataStack extends Stack {
  readonly key: kms.Key;
  readonly network: Network;
  readonly dataBucket: DataBucket;
  readonly databaseStore: Database;
  readonly cache: Cache;
  /** The market-data provider's API key: created empty-valued, set by an operator (README). */
  readonly marketDataApiKey: secretsmanager.Secret;

  // The parts' resources under the names the compute stack (and other readers) use.
  readonly vpc: ec2.Vpc;
  readonly bucket: s3.Bucket;
  readonly ingestAccessPolicy: iam.ManagedPolicy;
  /** Security group of every pipeline function: the only source the proxy and Redis accept. */
  readonly functionSecurityGroup: ec2.SecurityGroup;
  readonly database: rds.DatabaseInstance;
  readonly proxy: rds.DatabaseProxy;
  readonly databaseSecret: secretsmanager.ISecret;
  readonly redis: elasticache.CfnReplicationGroup;
  readonly redisAuthSecret: secretsmanager.Secret;
  /** Subnets with NAT egress, for functions that call the market-data provider. */
  readonly egressSubnets: ec2.SubnetSelection;
  /** Subnets without any route to the internet; AWS services through VPC endpoints. */
  readonly isolatedSubnets: ec2.SubnetSelection;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { config } = props;
    const removalPolicy = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.key = new kms.Key(this, 'DataKey', {
      description: `tickstock ${config.name}: data at rest (bucket, queues, logs, database, cache)`,
      enableKeyRotation: true,
      removalPolicy,
    });
    // CloudWatch Logs encrypts log groups with this key only if the service may use it.
    this.key.grantEncryptDecrypt(new iam.ServicePrincipal(`logs.${this.region}.amazonaws.com`));

    this.network = new Network(this, 'Network', {
      maxAzs: config.network.maxAzs,
      natGateways: config.network.natGateways,
      logsKey: this.key,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
    });
    this.vpc = this.network.vpc;
    this.functionSecurityGroup = this.network.functionSecurityGroup;
    this.egressSubnets = this.network.egressSubnets;
    this.isolatedSubnets = this.network.isolatedSubnets;

    this.dataBucket = new DataBucket(this, 'DataBucket', {
      key: this.key,
      quarantineExpirationDays: config.data.quarantineExpirationDays,
      noncurrentVersionExpirationDays: config.data.noncurrentVersionExpirationDays,
      removalPolicy,
    });
    this.bucket = this.dataBucket.bucket;
    this.ingestAccessPolicy = this.dataBucket.ingestAccessPolicy;

    this.databaseStore = new Database(this, 'Database', {
      vpc: this.vpc,
      subnets: this.isolatedSubnets,
      clients: this.functionSecurityGroup,
      key: this.key,
      ...config.database,
      retain: config.retainData,
      logRetentionDays: config.logRetentionDays,
      stageName: config.name,
    });
    this.database = this.databaseStore.instance;
    this.proxy = this.databaseStore.proxy;
    this.databaseSecret = this.databaseStore.secret;

    this.cache = new Cache(this, 'Cache', {
      vpc: this.vpc,
      subnets: this.isolatedSubnets,
      clients: this.functionSecurityGroup,
      key: this.key,
      nodeType: config.redis.nodeType,
      nodes: config.redis.nodes,
      removalPolicy,
      description: `tickstock ${config.name} events, idempotency and dedup windows`,
      stageName: config.name,
    });
    this.redis = this.cache.replicationGroup;
    this.redisAuthSecret = this.cache.authSecret;

    this.marketDataApiKey = new secretsmanager.Secret(this, 'MarketDataApiKey', {
      description:
        'Polygon/Massive API key for the market-data jobs (put the real key after the first deploy)',
      encryptionKey: this.key,
      removalPolicy,
    });
    acknowledge(this.marketDataApiKey, {
      'AwsSolutions-SMG4': 'a third-party API key: rotated at the provider, then put here by an operator',
      'HIPAA.Security-SecretsManagerRotationEnabled': 'a third-party API key: rotated at the provider',
    });
  }
}
