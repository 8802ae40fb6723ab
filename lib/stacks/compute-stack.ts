import { ArnFormat, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as triggers from 'aws-cdk-lib/triggers';
import type { Construct } from 'constructs';
import type { DatabaseComponent } from '../../lambdas/platform/database-components';
import { queueUrlVariable } from '../../lambdas/platform/queues';
import type { StageConfig } from '../config';
import { EodChain } from '../constructs/eod-chain';
import { PipelineFunction } from '../constructs/pipeline-function';
import { QueueConsumer } from '../constructs/queue-consumer';
import { acknowledge, invokeVersionsFinding } from '../nag';
import { CONSUMERS, type ConsumerDefinition } from '../topology';
import { HEALTH_CONSUMERS } from '../topology/health';
import { EOD_CHAIN, type JobDefinition, SCHEDULED_JOBS } from '../topology/jobs';
import type { DataStack } from './data-stack';

/** Roles EventBridge Scheduler gets to invoke its targets. */
const SCHEDULER_ROLE_FINDINGS: Record<string, string> = {
  'HIPAA.Security-IAMNoInlinePolicy':
    'scheduler target role created by CDK, scoped to invoking its one target',
};

export interface ComputeStackProps extends StackProps {
  readonly config: StageConfig;
  readonly data: DataStack;
  /** Defaults to the pipeline's consumer list; tests pass their own. */
  readonly consumers?: readonly ConsumerDefinition[];
}

/**
 * Stateless resources: the functions, their queues, schedules, alarms and the dashboard. Safe to
 * destroy and redeploy; everything durable lives in the data stack.
 */
export class ComputeStack extends Stack {
  readonly messagesKey: kms.Key;
  readonly alarmTopic: sns.Topic;
  readonly consumers: QueueConsumer[];
  readonly statusFunction: PipelineFunction;
  readonly migrationFunction: PipelineFunction;
  readonly scheduleGroup: scheduler.ScheduleGroup;
  readonly eodChain: EodChain;

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

    const environment: Record<string, string> = {
      STAGE: config.name,
      POWERTOOLS_METRICS_NAMESPACE: 'Tickstock',
      LOG_LEVEL: config.name === 'prod' ? 'INFO' : 'DEBUG',
      DATA_BUCKET: data.bucket.bucketName,
      // DB_SECRET_ARN is per function: its component's login (useDatabaseLogin), the admin's only
      // for the migrate function.
      DB_HOST: data.proxy.endpoint,
      DB_NAME: config.database.databaseName,
      REDIS_HOST: data.redis.attrPrimaryEndPointAddress,
      REDIS_PORT: data.redis.attrPrimaryEndPointPort,
      REDIS_AUTH_SECRET_ARN: data.redisAuthSecret.secretArn,
    };
    const common = {
      vpc: data.vpc,
      securityGroups: [data.functionSecurityGroup],
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
      encryptionKey: data.key,
    };

    this.consumers = (props.consumers ?? CONSUMERS).map((definition) => {
      const consumer = new QueueConsumer(this, definition.id, {
        ...common,
        definition,
        queueKey: this.messagesKey,
        alarmTopic: this.alarmTopic,
        vpcSubnets: definition.needsInternet ? data.egressSubnets : data.isolatedSubnets,
        environment: {
          ...environment,
          ...(definition.needsInternet
            ? this.providerEnvironment(config, data, definition.maxConcurrency)
            : {}),
          POWERTOOLS_SERVICE_NAME: definition.id,
        },
      });
      this.useDatabaseLogin(consumer.function, data, consumerDatabaseRole(definition.id));
      if (definition.needsInternet) this.grantSecretRead(consumer.function, data, data.marketDataApiKey);
      if (definition.s3Prefix) {
        // The bucket lives in the data stack; a notification added from here is managed by CDK's
        // notifications resource, which merges with (never replaces) the bucket's other notifications.
        const bucket = s3.Bucket.fromBucketAttributes(this, `${definition.id}Bucket`, {
          bucketArn: data.bucket.bucketArn,
          encryptionKey: data.key,
        });
        bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.SqsDestination(consumer.queue), {
          prefix: definition.s3Prefix,
        });
        this.acknowledgeNotificationsHandler();
        consumer.function.role?.addManagedPolicy(data.ingestAccessPolicy);
        acknowledge(bucket, {
          'HIPAA.Security-IAMNoInlinePolicy':
            'CDK-provided bucket-notifications function policy, scoped to this bucket',
        });
      }
      return consumer;
    });

    this.statusFunction = new PipelineFunction(this, 'Status', {
      ...common,
      entry: 'lambdas/status/handler.ts',
      description: 'Pipeline health: PostgreSQL via the proxy, Redis, S3, SQS and the ElastiCache group',
      timeout: Duration.seconds(30),
      memorySize: 256,
      vpcSubnets: data.isolatedSubnets,
      reservedConcurrentExecutions: 2,
      environment: {
        ...environment,
        POWERTOOLS_SERVICE_NAME: 'status',
        REDIS_REPLICATION_GROUP_ID: data.redis.ref,
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
    const status = this.statusFunction.function;
    this.useDatabaseLogin(status, data, 'app');
    // HeadBucket needs only ListBucket on the bucket itself: no object access.
    status.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [data.bucket.bucketArn] }),
    );
    for (const consumer of this.consumers) {
      consumer.queue.grant(status, 'sqs:GetQueueAttributes');
      consumer.deadLetterQueue.grant(status, 'sqs:GetQueueAttributes');
    }
    status.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['elasticache:DescribeReplicationGroups'],
        resources: [
          Stack.of(this).formatArn({
            service: 'elasticache',
            resource: 'replicationgroup',
            resourceName: data.redis.ref,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );

    // Migrations run as a deploy-time step: a trigger invokes this function after the database and
    // proxy exist and whenever the function (i.e. the bundled SQL) changes, so every deploy leaves
    // the schema current before any consumer runs; a failing migration fails (and rolls back) the
    // deploy instead of surfacing later as handler errors.
    this.migrationFunction = new PipelineFunction(this, 'Migrate', {
      ...common,
      entry: 'lambdas/migrate/handler.ts',
      description: 'Applies schemas/sql migrations (deploy-time trigger)',
      timeout: Duration.minutes(5),
      memorySize: 256,
      vpcSubnets: data.isolatedSubnets,
      reservedConcurrentExecutions: 1,
      environment: {
        ...environment,
        DB_SECRET_ARN: data.databaseSecret.secretArn,
        POWERTOOLS_SERVICE_NAME: 'migrate',
        MIGRATIONS_DIR: './sql',
      },
      assetDirs: [{ from: 'schemas/sql', to: 'sql' }],
    });
    // The owner: the admin secret, and every login secret, whose passwords it applies to the roles.
    this.grantDataAccess(this.migrationFunction.function, data);
    this.grantSecretRead(this.migrationFunction.function, data, ...Object.values(data.databaseLogins));
    this.migrationFunction.function.addEnvironment(
      'DB_LOGIN_SECRET_ARNS',
      this.toJsonString(
        Object.fromEntries(Object.entries(data.databaseLogins).map(([c, s]) => [c, s.secretArn])),
      ),
    );
    new triggers.Trigger(this, 'MigrateOnDeploy', {
      handler: this.migrationFunction.function,
      executeAfter: [data.database, data.proxy],
      executeOnHandlerChange: true,
      timeout: Duration.minutes(5),
    });
    for (const consumer of this.consumers) consumer.node.addDependency(this.migrationFunction);

    this.scheduleGroup = new scheduler.ScheduleGroup(this, 'EodSchedules', { removalPolicy });

    // Jobs: one function each (a run at a time), with what it reaches: the provider, the queues it feeds.
    const jobFunction = (job: JobDefinition) => {
      const fn = new PipelineFunction(this, job.id, {
        ...common,
        entry: job.entry,
        description: job.description,
        timeout: Duration.seconds(job.timeoutSeconds),
        memorySize: job.memoryMb,
        vpcSubnets: job.needsInternet ? data.egressSubnets : data.isolatedSubnets,
        reservedConcurrentExecutions: 1,
        environment: {
          ...environment,
          ...(job.needsInternet ? this.providerEnvironment(config, data, 1) : {}),
          ...Object.fromEntries(
            (job.sendsTo ?? []).map((id) => [queueUrlVariable(id), this.consumerQueue(id).queueUrl]),
          ),
          POWERTOOLS_SERVICE_NAME: job.id,
        },
      }).function;
      this.useDatabaseLogin(fn, data, 'market');
      if (job.needsInternet) this.grantSecretRead(fn, data, data.marketDataApiKey);
      for (const id of job.sendsTo ?? []) this.grantSend(fn, this.consumerQueue(id));
      return fn;
    };
    this.eodChain = new EodChain(this, 'EodChain', {
      steps: EOD_CHAIN.map((job) => ({ id: job.id, function: jobFunction(job) })),
      scheduleGroup: this.scheduleGroup,
      hour: config.schedules.eodHour,
      minute: config.schedules.eodMinute,
      timeZone: config.schedules.timezone,
      messagesKey: this.messagesKey,
      logsKey: data.key,
      alarmTopic: this.alarmTopic,
      logRetentionDays: config.logRetentionDays,
      removalPolicy,
    });
    const scheduled = SCHEDULED_JOBS.map((job) => ({ job, fn: jobFunction(job) }));
    for (const { job, fn } of scheduled) {
      const schedule = new scheduler.Schedule(this, `${job.id}Schedule`, {
        description: job.description,
        scheduleGroup: this.scheduleGroup,
        schedule: scheduler.ScheduleExpression.rate(Duration.minutes(job.everyMinutes ?? 60)),
        target: new schedulerTargets.LambdaInvoke(fn, {
          input: scheduler.ScheduleTargetInput.fromObject({}),
          deadLetterQueue: this.eodChain.deadLetterQueue,
          retryAttempts: 2,
        }),
      });
      acknowledge(schedule, SCHEDULER_ROLE_FINDINGS);
    }
    // The scheduler's target roles are created at stack level, one per target.
    for (const child of this.node.children) {
      if (!child.node.id.startsWith('SchedulerRoleForTarget')) continue;
      acknowledge(child, {
        ...SCHEDULER_ROLE_FINDINGS,
        ...Object.fromEntries(
          scheduled.map(({ fn }) => [
            invokeVersionsFinding(fn),
            'the scheduler invokes its target function by version',
          ]),
        ),
      });
    }

    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(6) });
    for (const consumer of this.consumers) {
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: `${consumer.node.id}: queue`,
          left: [
            consumer.queue.metricApproximateNumberOfMessagesVisible(),
            consumer.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'dead letters' }),
          ],
          right: [consumer.queue.metricApproximateAgeOfOldestMessage()],
        }),
        new cloudwatch.GraphWidget({
          title: `${consumer.node.id}: function`,
          left: [
            consumer.function.metricInvocations(),
            consumer.function.metricErrors(),
            consumer.function.metricThrottles(),
          ],
          right: [consumer.function.metricDuration({ statistic: 'p95' })],
        }),
      );
    }
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'alarms',
        alarms: this.consumers.flatMap((c) => c.alarms),
        width: 24,
      }),
    );
  }

  /**
   * How a function reaches the market-data provider. The provider's limit is per account and each
   * container has its own token bucket, so each gets its share of the limit.
   */
  private providerEnvironment(
    config: StageConfig,
    data: DataStack,
    concurrency: number,
  ): Record<string, string> {
    return {
      MARKET_API_BASE_URL: config.marketData.baseUrl,
      POLYGON_API_KEY_SECRET_ARN: data.marketDataApiKey.secretArn,
      MARKET_API_CALLS_PER_MINUTE: String(
        Math.max(1, Math.floor(config.marketData.callsPerMinute / concurrency)),
      ),
    };
  }

  /** CDK's own function that writes bucket notification configurations (one per stack). */
  private acknowledgeNotificationsHandler(): void {
    for (const child of this.node.children) {
      if (child.node.id.startsWith('BucketNotificationsHandler')) {
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
  }

  /** SendMessage to one queue and the messages key it needs, without grantSendMessages' wildcards. */
  private grantSend(fn: iam.IGrantable, queue: sqs.IQueue): void {
    fn.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
    );
    fn.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.messagesKey.keyArn],
      }),
    );
  }

  private consumerQueue(id: string) {
    const consumer = this.consumers.find((c) => c.definition.id === id);
    if (!consumer) throw new Error(`no consumer "${id}" in lib/topology.ts`);
    return consumer.queue;
  }

  /** What every pipeline function may use: the database and Redis credentials. */
  private grantDataAccess(fn: iam.IGrantable, data: DataStack): void {
    this.grantSecretRead(fn, data, data.databaseSecret, data.redisAuthSecret);
  }

  /**
   * A function that connects as its component's database role: its DB_SECRET_ARN is that role's
   * login secret and it may read no other database secret (least privilege in PostgreSQL and IAM).
   */
  private useDatabaseLogin(fn: lambda.Function, data: DataStack, component: DatabaseComponent): void {
    const login = data.databaseLogins[component];
    fn.addEnvironment('DB_SECRET_ARN', login.secretArn);
    this.grantSecretRead(fn, data, login, data.redisAuthSecret);
  }

  /**
   * Read access to secrets encrypted with the data key, granted on the function's role only:
   * `Secret.grantRead` would also write the role into the data stack's key policy, making the data
   * stack depend on this one.
   */
  private grantSecretRead(fn: iam.IGrantable, data: DataStack, ...secrets: secretsmanager.ISecret[]): void {
    fn.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: secrets.map((s) => s.secretArn),
      }),
    );
    fn.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [data.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` } },
      }),
    );
  }
}

/** The database role a consumer connects as: the health ETL's, or the market jobs'. */
function consumerDatabaseRole(id: string): DatabaseComponent {
  return HEALTH_CONSUMERS.some((c) => c.id === id) ? 'health' : 'market';
}
