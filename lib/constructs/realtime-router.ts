import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import { buildAlarm } from './defaults';
import { SingleTaskService } from './single-task-service';

/** The router process's EMF metrics (lambdas/realtime-router/metrics.ts): namespace and service. */
export const ROUTER_METRICS = { namespace: 'Tickstock', service: 'realtime-router' } as const;

/** Port of the client WebSocket (`/stream`) and `/health` inside the VPC. */
export const ROUTER_PORT = 4590;

export interface RealtimeRouterProps {
  readonly vpc: ec2.IVpc;
  /** Private subnets with NAT egress: the provider's socket is on the internet. */
  readonly subnets: ec2.SubnetSelection;
  /** The security group Redis admits the router from (its own is given access here). */
  readonly redisSecurityGroup: ec2.ISecurityGroup;
  readonly redis: {
    readonly host: string;
    readonly port: string;
    /** ElastiCache AUTH token: injected by ECS from Secrets Manager, never in the task definition. */
    readonly authSecret: secretsmanager.ISecret;
  };
  /** The provider's API key (Secrets Manager). */
  readonly apiKey: secretsmanager.ISecret;
  /** The provider's stocks WebSocket, e.g. wss://socket.massive.com/stocks. */
  readonly feedUrl: string;
  /** The provider's REST base (gap fill after a reconnect). */
  readonly restUrl: string;
  /** The RouterBars consumer's queue: completed minute bars go there (its variable and SendMessage only). */
  readonly barsQueue: sqs.IQueue;
  /**
   * The raw-frame archive: the data bucket, the prefix, and the data stack's managed policy that lets
   * a role put objects under that prefix and nothing else (kept in the data stack with the bucket).
   */
  readonly archive: {
    readonly bucketName: string;
    readonly prefix: string;
    readonly policy: iam.IManagedPolicy;
  };
  /** Encrypts the log group. */
  readonly logsKey: kms.IKey;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly alarmTopic: sns.ITopic;
  /** Variables every pipeline process gets (STAGE, LOG_LEVEL, ...). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * vCPU units and MiB of the task. The core is single-threaded: one vCPU, and memory for the dedup
   * windows, history and snapshot of 8,000 symbols at the surge rate with headroom.
   * @default 1024 / 2048
   */
  readonly cpu?: number;
  readonly memoryMiB?: number;
}

/**
 * The real-time router as an ECS Fargate service (issue 12): one long-lived task holding the
 * provider's socket (the provider allows one connection per cluster and account, so exactly one task,
 * and a deployment stops the old task before starting the new one; the new one fills the gap from
 * REST). Image built by CDK from this repository (lambdas/realtime-router/Dockerfile); provider key and
 * Redis AUTH token from Secrets Manager; a task role that may only send to the bars queue and put
 * objects under the archive prefix (its metrics are EMF lines on stdout); alarms on the metrics the
 * process publishes.
 */
export class RealtimeRouter extends Construct {
  readonly cluster: ecs.Cluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly service: ecs.FargateService;
  readonly securityGroup: ec2.SecurityGroup;
  /** The security group of app components allowed to connect to the router. */
  readonly clientSecurityGroup: ec2.SecurityGroup;
  readonly logGroup: logs.LogGroup;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: RealtimeRouterProps) {
    super(scope, id);
    const memoryMiB = props.memoryMiB ?? 2048;
    const task = new SingleTaskService(this, 'Service', {
      vpc: props.vpc,
      subnets: props.subnets,
      description: 'real-time router: provider socket and AWS APIs over HTTPS, Redis, its clients',
      httpsFor: 'provider socket and REST, ECR, Secrets Manager, CloudWatch Logs',
      dockerfile: 'lambdas/realtime-router/Dockerfile',
      containerName: 'router',
      cpu: props.cpu ?? 1024,
      memoryMiB,
      containerPort: ROUTER_PORT,
      environment: {
        ...props.environment,
        REALTIME_FEED_URL: props.feedUrl,
        MARKET_API_BASE_URL: props.restUrl,
        REDIS_HOST: props.redis.host,
        REDIS_PORT: props.redis.port,
        REDIS_TLS: 'required',
        ROUTER_HOST: '0.0.0.0',
        ROUTER_PORT: String(ROUTER_PORT),
        ROUTER_METRICS_INTERVAL_MS: '60000',
        QUEUE_URL_ROUTER_BARS: props.barsQueue.queueUrl,
        DATA_BUCKET: props.archive.bucketName,
        REALTIME_ARCHIVE_PREFIX: props.archive.prefix,
        POWERTOOLS_METRICS_NAMESPACE: ROUTER_METRICS.namespace,
        POWERTOOLS_SERVICE_NAME: ROUTER_METRICS.service,
        // V8's old space sized to the task, leaving room for buffers and the runtime.
        NODE_OPTIONS: `--max-old-space-size=${Math.floor(memoryMiB * 0.75)}`,
      },
      secrets: {
        POLYGON_API_KEY: { secret: props.apiKey },
        REDIS_AUTH_TOKEN: { secret: props.redis.authSecret },
      },
      healthCheck: { port: ROUTER_PORT, path: '/health', startPeriod: Duration.seconds(30) },
      stopTimeout: Duration.seconds(30),
      logsKey: props.logsKey,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
    });
    this.cluster = task.cluster;
    this.securityGroup = task.securityGroup;
    this.logGroup = task.logGroup;
    this.taskDefinition = task.taskDefinition;
    this.service = task.service;
    this.securityGroup.addEgressRule(props.redisSecurityGroup, ec2.Port.tcp(6379), 'router to redis');
    // App components that consume the stream join this group: nothing else reaches the router.
    this.clientSecurityGroup = new ec2.SecurityGroup(this, 'ClientSecurityGroup', {
      vpc: props.vpc,
      description: 'members may reach the real-time router (/stream, /health)',
      allowAllOutbound: false,
    });
    this.securityGroup.connections.allowFrom(
      this.clientSecurityGroup,
      ec2.Port.tcp(ROUTER_PORT),
      'app clients: /stream and /health',
    );
    // The rule sits in this stack (the router's), so the data stack never depends on compute.
    new ec2.CfnSecurityGroupIngress(this, 'RedisFromRouter', {
      groupId: props.redisSecurityGroup.securityGroupId,
      sourceSecurityGroupId: this.securityGroup.securityGroupId,
      ipProtocol: 'tcp',
      fromPort: 6379,
      toPort: 6379,
      description: 'real-time router to redis',
    });

    const metric = (name: string, statistic: string, period = Duration.minutes(1)) =>
      new cloudwatch.Metric({
        namespace: ROUTER_METRICS.namespace,
        metricName: name,
        dimensionsMap: { service: ROUTER_METRICS.service },
        statistic,
        period,
      });
    const alarm = (
      name: string,
      m: cloudwatch.IMetric,
      threshold: number,
      description: string,
      datapoints = 1,
    ) => {
      const a = buildAlarm(this, name, { metric: m, threshold, description, topic: props.alarmTopic });
      if (datapoints > 1) {
        const cfn = a.node.defaultChild as cloudwatch.CfnAlarm;
        cfn.evaluationPeriods = datapoints;
        cfn.datapointsToAlarm = datapoints;
      }
      return a;
    };
    this.alarms = [
      alarm(
        'FeedLagAlarm',
        metric('FeedLagMs', 'Maximum'),
        10_000,
        'router: provider events arrive 10 s or more after their time, 3 minutes running',
        3,
      ),
      alarm(
        'DisconnectsAlarm',
        metric('Disconnects', 'Sum', Duration.minutes(15)),
        3,
        'router: 3 or more provider disconnects in 15 minutes',
      ),
      alarm(
        'BufferDepthAlarm',
        metric('BufferDepth', 'Maximum'),
        20_000,
        'router: 20,000 or more messages waiting in channel and Redis buffers, 3 minutes running',
        3,
      ),
      alarm(
        'DroppedAlarm',
        metric('Dropped', 'Sum', Duration.minutes(5)),
        1,
        'router: messages dropped (full buffer, Redis sink overflow or a client gap)',
      ),
      alarm(
        'ConflatedAlarm',
        metric('Conflated', 'Sum', Duration.minutes(5)),
        10_000,
        'router: 10,000 or more quotes/FMV conflated in 5 minutes (slow clients or overflow)',
      ),
      alarm(
        'TickLatencyAlarm',
        metric('TickLatencyP99Ms', 'Maximum'),
        50,
        'router: tick p99 (frame receipt to client send) 50 ms or more, 3 minutes running',
        3,
      ),
    ];

    // The task role: send to the bars queue (and use its key), put archive objects; nothing else.
    const taskRole = this.taskDefinition.taskRole;
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.barsQueue.queueArn] }),
    );
    if (props.barsQueue.encryptionMasterKey) {
      taskRole.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [props.barsQueue.encryptionMasterKey.keyArn],
        }),
      );
    }
    taskRole.addManagedPolicy(props.archive.policy);
    acknowledge(taskRole, {
      'HIPAA.Security-IAMNoInlinePolicy':
        'one role-scoped policy on exactly this role: SendMessage on the bars queue and its key',
    });
  }
}
