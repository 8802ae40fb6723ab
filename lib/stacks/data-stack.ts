import { RemovalPolicy, SecretValue, Stack, type StackProps } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import {
  componentLoginRole,
  DATABASE_COMPONENTS,
  type DatabaseComponent,
} from '../../lambdas/platform/database-components';
import { type EmulatorConfig, type StageConfig, streamMaxLen } from '../config';
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
  /** DB_* (but DB_SECRET_ARN) and REDIS_* variables of every function (lambdas/platform/config.ts). */
  readonly environment: Readonly<Record<string, string>>;
  /** The secrets every function reads for them (Redis; the database's is per function). */
  readonly secrets: readonly secretsmanager.ISecret[];
  /** The migration owner's database credentials: the migrate function's DB_SECRET_ARN only. */
  readonly databaseOwner: secretsmanager.ISecret;
  /** Each component's login (schemas/sql/0090_roles.sql): the DB_SECRET_ARN of its functions. */
  readonly databaseLogins: Record<DatabaseComponent, secretsmanager.ISecret>;
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
  /** The broker's API key id and secret (`{"keyId", "secretKey"}`): put by an operator (README). */
  readonly brokerCredentials: secretsmanager.Secret;

  // The parts' resources under the names the compute stack (and other readers) use.
  readonly bucket: s3.Bucket;
  readonly ingestAccessPolicy: iam.ManagedPolicy;
  readonly frameArchivePolicy: iam.ManagedPolicy;
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
    this.frameArchivePolicy = this.dataBucket.frameArchivePolicy;

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
        loginUsers: DATABASE_COMPONENTS.map(componentLoginRole),
      });
      this.databaseStore = database;
      const cache = new Cache(this, 'Cache', {
        vpc: network.vpc,
        subnets: network.isolatedSubnets,
        clients: network.functionSecurityGroup,
        key: this.key,
        nodeType: config.redis.nodeType,
        nodes: config.redis.nodes,
        snapshotRetentionDays: config.redis.snapshotRetentionDays,
        snapshotWindow: config.redis.snapshotWindow,
        removalPolicy,
        description: `tickstock ${config.name} events, idempotency and dedup windows`,
        stageName: config.name,
      });
      this.cache = cache;
      const redis = cache.replicationGroup;
      this.stores = {
        environment: {
          DB_HOST: database.proxy.endpoint,
          DB_NAME: config.database.databaseName,
          REDIS_HOST: redis.attrPrimaryEndPointAddress,
          REDIS_PORT: redis.attrPrimaryEndPointPort,
          REDIS_AUTH_SECRET_ARN: cache.authSecret.secretArn,
          EVENT_BUS_MAX_LEN: String(streamMaxLen(config.redis)),
        },
        secrets: [cache.authSecret],
        databaseOwner: database.secret,
        databaseLogins: Object.fromEntries(
          DATABASE_COMPONENTS.map((c) => [c, database.logins.get(componentLoginRole(c))]),
        ) as Record<DatabaseComponent, secretsmanager.ISecret>,
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

    this.brokerCredentials = new secretsmanager.Secret(this, 'BrokerCredentials', {
      description:
        'the broker API key id and secret of the trading live engine, as {"keyId","secretKey"} (put the real keys after the first deploy)',
      encryptionKey: this.key,
      removalPolicy,
      // The broker simulator's stage key (localstack/broker); an emulator's generated secret comes out empty.
      ...(config.emulator
        ? {
            secretObjectValue: {
              keyId: SecretValue.unsafePlainText('local-broker-key'),
              secretKey: SecretValue.unsafePlainText('local-broker-secret'),
            },
          }
        : {}),
    });
    acknowledge(this.brokerCredentials, {
      'AwsSolutions-SMG4': 'a third-party API key: rotated at the broker, then put here by an operator',
      'HIPAA.Security-SecretsManagerRotationEnabled': 'a third-party API key: rotated at the broker',
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
    // The owner's and each component's login, in the RDS secret's shape. The machine's PostgreSQL
    // trusts loopback, so the login passwords (set by the migrate function as in AWS) are not checked.
    const credentials = new Construct(this, 'LocalDatabaseCredentials');
    const secret = (id: string, username: string, password: string) => {
      const s = new secretsmanager.Secret(credentials, id, {
        description: `deploy rehearsal: the machine's PostgreSQL as ${username}`,
        encryptionKey: this.key,
        removalPolicy,
        // A literal value: an emulator's generated secret comes out empty.
        secretObjectValue: {
          engine: SecretValue.unsafePlainText('postgres'),
          host: SecretValue.unsafePlainText(database.host),
          port: SecretValue.unsafePlainText(String(database.port)),
          dbname: SecretValue.unsafePlainText(config.database.databaseName),
          username: SecretValue.unsafePlainText(username),
          password: SecretValue.unsafePlainText(password),
        },
      });
      acknowledge(s, {
        'AwsSolutions-SMG4':
          "deploy rehearsal only: the machine's PostgreSQL, which trusts loopback connections",
        'HIPAA.Security-SecretsManagerRotationEnabled':
          "deploy rehearsal only: the machine's PostgreSQL, which trusts loopback connections",
      });
      return s;
    };
    const owner = secret('Owner', database.username, database.password);
    const logins = {} as Record<DatabaseComponent, secretsmanager.ISecret>;
    for (const c of DATABASE_COMPONENTS)
      logins[c] = secret(`Login-${c}`, componentLoginRole(c), `rehearsal-login-${c}-password`);
    return {
      environment: {
        DB_HOST: database.host,
        DB_PORT: String(database.port),
        DB_NAME: config.database.databaseName,
        DB_TLS: 'disabled',
        REDIS_HOST: redis.host,
        REDIS_PORT: String(redis.port),
        REDIS_TLS: 'disabled',
        EVENT_BUS_NAMESPACE: emulator.eventBusNamespace,
        EVENT_BUS_MAX_LEN: String(streamMaxLen(config.redis)),
      },
      secrets: [],
      databaseOwner: owner,
      databaseLogins: logins,
      ready: [credentials],
    };
  }
}
