import { Duration, IgnoreMode, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import { REPO_ROOT } from '../paths';

/** A secret ECS injects into the container: the whole value, or one JSON field of it. */
export interface InjectedSecret {
  readonly secret: secretsmanager.ISecret;
  readonly field?: string;
}

export interface SingleTaskServiceProps {
  readonly vpc: ec2.IVpc;
  /** Private subnets with NAT egress. */
  readonly subnets: ec2.SubnetSelection;
  /** The security group's description; it lets the task out on HTTPS only (add the rest). */
  readonly description: string;
  /** Why the task needs HTTPS out (the rule's description). */
  readonly httpsFor: string;
  /** The image's Dockerfile, relative to the repository root (context: package files, tsconfig, lambdas/). */
  readonly dockerfile: string;
  readonly containerName: string;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly environment: Readonly<Record<string, string>>;
  /** Referenced by ARN: the grants go on the execution role here, never on the data stack's secrets. */
  readonly secrets: Readonly<Record<string, InjectedSecret>>;
  /** The port and path the container's health check fetches inside the task. */
  readonly healthCheck: { readonly port: number; readonly path: string; readonly startPeriod: Duration };
  readonly containerPort?: number;
  readonly stopTimeout: Duration;
  /** Encrypts the log group. */
  readonly logsKey: kms.IKey;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * One long-lived ECS Fargate task, never two at once: the shape of a process that holds a
 * connection only one client may hold (the provider's socket, the broker's stream) or is its data's
 * single writer. A deployment stops the old task before starting the new one (min 0 / max 100 %),
 * rolled back by the circuit breaker. The image is built by CDK from this repository; secrets are
 * injected by ECS through the execution role (KMS use limited to Secrets Manager), so the task role
 * starts with no permission; the security group lets the task out on HTTPS only and nothing in.
 */
export class SingleTaskService extends Construct {
  readonly cluster: ecs.Cluster;
  readonly securityGroup: ec2.SecurityGroup;
  readonly logGroup: logs.LogGroup;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly service: ecs.FargateService;

  constructor(scope: Construct, id: string, props: SingleTaskServiceProps) {
    super(scope, id);
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: props.description,
      allowAllOutbound: false,
    });
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), props.httpsFor);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      encryptionKey: props.logsKey,
      removalPolicy: props.removalPolicy,
    });

    const secrets: Record<string, ecs.Secret> = {};
    const refs = new Map<string, secretsmanager.ISecret>();
    for (const [name, { secret, field }] of Object.entries(props.secrets)) {
      let ref = refs.get(secret.secretArn);
      if (!ref) {
        ref = secretsmanager.Secret.fromSecretCompleteArn(this, `SecretRef${refs.size}`, secret.secretArn);
        refs.set(secret.secretArn, ref);
      }
      secrets[name] = ecs.Secret.fromSecretsManager(ref, field);
    }
    const keyArns = [
      ...new Set(
        Object.values(props.secrets).flatMap(({ secret }) =>
          secret.encryptionKey ? [secret.encryptionKey.keyArn] : [],
        ),
      ),
    ];

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const { port, path, startPeriod } = props.healthCheck;
    this.taskDefinition.addContainer(props.containerName, {
      image: ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: props.dockerfile,
        // Only what the image build reads: the lockfile, the compiler settings and the code.
        ignoreMode: IgnoreMode.DOCKER,
        exclude: ['*', '!package.json', '!package-lock.json', '!tsconfig.json', '!lambdas'],
      }),
      essential: true,
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: props.containerName }),
      ...(props.containerPort !== undefined
        ? { portMappings: [{ containerPort: props.containerPort }] }
        : {}),
      environment: { ...props.environment },
      secrets,
      healthCheck: {
        command: [
          'CMD',
          'node',
          '-e',
          `fetch('http://127.0.0.1:${port}${path}').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
        ],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod,
      },
      stopTimeout: props.stopTimeout,
    });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: 1,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      circuitBreaker: { enable: true, rollback: true },
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      assignPublicIp: false,
      enableExecuteCommand: false,
    });

    const execution = this.taskDefinition.obtainExecutionRole();
    if (keyArns.length > 0) {
      execution.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: keyArns,
          conditions: {
            StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
          },
        }),
      );
    }
    acknowledge(execution, {
      'AwsSolutions-IAM5[Resource::*]':
        'ecr:GetAuthorizationToken supports no resource-level permission; image pull and secret reads are scoped to the repository, the injected secrets and their key',
      'HIPAA.Security-IAMNoInlinePolicy':
        'ECS task execution role created by CDK, scoped to this image, log group and the injected secrets',
    });
    acknowledge(this.taskDefinition, {
      'AwsSolutions-ECS2':
        'plain configuration only (hosts, URLs, ports, metric names); credentials are injected from Secrets Manager',
    });
  }
}
