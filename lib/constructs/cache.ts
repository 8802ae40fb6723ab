import type { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';

export interface CacheProps {
  readonly vpc: ec2.IVpc;
  /** Subnets of the cache nodes (isolated ones). */
  readonly subnets: ec2.SubnetSelection;
  /** The only security group Redis admits (the functions'). */
  readonly clients: ec2.ISecurityGroup;
  /** Encrypts the data at rest and the AUTH token secret. */
  readonly key: kms.IKey;
  /** e.g. `cache.t4g.micro`. */
  readonly nodeType: string;
  /** Primary plus replicas, 1 to 6; 2 or more turns on automatic failover and Multi-AZ. */
  readonly nodes: number;
  readonly removalPolicy: RemovalPolicy;
  /** Shown in the console. */
  readonly description: string;
  /** Why the production-only protections are off, for the cdk-nag acknowledgements; e.g. the stage name. */
  readonly stageName: string;
  /**
   * Days of automatic snapshots (HIPAA asks for 15; Redis streams carry the app's messages).
   * @default 15
   */
  readonly snapshotRetentionDays?: number;
  /**
   * UTC window of the daily snapshot (hh:mm-hh:mm, at least 60 minutes).
   * @default ElastiCache picks one
   */
  readonly snapshotWindow?: string;
}

/** Redis 7 (ElastiCache replication group): TLS and AUTH required, encrypted at rest, functions only. */
export class Cache extends Construct {
  readonly replicationGroup: elasticache.CfnReplicationGroup;
  readonly authSecret: secretsmanager.Secret;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: CacheProps) {
    super(scope, id);
    if (!Number.isInteger(props.nodes) || props.nodes < 1 || props.nodes > 6)
      throw new Error(
        `cache: nodes must be an integer from 1 to 6 (primary plus up to 5 replicas), got ${props.nodes}`,
      );
    const snapshotRetentionDays = props.snapshotRetentionDays ?? 15;
    if (!Number.isInteger(snapshotRetentionDays) || snapshotRetentionDays < 0 || snapshotRetentionDays > 35)
      throw new Error(
        `cache: snapshotRetentionDays must be an integer from 0 to 35, got ${snapshotRetentionDays}`,
      );
    if (
      props.snapshotWindow !== undefined &&
      !/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/.test(props.snapshotWindow)
    )
      throw new Error(`cache: snapshotWindow must be hh:mm-hh:mm (UTC), got ${props.snapshotWindow}`);

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Redis: only pipeline functions',
      allowAllOutbound: false,
    });
    this.securityGroup.connections.allowFrom(props.clients, ec2.Port.tcp(6379), 'functions to redis');
    props.clients.connections.allowTo(this.securityGroup, ec2.Port.tcp(6379), 'functions to redis');

    this.authSecret = new secretsmanager.Secret(this, 'AuthToken', {
      description: 'ElastiCache Redis AUTH token',
      encryptionKey: props.key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: props.removalPolicy,
    });
    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'Subnets', {
      description: 'tickstock redis (isolated subnets)',
      subnetIds: props.vpc.selectSubnets(props.subnets).subnetIds,
    });
    const replicated = props.nodes >= 2;
    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'ReplicationGroup', {
      replicationGroupDescription: props.description,
      engine: 'redis',
      engineVersion: '7.1',
      cacheNodeType: props.nodeType,
      numCacheClusters: props.nodes,
      automaticFailoverEnabled: replicated,
      multiAzEnabled: replicated,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      atRestEncryptionEnabled: true,
      kmsKeyId: props.key.keyId,
      authToken: this.authSecret.secretValue.unsafeUnwrap(),
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [this.securityGroup.securityGroupId],
      snapshotRetentionLimit: snapshotRetentionDays,
      ...(props.snapshotWindow ? { snapshotWindow: props.snapshotWindow } : {}),
      autoMinorVersionUpgrade: true,
    });
    this.replicationGroup.applyRemovalPolicy(props.removalPolicy);

    const notProd = `non-production stage "${props.stageName}": prod enables it (lib/config.ts)`;
    acknowledge(this.replicationGroup, {
      'AwsSolutions-AEC5':
        'reachable only from the functions security group in isolated subnets, with TLS and AUTH required; port obfuscation adds nothing',
      ...(replicated ? {} : { 'AwsSolutions-AEC4': notProd }),
    });
    acknowledge(this.authSecret, {
      'AwsSolutions-SMG4':
        'ElastiCache AUTH tokens rotate with ModifyReplicationGroup (ROTATE then SET), a documented operator procedure (README); there is no managed rotation function for them',
      'HIPAA.Security-SecretsManagerRotationEnabled':
        'see AwsSolutions-SMG4: AUTH token rotation is an operator procedure',
    });
  }
}
