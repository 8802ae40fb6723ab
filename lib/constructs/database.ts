import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';

export interface DatabaseProps {
  readonly vpc: ec2.IVpc;
  /** Subnets of the instance, the proxy and the rotation function (isolated ones). */
  readonly subnets: ec2.SubnetSelection;
  /** The only security group the proxy admits (the functions'). */
  readonly clients: ec2.ISecurityGroup;
  /** Encrypts storage, the credentials secret and Performance Insights. */
  readonly key: kms.IKey;
  /** e.g. `t4g.micro`. */
  readonly instanceType: string;
  /** 20 GB or more (RDS PostgreSQL's minimum). */
  readonly allocatedStorageGb: number;
  readonly databaseName: string;
  readonly multiAz: boolean;
  /** Requires `retain`: a protected instance in a stack that deletes its data would block every teardown. */
  readonly deletionProtection: boolean;
  /** Days of automated backups and point-in-time recovery (1 to 35). */
  readonly backupRetentionDays: number;
  /** Keep a final snapshot and the automated backups when the stack is deleted. */
  readonly retain: boolean;
  readonly logRetentionDays: number;
  /** Why the production-only protections are off, for the cdk-nag acknowledgements; e.g. the stage name. */
  readonly stageName: string;
  /**
   * Days between automatic rotations of the admin credentials.
   * @default 30
   */
  readonly rotationDays?: number;
  /**
   * Login roles that get a secret of their own (generated password, KMS-encrypted, attached to the
   * instance), which the proxy also accepts: one per component (schemas/sql/0090_roles.sql).
   * @default none
   */
  readonly loginUsers?: readonly string[];
}

/**
 * PostgreSQL 16 in isolated subnets, encrypted, TLS enforced, credentials in Secrets Manager rotated
 * automatically, reachable only through a TLS-only RDS Proxy that only the functions may reach.
 */
export class Database extends Construct {
  readonly instance: rds.DatabaseInstance;
  readonly proxy: rds.DatabaseProxy;
  readonly secret: secretsmanager.ISecret;
  /** Login user -> its secret ({ username, password, host, ... }). */
  readonly logins: ReadonlyMap<string, secretsmanager.ISecret>;
  readonly securityGroup: ec2.SecurityGroup;
  readonly proxySecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const rotationDays = props.rotationDays ?? 30;
    if (props.deletionProtection && !props.retain)
      throw new Error(
        'database: deletionProtection without retain: the stack would delete its data but the instance would refuse to go, blocking every teardown',
      );
    if (
      !Number.isInteger(props.backupRetentionDays) ||
      props.backupRetentionDays < 1 ||
      props.backupRetentionDays > 35
    )
      throw new Error(
        `database: backupRetentionDays must be an integer from 1 to 35, got ${props.backupRetentionDays}`,
      );
    if (!Number.isInteger(props.allocatedStorageGb) || props.allocatedStorageGb < 20)
      throw new Error(
        `database: allocatedStorageGb must be an integer >= 20, got ${props.allocatedStorageGb}`,
      );
    if (!Number.isInteger(rotationDays) || rotationDays < 1 || rotationDays > 1000)
      throw new Error(`database: rotationDays must be an integer from 1 to 1000, got ${rotationDays}`);

    this.proxySecurityGroup = new ec2.SecurityGroup(this, 'ProxySecurityGroup', {
      vpc: props.vpc,
      description: 'RDS Proxy: only pipeline functions',
      allowAllOutbound: false,
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'PostgreSQL: only the RDS Proxy',
      allowAllOutbound: false,
    });
    this.proxySecurityGroup.connections.allowFrom(props.clients, ec2.Port.tcp(5432), 'functions to proxy');
    props.clients.connections.allowTo(this.proxySecurityGroup, ec2.Port.tcp(5432), 'functions to proxy');
    // Proxy -> database rules are added by addProxy below; secret rotation adds its own function's.

    const engine = rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16 });
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine,
      parameters: { 'rds.force_ssl': '1', log_min_duration_statement: '1000' },
    });
    this.instance = new rds.DatabaseInstance(this, 'Instance', {
      engine,
      instanceType: new ec2.InstanceType(props.instanceType),
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      credentials: rds.Credentials.fromGeneratedSecret('tickstock_admin', { encryptionKey: props.key }),
      databaseName: props.databaseName,
      allocatedStorage: props.allocatedStorageGb,
      storageEncrypted: true,
      storageEncryptionKey: props.key,
      multiAz: props.multiAz,
      deletionProtection: props.deletionProtection,
      backupRetention: Duration.days(props.backupRetentionDays),
      deleteAutomatedBackups: !props.retain,
      parameterGroup,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      cloudwatchLogsRetention: props.logRetentionDays as logs.RetentionDays,
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: props.key,
      monitoringInterval: Duration.seconds(60),
      autoMinorVersionUpgrade: true,
      iamAuthentication: true,
      removalPolicy: props.retain ? RemovalPolicy.SNAPSHOT : RemovalPolicy.DESTROY,
    });
    if (!this.instance.secret) throw new Error('database: the credentials secret was not created');
    this.secret = this.instance.secret;
    this.instance.addRotationSingleUser({
      automaticallyAfter: Duration.days(rotationDays),
      vpcSubnets: props.subnets,
    });
    const logins = new Map<string, secretsmanager.ISecret>();
    for (const username of props.loginUsers ?? []) {
      const login = new rds.DatabaseSecret(this, `Login-${username}`, { username, encryptionKey: props.key });
      logins.set(username, login.attach(this.instance));
      acknowledge(login, {
        'AwsSolutions-SMG4':
          'component login: the migrate function applies the secret to its role on every deploy; automatic rotation of these is a follow-up (README)',
        'HIPAA.Security-SecretsManagerRotationEnabled':
          'component login: the migrate function applies the secret to its role on every deploy; automatic rotation of these is a follow-up (README)',
      });
    }
    this.logins = logins;
    this.proxy = this.instance.addProxy('Proxy', {
      // The admin (migrations) and each component's own login.
      secrets: [this.secret, ...logins.values()],
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.proxySecurityGroup],
      requireTLS: true,
      debugLogging: false,
    });

    const notProd = `non-production stage "${props.stageName}": prod enables it (lib/config.ts)`;
    acknowledge(this.securityGroup, {
      'HIPAA.Security-EC2RestrictedCommonPorts': 'ingress only from the RDS Proxy security group on 5432',
      'HIPAA.Security-EC2RestrictedSSH': 'ingress only from the RDS Proxy security group on 5432; no SSH',
    });
    acknowledge(this.instance, {
      'AwsSolutions-RDS11':
        'clients reach PostgreSQL only through the RDS Proxy, which always listens on 5432; security groups admit only the proxy',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]':
        'AWS-maintained policy required by RDS enhanced monitoring',
      'HIPAA.Security-IAMNoInlinePolicy':
        'RDS Proxy role created by CDK, scoped to reading the one database secret',
      'HIPAA.Security-RDSInBackupPlan':
        'automated RDS backups with point-in-time recovery and a per-stage retention (30 days in prod) instead of an AWS Backup plan',
      ...(props.multiAz ? {} : { 'AwsSolutions-RDS3': notProd, 'HIPAA.Security-RDSMultiAZSupport': notProd }),
      ...(props.deletionProtection
        ? {}
        : { 'AwsSolutions-RDS10': notProd, 'HIPAA.Security-RDSInstanceDeletionProtectionEnabled': notProd }),
    });
    // CDK's log-retention function (for the log exports' retention) is a stack-level singleton.
    for (const child of Stack.of(this).node.children) {
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
  }
}
