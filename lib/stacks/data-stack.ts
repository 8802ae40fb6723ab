import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import {
  componentLoginRole,
  DATABASE_COMPONENTS,
  type DatabaseComponent,
} from '../../lambdas/platform/database-components';
import type { StageConfig } from '../config';
import { acknowledge } from '../nag';

export interface DataStackProps extends StackProps {
  readonly config: StageConfig;
}

/**
 * Stateful resources: network, encryption key, the data bucket, PostgreSQL behind RDS Proxy and the
 * Redis replication group. Kept apart from compute so functions can be replaced freely while data
 * resources change rarely and deliberately.
 */
export class DataStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly key: kms.Key;
  readonly bucket: s3.Bucket;
  /** Security group of every pipeline function: the only source the proxy and Redis accept. */
  readonly functionSecurityGroup: ec2.SecurityGroup;
  readonly database: rds.DatabaseInstance;
  readonly proxy: rds.DatabaseProxy;
  readonly databaseSecret: secretsmanager.ISecret;
  /**
   * One login secret per component (`tickstock_<component>_login`, schemas/sql/0090_roles.sql): each
   * function reads only its own, and the proxy reaches PostgreSQL as that role. The migrate function
   * sets each role's password from its secret on every deploy.
   */
  readonly databaseLogins: Record<DatabaseComponent, secretsmanager.ISecret>;
  readonly redis: elasticache.CfnReplicationGroup;
  readonly redisAuthSecret: secretsmanager.Secret;
  /** The market-data provider's API key: created empty-valued, set by an operator (README). */
  readonly marketDataApiKey: secretsmanager.Secret;
  /**
   * What a consumer of raw/ uploads may do with the bucket: read the uploads, write quarantine copies
   * and training objects. A managed policy here (not grants from the compute stack) keeps the
   * bucket's references inside this stack.
   */
  readonly ingestAccessPolicy: iam.ManagedPolicy;
  /** Subnets with NAT egress, for functions that call the market-data provider. */
  readonly egressSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  /** Subnets without any route to the internet; AWS services through VPC endpoints. */
  readonly isolatedSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

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

    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      encryptionKey: this.key,
      removalPolicy,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: config.network.maxAzs,
      natGateways: config.network.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'egress', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        all: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    this.vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    for (const [name, service] of [
      ['SqsEndpoint', ec2.InterfaceVpcEndpointAwsService.SQS],
      ['SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
      ['ElastiCacheEndpoint', ec2.InterfaceVpcEndpointAwsService.ELASTICACHE],
    ] as const) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        subnets: this.isolatedSubnets,
        privateDnsEnabled: true,
      });
    }

    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      // Server access logs can only be delivered to an SSE-S3 bucket.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(30) }],
      removalPolicy,
      autoDeleteObjects: false,
    });
    this.bucket = new s3.Bucket(this, 'DataBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'data-bucket/',
      lifecycleRules: [
        {
          id: 'quarantine-expiry',
          prefix: 'quarantine/',
          expiration: Duration.days(config.data.quarantineExpirationDays),
        },
        {
          id: 'noncurrent-expiry',
          noncurrentVersionExpiration: Duration.days(config.data.noncurrentVersionExpirationDays),
        },
      ],
      removalPolicy,
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
          resources: [this.key.keyArn],
        }),
      ],
    });
    acknowledge(this.ingestAccessPolicy, {
      'AwsSolutions-IAM5[Resource::<DataBucketE3889A50.Arn>/raw/*]':
        'uploads arrive under any key below raw/',
      'AwsSolutions-IAM5[Resource::<DataBucketE3889A50.Arn>/quarantine/*]':
        'quarantine copies mirror the raw/ keys',
      'AwsSolutions-IAM5[Resource::<DataBucketE3889A50.Arn>/training/*]':
        'training objects are keyed by domain and date',
    });

    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'pipeline Lambda functions',
      allowAllOutbound: false,
    });
    // HTTPS out: AWS services through the VPC endpoints, and the market-data provider through NAT.
    this.functionSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'HTTPS to AWS endpoints and provider',
    );
    const proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySecurityGroup', {
      vpc: this.vpc,
      description: 'RDS Proxy: only pipeline functions',
      allowAllOutbound: false,
    });
    const databaseSecurityGroup = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc: this.vpc,
      description: 'PostgreSQL: only the RDS Proxy',
      allowAllOutbound: false,
    });
    const redisSecurityGroup = new ec2.SecurityGroup(this, 'RedisSecurityGroup', {
      vpc: this.vpc,
      description: 'Redis: only pipeline functions',
      allowAllOutbound: false,
    });
    proxySecurityGroup.connections.allowFrom(
      this.functionSecurityGroup,
      ec2.Port.tcp(5432),
      'functions to proxy',
    );
    this.functionSecurityGroup.connections.allowTo(
      proxySecurityGroup,
      ec2.Port.tcp(5432),
      'functions to proxy',
    );
    // Proxy -> database rules are added by addProxy below; secret rotation adds its own function's.
    redisSecurityGroup.connections.allowFrom(
      this.functionSecurityGroup,
      ec2.Port.tcp(6379),
      'functions to redis',
    );
    this.functionSecurityGroup.connections.allowTo(
      redisSecurityGroup,
      ec2.Port.tcp(6379),
      'functions to redis',
    );

    const parameterGroup = new rds.ParameterGroup(this, 'DatabaseParameters', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 }),
      parameters: { 'rds.force_ssl': '1', log_min_duration_statement: '1000' },
    });
    this.database = new rds.DatabaseInstance(this, 'Database', {
      engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 }),
      instanceType: new ec2.InstanceType(config.database.instanceType),
      vpc: this.vpc,
      vpcSubnets: this.isolatedSubnets,
      securityGroups: [databaseSecurityGroup],
      credentials: rds.Credentials.fromGeneratedSecret('tickstock_admin', { encryptionKey: this.key }),
      databaseName: config.database.databaseName,
      allocatedStorage: config.database.allocatedStorageGb,
      storageEncrypted: true,
      storageEncryptionKey: this.key,
      multiAz: config.database.multiAz,
      deletionProtection: config.database.deletionProtection,
      backupRetention: Duration.days(config.database.backupRetentionDays),
      deleteAutomatedBackups: !config.retainData,
      parameterGroup,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      cloudwatchLogsRetention: config.logRetentionDays as logs.RetentionDays,
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: this.key,
      monitoringInterval: Duration.seconds(60),
      autoMinorVersionUpgrade: true,
      iamAuthentication: true,
      removalPolicy: config.retainData ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
    });
    if (!this.database.secret) throw new Error('database credentials secret was not created');
    this.databaseSecret = this.database.secret;
    this.database.addRotationSingleUser({
      automaticallyAfter: Duration.days(30),
      vpcSubnets: this.isolatedSubnets,
    });
    const logins = {} as Record<DatabaseComponent, secretsmanager.ISecret>;
    for (const component of DATABASE_COMPONENTS) {
      const login = new rds.DatabaseSecret(this, `DatabaseLogin-${component}`, {
        username: componentLoginRole(component),
        encryptionKey: this.key,
      });
      logins[component] = login.attach(this.database);
      acknowledge(login, {
        'AwsSolutions-SMG4':
          'component login; the migrate function applies the secret to the role on each deploy (rotation of these secrets: follow-up, see README)',
        'HIPAA.Security-SecretsManagerUsingKMSKey': 'encrypted with the data key',
        'HIPAA.Security-SecretsManagerRotationEnabled':
          'component login; the migrate function applies the secret to the role on each deploy',
      });
    }
    this.databaseLogins = logins;
    this.proxy = this.database.addProxy('Proxy', {
      // The admin (migrations) and each component's own login.
      secrets: [this.databaseSecret, ...Object.values(logins)],
      vpc: this.vpc,
      vpcSubnets: this.isolatedSubnets,
      securityGroups: [proxySecurityGroup],
      requireTLS: true,
      debugLogging: false,
    });

    this.redisAuthSecret = new secretsmanager.Secret(this, 'RedisAuthToken', {
      description: 'ElastiCache Redis AUTH token',
      encryptionKey: this.key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy,
    });
    this.marketDataApiKey = new secretsmanager.Secret(this, 'MarketDataApiKey', {
      description:
        'Polygon/Massive API key for the market-data jobs (put the real key after the first deploy)',
      encryptionKey: this.key,
      removalPolicy,
    });
    const redisSubnets = new elasticache.CfnSubnetGroup(this, 'RedisSubnets', {
      description: 'tickstock redis (isolated subnets)',
      subnetIds: this.vpc.selectSubnets(this.isolatedSubnets).subnetIds,
    });
    const replicated = config.redis.nodes >= 2;
    this.redis = new elasticache.CfnReplicationGroup(this, 'Redis', {
      replicationGroupDescription: `tickstock ${config.name} events, idempotency and dedup windows`,
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: config.redis.nodeType,
      numCacheClusters: config.redis.nodes,
      automaticFailoverEnabled: replicated,
      multiAzEnabled: replicated,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      atRestEncryptionEnabled: true,
      kmsKeyId: this.key.keyId,
      authToken: this.redisAuthSecret.secretValue.unsafeUnwrap(),
      cacheSubnetGroupName: redisSubnets.ref,
      securityGroupIds: [redisSecurityGroup.securityGroupId],
      // HIPAA asks for 15 days of automatic backups; streams in Redis carry the app's messages.
      snapshotRetentionLimit: 15,
      autoMinorVersionUpgrade: true,
    });
    this.redis.applyRemovalPolicy(removalPolicy);
    this.acknowledgeFindings(config);
  }

  private acknowledgeFindings(config: StageConfig): void {
    const notProd = `non-production stage "${config.name}": prod enables it (lib/config.ts)`;
    const endpointRules = {
      'AwsSolutions-EC23':
        'interface endpoint accepts HTTPS from the VPC CIDR only; the rule cannot read the CIDR token at synth time',
      'HIPAA.Security-EC2RestrictedCommonPorts':
        'interface endpoint accepts only TCP 443 from inside the VPC',
      'HIPAA.Security-EC2RestrictedSSH':
        'interface endpoint accepts only TCP 443 from inside the VPC; no SSH',
    };
    for (const child of this.vpc.node.children) {
      if (child instanceof ec2.InterfaceVpcEndpoint) acknowledge(child, endpointRules);
    }
    acknowledge(this.vpc, {
      'HIPAA.Security-VPCNoUnrestrictedRouteToIGW':
        'public subnets hold only the NAT gateways used by provider-calling functions; no workload runs there',
      'HIPAA.Security-IAMNoInlinePolicy':
        'flow-log delivery role created by CDK, scoped to its one log group',
    });
    acknowledge(this.node.findChild('DatabaseSecurityGroup'), {
      'HIPAA.Security-EC2RestrictedCommonPorts': 'ingress only from the RDS Proxy security group on 5432',
      'HIPAA.Security-EC2RestrictedSSH': 'ingress only from the RDS Proxy security group on 5432; no SSH',
    });
    acknowledge(this.database, {
      'AwsSolutions-RDS11':
        'clients reach PostgreSQL only through the RDS Proxy, which always listens on 5432; security groups admit only the proxy',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]':
        'AWS-maintained policy required by RDS enhanced monitoring',
      'HIPAA.Security-IAMNoInlinePolicy':
        'RDS Proxy role created by CDK, scoped to reading the one database secret',
      'HIPAA.Security-RDSInBackupPlan':
        'automated RDS backups with point-in-time recovery and a per-stage retention (30 days in prod) instead of an AWS Backup plan',
      ...(config.database.multiAz
        ? {}
        : { 'AwsSolutions-RDS3': notProd, 'HIPAA.Security-RDSMultiAZSupport': notProd }),
      ...(config.database.deletionProtection
        ? {}
        : { 'AwsSolutions-RDS10': notProd, 'HIPAA.Security-RDSInstanceDeletionProtectionEnabled': notProd }),
    });
    // CDK's log-retention function, created for the RDS log exports' retention.
    for (const child of this.node.children) {
      if (child.node.id.startsWith('LogRetention')) {
        acknowledge(child, {
          'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
            'CDK-provided log-retention function: AWS-maintained policy for its own logs',
          'AwsSolutions-IAM5[Resource::*]':
            'CDK-provided log-retention function must set retention on RDS-created log groups',
          'HIPAA.Security-IAMNoInlinePolicy': 'CDK-provided log-retention function role',
        });
      }
    }
    acknowledge(this.redis, {
      'AwsSolutions-AEC5':
        'reachable only from the functions security group in isolated subnets, with TLS and AUTH required; port obfuscation adds nothing',
      ...(config.redis.nodes >= 2 ? {} : { 'AwsSolutions-AEC4': notProd }),
    });
    acknowledge(this.redisAuthSecret, {
      'AwsSolutions-SMG4':
        'ElastiCache AUTH tokens rotate with ModifyReplicationGroup (ROTATE then SET), a documented operator procedure (README); there is no managed rotation function for them',
      'HIPAA.Security-SecretsManagerRotationEnabled':
        'see AwsSolutions-SMG4: AUTH token rotation is an operator procedure',
    });
    acknowledge(this.marketDataApiKey, {
      'AwsSolutions-SMG4': 'a third-party API key: rotated at the provider, then put here by an operator',
      'HIPAA.Security-SecretsManagerRotationEnabled': 'a third-party API key: rotated at the provider',
    });
    acknowledge(this.bucket, {
      'HIPAA.Security-S3BucketReplicationEnabled':
        'versioned, KMS-encrypted bucket; cross-region replication is a disaster-recovery decision outside this stack',
    });
    acknowledge(this.node.findChild('AccessLogs'), {
      'HIPAA.Security-S3BucketReplicationEnabled': 'server access logs; not replicated',
      'HIPAA.Security-S3DefaultEncryptionKMS':
        'S3 server access logs can only be delivered to an SSE-S3 bucket',
    });
  }
}
