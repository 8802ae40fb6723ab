import { RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct, IConstruct } from 'constructs';
import type { EmulatorConfig, StageConfig } from '../config';
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
/** Where functions run: the VPC, the subnets and the security group the data stores admit. */
export interface FunctionNetwork {
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  /** Subnets with NAT egress, for functions that call the market-data provider. */
  readonly egressSubnets: ec2.SubnetSelection;
  /** Subnets without any route to the internet; AWS services through VPC endpoints. */
  readonly isolatedSubnets: ec2.SubnetSelection;
}

/** How functions reach PostgreSQL and Redis, whichever hosts them. */
export interface DataStores {
  /** DB_* and REDIS_* variables of every function (lambdas/platform/config.ts). */
  readonly environment: Readonly<Record<string, string>>;
  /** The secrets every function reads for them. */
  readonly secrets: readonly secretsmanager.ISecret[];
  /** What must exist before migrations run (the database and its proxy). */
  readonly ready: readonly IConstruct[];
  /** The ElastiCache replication group the status report describes, where there is one. */
  readonly redisReplicationGroupId?: string;
}

export class DataStack extends Stack {
  readonly key: kms.Key;
  readonly dataBucket: DataBucket;
  /** The VPC and its parts; absent on an emulator stage (EMULATOR_OMISSIONS). */
  readonly network?: Network;
  /** RDS PostgreSQL behind RDS Proxy; absent on an emulator stage. */
  readonly databaseStore?: Database;
  /** ElastiCache Redis; absent on an emulator stage. */
  readonly cache?: Cache;
  readonly stores: DataStores;
  /** The market-data provider's API key: created empty-valued, set by an operator (README). */
  readonly marketDataApiKey: secretsmanager.Secret;

  // The parts' resources under the names the compute stack (and other readers) use.
  readonly bucket: s3.Bucket;
  readonly ingestAccessPolicy: iam.ManagedPolicy;
  /** Where functions run; undefined on an emulator stage (local processes, no VPC). */
  readonly functionNetwork?: FunctionNetwork;

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

    this.dataBucket = new DataBucket(this, 'DataBucket', {
      key: this.key,
      quarantineExpirationDays: config.data.quarantineExpirationDays,
      noncurrentVersionExpirationDays: config.data.noncurrentVersionExpirationDays,
      removalPolicy,
    });
    this.bucket = this.dataBucket.bucket;
    this.ingestAccessPolicy = this.dataBucket.ingestAccessPolicy;

    if (config.emulator) {
      this.stores = this.localStores(config, config.emulator, removalPolicy);
    } else {
      const network = new Network(this, 'Network', {
        maxAzs: config.network.maxAzs,
        natGateways: config.network.natGateways,
        logsKey: this.key,
        logRetentionDays: config.logRetentionDays,
        removalPolicy,
      });
      this.network = network;
      this.functionNetwork = {
        vpc: network.vpc,
        securityGroup: network.functionSecurityGroup,
        egressSubnets: network.egressSubnets,
        isolatedSubnets: network.isolatedSubnets,
      };
      const database = new Database(this, 'Database', {
        vpc: network.vpc,
        subnets: network.isolatedSubnets,
        clients: network.functionSecurityGroup,
        key: this.key,
        ...config.database,
        retain: config.retainData,
        logRetentionDays: config.logRetentionDays,
        stageName: config.name,
      });
      this.databaseStore = database;
      const cache = new Cache(this, 'Cache', {
        vpc: network.vpc,
        subnets: network.isolatedSubnets,
        clients: network.functionSecurityGroup,
        key: this.key,
        nodeType: config.redis.nodeType,
        nodes: config.redis.nodes,
        removalPolicy,
        description: `tickstock ${config.name} events, idempotency and dedup windows`,
        stageName: config.name,
      });
      this.cache = cache;
      const redis = cache.replicationGroup;
      this.stores = {
        environment: {
          DB_SECRET_ARN: database.secret.secretArn,
          DB_HOST: database.proxy.endpoint,
          DB_NAME: config.database.databaseName,
          REDIS_HOST: redis.attrPrimaryEndPointAddress,
          REDIS_PORT: redis.attrPrimaryEndPointPort,
          REDIS_AUTH_SECRET_ARN: cache.authSecret.secretArn,
        },
        secrets: [database.secret, cache.authSecret],
        ready: [database.instance, database.proxy],
        redisReplicationGroupId: redis.ref,
      };
    }

    this.marketDataApiKey = new secretsmanager.Secret(this, 'MarketDataApiKey', {
      description:
        'Polygon/Massive API key for the market-data jobs (put the real key after the first deploy)',
      encryptionKey: this.key,
      removalPolicy,
      // The local market API accepts any non-empty key; an emulator's generated secret comes out empty.
      ...(config.emulator ? { secretStringValue: SecretValue.unsafePlainText('local-market-api-key') } : {}),
    });
    acknowledge(this.marketDataApiKey, {
      'AwsSolutions-SMG4': 'a third-party API key: rotated at the provider, then put here by an operator',
      'HIPAA.Security-SecretsManagerRotationEnabled': 'a third-party API key: rotated at the provider',
    });
  }

  /**
   * The emulator stage's data stores: the machine's PostgreSQL and Redis (EMULATOR_REPLACEMENTS). The
   * database credentials sit in the emulator's Secrets Manager in the RDS secret's shape, so functions
   * read them exactly as in AWS; only TLS is off, since neither local service offers it.
   */
  private localStores(
    config: StageConfig,
    emulator: EmulatorConfig,
    removalPolicy: RemovalPolicy,
  ): DataStores {
    const { database, redis } = emulator;
    const credentials = new secretsmanager.Secret(this, 'LocalDatabaseCredentials', {
      description: "deploy rehearsal: the machine's PostgreSQL",
      encryptionKey: this.key,
      removalPolicy,
      // A literal value: an emulator's generated secret comes out empty.
      secretObjectValue: {
        engine: SecretValue.unsafePlainText('postgres'),
        host: SecretValue.unsafePlainText(database.host),
        port: SecretValue.unsafePlainText(String(database.port)),
        dbname: SecretValue.unsafePlainText(config.database.databaseName),
        username: SecretValue.unsafePlainText(database.username),
        password: SecretValue.unsafePlainText(database.password),
      },
    });
    acknowledge(credentials, {
      'AwsSolutions-SMG4':
        "deploy rehearsal only: the machine's PostgreSQL, which trusts loopback connections",
      'HIPAA.Security-SecretsManagerRotationEnabled':
        "deploy rehearsal only: the machine's PostgreSQL, which trusts loopback connections",
    });
    return {
      environment: {
        DB_SECRET_ARN: credentials.secretArn,
        DB_HOST: database.host,
        DB_PORT: String(database.port),
        DB_NAME: config.database.databaseName,
        DB_TLS: 'disabled',
        REDIS_HOST: redis.host,
        REDIS_PORT: String(redis.port),
        REDIS_TLS: 'disabled',
        EVENT_BUS_NAMESPACE: emulator.eventBusNamespace,
      },
      secrets: [credentials],
      ready: [credentials],
    };
  }
}
