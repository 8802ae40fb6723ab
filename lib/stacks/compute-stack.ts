import { ArnFormat, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import type { DatabaseComponent } from '../../lambdas/platform/database-components';
import type { StageConfig } from '../config';
import { Dashboard } from '../constructs/dashboard';
import { FRAME_ARCHIVE_PREFIX } from '../constructs/data-bucket';
import { buildAlarm } from '../constructs/defaults';
import { EodChain } from '../constructs/eod-chain';
import { HealthEtlAlarms } from '../constructs/health-alarms';
import { type FunctionPlatform, JobFunction } from '../constructs/job-function';
import { MigrationTrigger } from '../constructs/migration-trigger';
import { QueueConsumer } from '../constructs/queue-consumer';
import { RealtimeRouter } from '../constructs/realtime-router';
import { ScheduledJob } from '../constructs/scheduled-job';
import { TRADING_METRICS, TradingEngine } from '../constructs/trading-engine';
import { acknowledge } from '../nag';
import { CONSUMERS, type ConsumerDefinition, queuesSentToBy } from '../topology';
import { HEALTH_CONSUMERS } from '../topology/health';
import { EOD_CHAIN, SCHEDULED_JOBS } from '../topology/jobs';
import { MIGRATE, STATUS, STATUS_EVERY_MINUTES } from '../topology/operations';
import { TRADING_JOBS } from '../topology/trading';
import type { DataStack } from './data-stack';

export interface ComputeStackProps extends StackProps {
  readonly config: StageConfig;
  readonly data: DataStack;
  /**
   * The SQS consumers to deploy; tests pass their own.
   * @default CONSUMERS of lib/topology.ts
   */
  readonly consumers?: readonly ConsumerDefinition[];
}

/**
 * Stateless resources: the functions, their queues, schedules, alarms and the dashboard. Safe to
 * destroy and redeploy; everything durable lives in the data stack. Wiring only: what each function
 * is comes from lib/topology, how it is built from lib/constructs.
 */
export class ComputeStack extends Stack {
  readonly messagesKey: kms.Key;
  readonly alarmTopic: sns.Topic;
  readonly consumers: QueueConsumer[];
  readonly status: JobFunction;
  readonly migration: MigrationTrigger;
  readonly scheduleGroup: scheduler.ScheduleGroup;
  readonly eodChain: EodChain;
  readonly scheduledJobs: ScheduledJob[];
  /** Runs the status check every STATUS_EVERY_MINUTES (EventBridge rule). */
  readonly statusSchedule: events.Rule;
  readonly healthEtlAlarms: HealthEtlAlarms[];
  /** The real-time router service; AWS stages only (EMULATOR_COMPUTE_OMISSIONS). */
  readonly realtimeRouter?: RealtimeRouter;
  /** The trading live engine service; AWS stages only (EMULATOR_COMPUTE_OMISSIONS). */
  readonly tradingEngine?: TradingEngine;
  /** Every function of the stack by topology id, consumers included. */
  readonly functions: ReadonlyMap<string, JobFunction>;

  constructor(scope: Construct, id: string, props: ComputeStackProps) {
    super(scope, id, props);
    const { config, data } = props;
    const removalPolicy = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // Messages (queues, alarm topic) get a key of their own: S3 and CloudWatch must be allowed to use
    // it, and granting that on the data key would tie the data key's policy to this stack.
    this.messagesKey = new kms.Key(this, 'MessagesKey', {
      description: `tickstock ${config.name}: queues and alarm notifications`,
      enableKeyRotation: true,
      removalPolicy,
    });
    this.messagesKey.grantEncryptDecrypt(new iam.ServicePrincipal('cloudwatch.amazonaws.com'));
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `tickstock ${config.name} alarms`,
      masterKey: this.messagesKey,
      enforceSSL: true,
    });
    if (config.alarmEmail)
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));

    const network = data.functionNetwork;
    const platform: FunctionPlatform = {
      ...(network
        ? {
            vpc: network.vpc,
            securityGroups: [network.securityGroup],
            isolatedSubnets: network.isolatedSubnets,
            egressSubnets: network.egressSubnets,
          }
        : {}),
      encryptionKey: data.key,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
      environment: {
        STAGE: config.name,
        POWERTOOLS_METRICS_NAMESPACE: 'Tickstock',
        LOG_LEVEL: config.name === 'prod' ? 'INFO' : 'DEBUG',
        DATA_BUCKET: data.bucket.bucketName,
        ...data.stores.environment,
      },
      // What every pipeline function may use: the Redis credentials (database: its own login below).
      secrets: data.stores.secrets,
      provider: {
        baseUrl: config.marketData.baseUrl,
        callsPerMinute: config.marketData.callsPerMinute,
        apiKey: data.marketDataApiKey,
      },
      broker: { baseUrl: config.trading.brokerUrl, credentials: data.brokerCredentials },
    };

    // Each function connects as its component's database role, with that role's secret only.
    const platformFor = (component: DatabaseComponent | 'owner'): FunctionPlatform => {
      const secret =
        component === 'owner' ? data.stores.databaseOwner : data.stores.databaseLogins[component];
      return {
        ...platform,
        environment: { ...platform.environment, DB_SECRET_ARN: secret.secretArn },
        secrets: [...(platform.secrets ?? []), secret],
      };
    };

    this.consumers = (props.consumers ?? CONSUMERS).map((definition) => {
      const consumer = new QueueConsumer(this, definition.id, {
        definition,
        platform: platformFor(
          definition.databaseComponent ??
            (HEALTH_CONSUMERS.some((c) => c.id === definition.id) ? 'health' : 'market'),
        ),
        queueKey: this.messagesKey,
        alarmTopic: this.alarmTopic,
      });
      if (definition.s3Prefix) this.announceUploads(consumer, definition.s3Prefix, data);
      return consumer;
    });

    this.migration = new MigrationTrigger(this, MIGRATE.id, {
      definition: MIGRATE,
      platform: platformFor('owner'),
      executeAfter: data.stores.ready,
    });
    for (const consumer of this.consumers) consumer.node.addDependency(this.migration);

    // The owner applies each login secret's password to its role (lambdas/migrate).
    const logins = data.stores.databaseLogins;
    this.migration.job.bindSecrets(...Object.values(logins));
    this.migration.job.function.addEnvironment(
      'DB_LOGIN_SECRET_ARNS',
      this.toJsonString(Object.fromEntries(Object.entries(logins).map(([c, s]) => [c, s.secretArn]))),
    );

    this.status = new JobFunction(this, STATUS.id, {
      definition: STATUS,
      platform: platformFor('app'),
      reservedConcurrentExecutions: STATUS.reservedConcurrency,
      serviceName: 'status',
      environment: {
        ...(data.stores.redisReplicationGroupId
          ? { REDIS_REPLICATION_GROUP_ID: data.stores.redisReplicationGroupId }
          : {}),
        QUEUE_URLS: this.toJsonString(
          Object.fromEntries(
            this.consumers.flatMap((c) => [
              [c.definition.id, c.queue.queueUrl],
              [`${c.definition.id}DeadLetter`, c.deadLetterQueue.queueUrl],
            ]),
          ),
        ),
      },
    });
    this.grantStatusChecks(this.status, data);

    this.scheduleGroup = new scheduler.ScheduleGroup(this, 'EodSchedules', { removalPolicy });
    // EOD steps: one function each, a run at a time.
    const steps = EOD_CHAIN.map(
      (definition) => new JobFunction(this, definition.id, { definition, platform: platformFor('market') }),
    );
    this.eodChain = new EodChain(this, 'EodChain', {
      steps: EOD_CHAIN.map((definition, i) => ({
        id: definition.id,
        function: (steps[i] as JobFunction).function,
        ...(definition.observer ? { observer: true } : {}),
      })),
      scheduleGroup: this.scheduleGroup,
      hour: config.schedules.eodHour,
      minute: config.schedules.eodMinute,
      timeZone: config.schedules.timezone,
      everyMinutes: config.emulator?.eodEveryMinutes,
      messagesKey: this.messagesKey,
      logsKey: data.key,
      alarmTopic: this.alarmTopic,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
    });
    this.scheduledJobs = [
      ...SCHEDULED_JOBS.map(
        (definition) =>
          new ScheduledJob(this, definition.id, {
            definition,
            platform: platformFor('market'),
            scheduleGroup: this.scheduleGroup,
            deadLetterQueue: this.eodChain.deadLetterQueue,
            everyMinutes: config.emulator?.scheduledJobsEveryMinutes,
          }),
      ),
      // Reconciliation as the trading login, on the stage's rate: a scheduled run beside the
      // engine's own at start-up (differences have deterministic ids, so two runs never double one).
      ...TRADING_JOBS.map(
        (definition) =>
          new ScheduledJob(this, definition.id, {
            definition,
            platform: platformFor('trading'),
            scheduleGroup: this.scheduleGroup,
            deadLetterQueue: this.eodChain.deadLetterQueue,
            everyMinutes: config.emulator?.scheduledJobsEveryMinutes ?? config.trading.reconcileEveryMinutes,
          }),
      ),
    ];
    const tradingAlarms = TRADING_JOBS.flatMap((definition) => {
      const job = this.scheduledJobs.find((j) => j.job.definition.id === definition.id)?.job;
      if (!job) return [];
      return [
        buildAlarm(this, `${definition.id}ErrorsAlarm`, {
          metric: job.function.metricErrors({ period: Duration.minutes(60), statistic: 'Sum' }),
          threshold: 2,
          description: `${definition.id}: two or more failed runs in an hour (the broker or the database could not be read)`,
          topic: this.alarmTopic,
        }),
        buildAlarm(this, `${definition.id}DifferencesAlarm`, {
          metric: new cloudwatch.Metric({
            namespace: TRADING_METRICS.namespace,
            metricName: 'ReconciliationDifferences',
            dimensionsMap: { service: definition.id },
            statistic: 'Sum',
            period: Duration.minutes(60),
          }),
          threshold: 1,
          description: `${definition.id}: the scheduled reconciliation found a difference with the broker`,
          topic: this.alarmTopic,
        }),
      ];
    });

    // The pipeline status check on a schedule: a report in the logs every run, an alarm when a
    // component is unhealthy or when the check itself fails or stops reporting.
    // Undeliverable invocations go to the (messages-key encrypted) dead-letter queue of the jobs.
    this.messagesKey.grantEncryptDecrypt(new iam.ServicePrincipal('events.amazonaws.com'));
    this.statusSchedule = new events.Rule(this, 'StatusSchedule', {
      description: 'tickstock: the pipeline status check (PostgreSQL, Redis, S3, SQS) on a schedule',
      schedule: events.Schedule.rate(Duration.minutes(STATUS_EVERY_MINUTES)),
      targets: [
        new eventsTargets.LambdaFunction(this.status.function, {
          retryAttempts: 2,
          deadLetterQueue: this.eodChain.deadLetterQueue,
        }),
      ],
    });
    const statusPeriod = Duration.minutes(STATUS_EVERY_MINUTES * 3);
    const unhealthy = new cloudwatch.Alarm(this, 'StatusUnhealthyAlarm', {
      metric: new cloudwatch.Metric({
        namespace: 'Tickstock',
        metricName: 'UnhealthyComponents',
        dimensionsMap: { service: 'status' },
        statistic: 'Maximum',
        period: statusPeriod,
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // Three scheduled checks without a report: the check itself is not running.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: `status: a pipeline component is unhealthy, or the scheduled check (every ${STATUS_EVERY_MINUTES} min) stopped reporting; the log line 'pipeline unhealthy' names the component`,
    });
    unhealthy.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
    unhealthy.addOkAction(new cwActions.SnsAction(this.alarmTopic));
    buildAlarm(this, 'StatusErrorsAlarm', {
      metric: this.status.function.metricErrors({ period: statusPeriod, statistic: 'Sum' }),
      threshold: 1,
      description: 'status: the scheduled status check failed to run',
      topic: this.alarmTopic,
    });
    this.healthEtlAlarms = this.consumers
      .filter((c) => HEALTH_CONSUMERS.some((h) => h.id === c.definition.id))
      .map(
        (c) =>
          new HealthEtlAlarms(this, `${c.definition.id}Alarms`, {
            service: c.definition.id,
            topic: this.alarmTopic,
            metricMath: !config.emulator,
          }),
      );

    const functions = [
      ...this.consumers.map((c) => c.job),
      ...steps,
      ...this.scheduledJobs.map((j) => j.job),
      this.status,
      this.migration.job,
    ];
    this.functions = new Map(functions.map((f) => [f.definition.id, f]));
    // Queue URLs and send rights, for every function, from the topology's one derivation.
    for (const fn of functions) {
      for (const consumerId of queuesSentToBy(fn.definition)) fn.sendTo(consumerId, this.queueOf(consumerId));
    }

    if (network && data.cache) {
      const redis = data.cache.replicationGroup;
      this.realtimeRouter = new RealtimeRouter(this, 'RealtimeRouter', {
        vpc: network.vpc,
        subnets: network.egressSubnets,
        redisSecurityGroup: data.cache.securityGroup,
        redis: {
          host: redis.attrPrimaryEndPointAddress,
          port: redis.attrPrimaryEndPointPort,
          authSecret: data.cache.authSecret,
        },
        apiKey: data.marketDataApiKey,
        barsQueue: this.queueOf('RouterBars'),
        archive: {
          bucketName: data.bucket.bucketName,
          prefix: FRAME_ARCHIVE_PREFIX,
          policy: data.frameArchivePolicy,
        },
        feedUrl: config.marketData.realtimeUrl,
        restUrl: config.marketData.baseUrl,
        logsKey: data.key,
        logRetentionDays: config.logRetentionDays,
        removalPolicy,
        alarmTopic: this.alarmTopic,
        environment: { STAGE: config.name, LOG_LEVEL: config.name === 'prod' ? 'INFO' : 'DEBUG' },
      });
    }

    if (network && data.databaseStore) {
      this.tradingEngine = new TradingEngine(this, 'TradingEngine', {
        vpc: network.vpc,
        subnets: network.egressSubnets,
        databaseProxySecurityGroup: data.databaseStore.proxySecurityGroup,
        database: {
          host: data.databaseStore.proxy.endpoint,
          name: config.database.databaseName,
          login: data.stores.databaseLogins.trading,
        },
        brokerUrl: config.trading.brokerUrl,
        brokerCredentials: data.brokerCredentials,
        logsKey: data.key,
        logRetentionDays: config.logRetentionDays,
        removalPolicy,
        alarmTopic: this.alarmTopic,
        environment: { STAGE: config.name, LOG_LEVEL: config.name === 'prod' ? 'INFO' : 'DEBUG' },
      });
    }

    new Dashboard(this, 'Dashboard', {
      consumers: this.consumers,
      alarms: [
        ...this.eodChain.alarms,
        ...(this.realtimeRouter?.alarms ?? []),
        ...(this.tradingEngine?.alarms ?? []),
        ...tradingAlarms,
      ],
    });
  }

  private queueOf(consumerId: string) {
    const consumer = this.consumers.find((c) => c.definition.id === consumerId);
    if (!consumer) throw new Error(`no consumer "${consumerId}" in lib/topology.ts`);
    return consumer.queue;
  }

  /**
   * Announces uploads under a prefix on the consumer's queue. The bucket lives in the data stack; a
   * notification added from here is managed by CDK's notifications resource, which merges with
   * (never replaces) the bucket's other notifications.
   */
  private announceUploads(consumer: QueueConsumer, prefix: string, data: DataStack): void {
    const bucket = s3.Bucket.fromBucketAttributes(this, `${consumer.node.id}Bucket`, {
      bucketArn: data.bucket.bucketArn,
      encryptionKey: data.key,
    });
    bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.SqsDestination(consumer.queue), {
      prefix,
    });
    consumer.function.role?.addManagedPolicy(data.ingestAccessPolicy);
    acknowledge(bucket, {
      'HIPAA.Security-IAMNoInlinePolicy':
        'CDK-provided bucket-notifications function policy, scoped to this bucket',
    });
    // CDK's own function that writes bucket notification configurations (one per stack).
    for (const child of this.node.children) {
      if (!child.node.id.startsWith('BucketNotificationsHandler')) continue;
      acknowledge(child, {
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
          'CDK-provided bucket-notifications function: AWS-maintained policy for its own logs',
        'AwsSolutions-IAM5[Resource::*]':
          'CDK-provided bucket-notifications function: PutBucketNotification on the imported bucket',
        'HIPAA.Security-IAMNoInlinePolicy': 'CDK-provided bucket-notifications function role',
        'HIPAA.Security-LambdaConcurrency': 'CDK-provided deploy-time function, runs once per deployment',
        'HIPAA.Security-LambdaDLQ':
          'CDK-provided deploy-time function, invoked synchronously by CloudFormation',
        'HIPAA.Security-LambdaInsideVPC': 'CDK-provided deploy-time function calling only the S3 API',
      });
    }
  }

  /** What the status report reads, and nothing more: bucket existence, queue depths, the Redis group. */
  private grantStatusChecks(status: JobFunction, data: DataStack): void {
    const fn = status.function;
    // HeadBucket needs only ListBucket on the bucket itself: no object access.
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [data.bucket.bucketArn] }),
    );
    for (const consumer of this.consumers) {
      consumer.queue.grant(fn, 'sqs:GetQueueAttributes');
      consumer.deadLetterQueue.grant(fn, 'sqs:GetQueueAttributes');
    }
    const replicationGroupId = data.stores.redisReplicationGroupId;
    if (!replicationGroupId) return;
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['elasticache:DescribeReplicationGroups'],
        resources: [
          Stack.of(this).formatArn({
            service: 'elasticache',
            resource: 'replicationgroup',
            resourceName: replicationGroupId,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
  }
}
