import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { BACKFILL_QUEUE } from '../../lambdas/market/backfill/job';
import { queueUrlVariable } from '../../lambdas/platform/queues';
import { STAGES, type StageName, streamMaxLen } from '../../lib/config';
import type { JobFunction } from '../../lib/constructs/job-function';
import { applyNag } from '../../lib/nag';
import { REPO_ROOT } from '../../lib/paths';
import { PipelineStage } from '../../lib/pipeline-stage';
import { CONSUMERS, type ConsumerDefinition, OUTBOX_QUEUES, queuesSentToBy } from '../../lib/topology';
import { EOD_CHAIN, SCHEDULED_JOBS } from '../../lib/topology/jobs';
import { TRADING_JOBS } from '../../lib/topology/trading';

// A consumer fed by S3 and one that calls the provider, so the construct is exercised whatever the
// pipeline's own list holds.
const TEST_CONSUMERS: ConsumerDefinition[] = [
  ...CONSUMERS,
  {
    id: 'InfraTestIngest',
    entry: 'lambdas/status/handler.ts',
    description: 'infra test consumer',
    batchSize: 5,
    maxBatchingWindowSeconds: 2,
    maxReceiveCount: 4,
    timeoutSeconds: 30,
    memoryMb: 512,
    maxConcurrency: 3,
    maxMessageAgeSeconds: 300,
    s3Prefix: 'raw/',
  },
  {
    id: 'InfraTestProvider',
    entry: 'lambdas/status/handler.ts',
    description: 'infra test consumer with internet access',
    batchSize: 1,
    maxBatchingWindowSeconds: 0,
    maxReceiveCount: 2,
    timeoutSeconds: 60,
    memoryMb: 256,
    maxConcurrency: 2,
    maxMessageAgeSeconds: 600,
    needsInternet: true,
  },
];

// The feature flags of cdk.json, as `cdk synth` applies them.
const CDK_CONTEXT = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }
).context;

function synth(name: StageName) {
  // Bundling is skipped: these tests look at the templates, not the code assets.
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const stage = new PipelineStage(app, `Test-${name}`, { config: STAGES[name], consumers: TEST_CONSUMERS });
  applyNag(app);
  app.synth();
  return { stage, data: Template.fromStack(stage.data), compute: Template.fromStack(stage.compute) };
}

const dev = synth('dev');
const prod = synth('prod');

interface PolicyStatementJson {
  readonly Action: string | string[];
  readonly Resource: unknown;
}

function resourcesOf(template: Template, type: string): [string, { Properties: Record<string, unknown> }][] {
  return Object.entries(template.findResources(type)) as [string, { Properties: Record<string, unknown> }][];
}

describe('queues and consumers', () => {
  it('gives every queue a dead-letter queue with maxReceiveCount, except the dead-letter queues themselves', () => {
    const queues = resourcesOf(dev.compute, 'AWS::SQS::Queue');
    const withRedrive = queues.filter(([, q]) => q.Properties.RedrivePolicy);
    const deadLetterIds = new Set(
      withRedrive.map(([, q]) => {
        const policy = q.Properties.RedrivePolicy as {
          deadLetterTargetArn: { 'Fn::GetAtt': [string, string] };
          maxReceiveCount: number;
        };
        expect(policy.maxReceiveCount).toBeGreaterThan(0);
        return policy.deadLetterTargetArn['Fn::GetAtt'][0];
      }),
    );
    expect(withRedrive).toHaveLength(TEST_CONSUMERS.length);
    // The EOD chain's dead-letter queue receives failed executions and schedule deliveries.
    const isEodDeadLetter = (id: string) => id.startsWith('EodChainDeadLetterQueue');
    for (const [id] of queues) {
      expect(withRedrive.some(([rid]) => rid === id) || deadLetterIds.has(id) || isEodDeadLetter(id)).toBe(
        true,
      );
    }
  });

  it('reports batch item failures on every SQS event source mapping, with the topology batch settings', () => {
    const mappings = resourcesOf(dev.compute, 'AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(TEST_CONSUMERS.length);
    for (const [, m] of mappings)
      expect(m.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    dev.compute.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 5,
      MaximumBatchingWindowInSeconds: 2,
      ScalingConfig: { MaximumConcurrency: 3 },
    });
  });

  it('sets the visibility timeout to six times the function timeout', () => {
    dev.compute.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 180,
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 4 }),
    });
  });

  it('encrypts every queue with the data key and denies non-TLS access', () => {
    for (const [, q] of resourcesOf(dev.compute, 'AWS::SQS::Queue'))
      expect(q.Properties.KmsMasterKeyId).toBeDefined();
    const policies = resourcesOf(dev.compute, 'AWS::SQS::QueuePolicy');
    expect(policies.length).toBeGreaterThanOrEqual(TEST_CONSUMERS.length * 2);
    for (const [, p] of policies) {
      expect(JSON.stringify(p.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('alarms on DLQ depth, oldest message age, errors and throttles for each consumer, to the SNS topic', () => {
    const alarms = resourcesOf(dev.compute, 'AWS::CloudWatch::Alarm').filter(
      ([id]) =>
        !id.startsWith('EodChain') &&
        !id.startsWith('RealtimeRouter') &&
        !id.startsWith('Trading') &&
        !id.startsWith('HealthEtlAlarms') &&
        !id.startsWith('Status'),
    );
    expect(alarms).toHaveLength(TEST_CONSUMERS.length * 4);
    const metrics = alarms.map(([, a]) => a.Properties.MetricName).sort();
    expect(new Set(metrics)).toEqual(
      new Set(['ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage', 'Errors', 'Throttles']),
    );
    for (const [, a] of alarms) expect(a.Properties.AlarmActions).toHaveLength(1);
    dev.compute.resourceCountIs('AWS::SNS::Topic', 1);
    dev.compute.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('alarms on the health ETL quarantine rate (metric math), low quality, failed and dropped files', () => {
    const alarms = resourcesOf(dev.compute, 'AWS::CloudWatch::Alarm').filter(([id]) =>
      id.startsWith('HealthEtlAlarms'),
    );
    expect(alarms).toHaveLength(4);
    const rate = alarms.find(([id]) => id.includes('QuarantineRate'))?.[1].Properties as {
      Metrics: {
        Expression?: string;
        MetricStat?: { Metric: { MetricName: string; Dimensions: unknown } };
      }[];
      Threshold: number;
    };
    expect(rate.Metrics.find((m) => m.Expression)?.Expression).toBe(
      'IF(decided >= 5, 100 * quarantined / decided, 0)',
    );
    expect(
      rate.Metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : [])).sort(),
    ).toEqual(['FilesDecided', 'FilesQuarantined']);
    expect(rate.Metrics.find((m) => m.MetricStat)?.MetricStat?.Metric.Dimensions).toEqual([
      { Name: 'service', Value: 'HealthEtl' },
    ]);
    const low = alarms.find(([id]) => id.includes('LowQuality'))?.[1].Properties;
    expect(low).toMatchObject({
      MetricName: 'QualityScore',
      Statistic: 'Average',
      Threshold: 0.8,
      ComparisonOperator: 'LessThanThreshold',
    });
    expect(
      alarms
        .map(([, a]) => a.Properties.MetricName)
        .filter(Boolean)
        .sort(),
    ).toEqual(['FilesDropped', 'FilesFailed', 'QualityScore']);
    for (const [, a] of alarms) expect(a.Properties.AlarmActions).toHaveLength(1);
  });

  it('runs the status check every 5 minutes (EventBridge rule) and alarms when it is unhealthy or silent', () => {
    const rules = resourcesOf(dev.compute, 'AWS::Events::Rule');
    expect(rules).toHaveLength(1);
    const rule = rules[0]?.[1].Properties as {
      ScheduleExpression: string;
      Targets: { Arn: { 'Fn::GetAtt': string[] }; RetryPolicy: unknown; DeadLetterConfig: unknown }[];
    };
    expect(rule.ScheduleExpression).toBe('rate(5 minutes)');
    expect(rule.Targets).toHaveLength(1);
    expect(rule.Targets[0]?.Arn['Fn::GetAtt'][0]).toMatch(/^Status/);
    expect(rule.Targets[0]?.RetryPolicy).toEqual({ MaximumRetryAttempts: 2 });
    expect(rule.Targets[0]?.DeadLetterConfig).toBeDefined();
    const unhealthy = resourcesOf(dev.compute, 'AWS::CloudWatch::Alarm').find(([id]) =>
      id.startsWith('StatusUnhealthyAlarm'),
    )?.[1].Properties;
    expect(unhealthy).toMatchObject({
      MetricName: 'UnhealthyComponents',
      Namespace: 'Tickstock',
      Dimensions: [{ Name: 'service', Value: 'status' }],
      TreatMissingData: 'breaching',
    });
  });

  it('announces raw/ uploads to the ingest queue through an S3 notification', () => {
    dev.compute.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [
          Match.objectLike({
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'raw/' }] } },
          }),
        ],
      },
    });
  });
});

describe('functions', () => {
  it('runs every pipeline function on arm64 in the VPC with tracing and a log group of its own', () => {
    const functions = resourcesOf(dev.compute, 'AWS::Lambda::Function').filter(
      ([, f]) => (f.Properties.Description as string | undefined) !== undefined && f.Properties.VpcConfig,
    );
    expect(functions.length).toBe(
      TEST_CONSUMERS.length + 2 + EOD_CHAIN.length + SCHEDULED_JOBS.length + TRADING_JOBS.length,
    );
    for (const [, f] of functions) {
      expect(f.Properties.Architectures).toEqual(['arm64']);
      expect(f.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(f.Properties.LoggingConfig).toBeDefined();
      expect(f.Properties.KmsKeyArn).toBeDefined();
    }
  });

  it('runs migrations as a deploy-time trigger after the database and proxy', () => {
    dev.compute.resourceCountIs('Custom::Trigger', 1);
    dev.compute.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ MIGRATIONS_DIR: './sql' }) },
    });
  });

  it('gives the EOD schedules a scheduler group', () => {
    dev.compute.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
  });
});

describe('EOD chain', () => {
  const [[, machine]] = resourcesOf(dev.compute, 'AWS::StepFunctions::StateMachine') as [
    [string, { Properties: Record<string, unknown> }],
  ];
  const definition = JSON.stringify(machine.Properties.DefinitionString);

  it('runs the steps in order, each retried and caught into the dead-letter queue, traced and logged', () => {
    const positions = EOD_CHAIN.map((step) => definition.indexOf(`\\"${step.id}\\":{`));
    for (const p of positions) expect(p).toBeGreaterThan(-1);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(definition.match(/\\"Retry\\"/g)).toHaveLength(EOD_CHAIN.length);
    expect(definition.match(/\\"Catch\\"/g)).toHaveLength(EOD_CHAIN.length);
  });

  it('lets a failed observer (the quality check) alarm and continue; every other step stops the chain', () => {
    const states = JSON.parse(
      (machine.Properties.DefinitionString as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1]
        .map((part) => (typeof part === 'string' ? part : 'ref'))
        .join(''),
    ) as { States: Record<string, { Next?: string; Catch?: { Next: string }[] }> };
    const observers = EOD_CHAIN.filter((s) => s.observer).map((s) => s.id);
    const next = (id: string) => states.States[id]?.Next;

    expect(observers).toEqual(['QualityCheck', 'EtfCorrelation']);
    for (const step of EOD_CHAIN.slice(1)) {
      const catchTo = states.States[step.id]?.Catch?.[0]?.Next;
      if (step.observer) {
        // Caught into the metric, which goes on to the very step that follows on success.
        expect(catchTo).toBe(`${step.id}Failed`);
        expect(next(`${step.id}Failed`)).toBe(next(step.id));
        expect(states.States[step.id]).toHaveProperty('Retry');
      } else {
        expect(catchTo).toBe('RecordFailure');
      }
    }
    expect(next('QualityCheck')).toBe('EodComplete');
    expect(definition).toContain('MarketClosed');
    expect(machine.Properties.TracingConfiguration).toEqual({ Enabled: true });
    expect(machine.Properties.LoggingConfiguration).toMatchObject({ Level: 'ALL' });
  });

  it('starts on weekdays after the close in New York, with a dead-letter queue for failed deliveries', () => {
    dev.compute.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 16 ? * MON-FRI *)',
      ScheduleExpressionTimezone: 'America/New_York',
      Target: Match.objectLike({
        DeadLetterConfig: Match.objectLike({ Arn: Match.anyValue() }),
        RetryPolicy: Match.anyValue(),
      }),
    });
  });

  it('alarms on failed and timed-out executions and on its dead-letter queue', () => {
    const names = resourcesOf(dev.compute, 'AWS::CloudWatch::Alarm')
      .filter(([id]) => id.startsWith('EodChain'))
      .map(([, a]) => a.Properties.MetricName)
      .sort();
    expect(names).toEqual([
      'ApproximateNumberOfMessagesVisible',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
      // One per observer step (quality check, ETF correlation).
      'ObserverStepFailed',
      'ObserverStepFailed',
    ]);
  });
});

describe('queue senders', () => {
  const compute = dev.stage.compute;
  const logicalId = (c: IConstruct) => compute.getLogicalId(c.node.defaultChild as CfnElement);
  const queueIds = new Map(compute.consumers.map((c) => [logicalId(c.queue), c.definition.id]));
  const sendersOf = (queueId: string) =>
    [...compute.functions.values()]
      .filter((fn) => sentQueues(fn).includes(queueId))
      .map((fn) => fn.definition.id)
      .sort();
  /** Consumer ids of the queues a function's role may SendMessage to. */
  function sentQueues(fn: JobFunction): string[] {
    const role = logicalId(fn.function.role as IConstruct);
    return resourcesOf(dev.compute, 'AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(`"${role}"`))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: PolicyStatementJson[] }).Statement)
      .filter((st) => [st.Action].flat().includes('sqs:SendMessage'))
      .flatMap((st) => [st.Resource].flat())
      .map((r) => queueIds.get((r as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]) ?? 'unknown')
      .sort();
  }
  function queueVariables(fn: JobFunction): string[] {
    const [, resource] = resourcesOf(dev.compute, 'AWS::Lambda::Function').find(
      ([id]) => id === logicalId(fn.function),
    ) ?? ['', { Properties: {} }];
    const variables = (resource.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    return Object.keys(variables)
      .filter((k) => k.startsWith('QUEUE_URL_'))
      .sort();
  }

  it('gives every function the URL of and SendMessage on exactly the queues the topology derives for it', () => {
    expect(compute.functions.size).toBe(
      TEST_CONSUMERS.length + EOD_CHAIN.length + SCHEDULED_JOBS.length + TRADING_JOBS.length + 2,
    );
    for (const fn of compute.functions.values()) {
      const expected = queuesSentToBy(fn.definition).sort();
      expect({ id: fn.definition.id, queues: sentQueues(fn) }).toEqual({
        id: fn.definition.id,
        queues: expected,
      });
      expect({ id: fn.definition.id, variables: queueVariables(fn) }).toEqual({
        id: fn.definition.id,
        variables: expected.map(queueUrlVariable).sort(),
      });
    }
  });

  it('lets every outbox relay (backfill worker, IPO scan, quality check, EOD complete, universe sync, ETF correlation) reach the backfill queue', () => {
    // The outbox holds backfill jobs whoever relays it: a relay without the queue fails the chain
    // with QueueDoesNotExist (issue 18).
    expect(sendersOf('Backfill')).toEqual([
      'Backfill',
      'EodComplete',
      'EtfCorrelation',
      'IpoScan',
      'QualityCheck',
      'UniverseSync',
    ]);
    expect(sendersOf('EquityProcessing')).toEqual(['EquityDispatch']);
    expect(OUTBOX_QUEUES).toContain(BACKFILL_QUEUE);
  });
});

describe('data at rest and in transit', () => {
  it('keeps the data bucket private, KMS-encrypted, versioned and TLS-only, with quarantine expiry', () => {
    dev.data.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) }),
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'quarantine/', ExpirationInDays: 30 })]),
      },
    });
    const policies = resourcesOf(dev.data, 'AWS::S3::BucketPolicy');
    for (const [, p] of policies)
      expect(JSON.stringify(p.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });

  it('encrypts PostgreSQL, keeps it private behind a TLS-only RDS Proxy with credentials in Secrets Manager', () => {
    dev.data.hasResourceProperties('AWS::RDS::DBInstance', {
      StorageEncrypted: true,
      KmsKeyId: Match.anyValue(),
      PubliclyAccessible: false,
      MasterUserPassword: Match.objectLike({ 'Fn::Join': Match.anyValue() }),
    });
    dev.data.hasResourceProperties('AWS::RDS::DBProxy', { RequireTLS: true, EngineFamily: 'POSTGRESQL' });
    dev.data.hasResourceProperties('AWS::RDS::DBParameterGroup', {
      Parameters: Match.objectLike({ 'rds.force_ssl': '1' }),
    });
    dev.data.resourceCountIs('AWS::SecretsManager::RotationSchedule', 1);
  });

  it('requires TLS and AUTH on Redis, encrypted at rest with the data key', () => {
    dev.data.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      TransitEncryptionEnabled: true,
      TransitEncryptionMode: 'required',
      AtRestEncryptionEnabled: true,
      KmsKeyId: Match.anyValue(),
      AuthToken: Match.objectLike({
        'Fn::Join': Match.arrayWith([Match.arrayWith(['{{resolve:secretsmanager:'])]),
      }),
    });
  });
});

describe('network', () => {
  it('places the database, proxy and Redis in isolated subnets with S3, SQS and Secrets Manager endpoints', () => {
    const isolated = resourcesOf(dev.data, 'AWS::EC2::Subnet')
      .filter(([, s]) =>
        (s.Properties.Tags as { Key: string; Value: string }[]).some((t) => t.Value === 'Isolated'),
      )
      .map(([id]) => id);
    expect(isolated.length).toBe(STAGES.dev.network.maxAzs);
    const [[, subnetGroup]] = resourcesOf(dev.data, 'AWS::RDS::DBSubnetGroup') as [
      [string, { Properties: { SubnetIds: { Ref: string }[] } }],
    ];
    expect(subnetGroup.Properties.SubnetIds.map((s) => s.Ref).sort()).toEqual([...isolated].sort());
    const [[, redisSubnets]] = resourcesOf(dev.data, 'AWS::ElastiCache::SubnetGroup') as [
      [string, { Properties: { SubnetIds: { Ref: string }[] } }],
    ];
    expect(redisSubnets.Properties.SubnetIds.map((s) => s.Ref).sort()).toEqual([...isolated].sort());
    const services = resourcesOf(dev.data, 'AWS::EC2::VPCEndpoint').map(([, e]) =>
      JSON.stringify(e.Properties.ServiceName),
    );
    for (const name of ['.s3', '.sqs', '.secretsmanager'])
      expect(services.some((s) => s.includes(name))).toBe(true);
    dev.data.resourceCountIs('AWS::EC2::NatGateway', STAGES.dev.network.natGateways);
  });

  it('admits only functions to the proxy and Redis, and only the proxy (and secret rotation) to the database', () => {
    const groupOf = (ref: unknown) =>
      (ref as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '');
    const pairs = resourcesOf(dev.data, 'AWS::EC2::SecurityGroupIngress')
      .map(([, r]) => {
        expect(r.Properties.CidrIp).toBeUndefined();
        return `${groupOf(r.Properties.SourceSecurityGroupId)} -> ${groupOf(r.Properties.GroupId)}`;
      })
      .sort();
    expect(pairs).toEqual([
      'DatabaseInstanceRotationSingleUserSecurityGroup -> DatabaseSecurityGroup',
      'DatabaseProxySecurityGroup -> DatabaseSecurityGroup',
      'NetworkFunctionSecurityGroup -> CacheSecurityGroup',
      'NetworkFunctionSecurityGroup -> DatabaseProxySecurityGroup',
    ]);
    for (const [, g] of resourcesOf(dev.data, 'AWS::EC2::SecurityGroup')) {
      const inline = (g.Properties.SecurityGroupIngress ?? []) as { CidrIp?: string; FromPort?: number }[];
      // Only the interface endpoints take inline ingress: HTTPS from inside the VPC.
      for (const rule of inline) expect(rule.FromPort).toBe(443);
    }
  });

  it('puts provider- and broker-calling functions behind NAT and every other function in isolated subnets', () => {
    const fns = resourcesOf(dev.compute, 'AWS::Lambda::Function').filter(([, f]) => f.Properties.VpcConfig);
    const subnetImports = fns.map(([, f]) =>
      JSON.stringify((f.Properties.VpcConfig as { SubnetIds: unknown }).SubnetIds),
    );
    const needInternet = [...TEST_CONSUMERS, ...EOD_CHAIN, ...SCHEDULED_JOBS, ...TRADING_JOBS].filter(
      (c) => c.needsInternet || c.needsBroker,
    );
    expect(needInternet.length).toBeGreaterThan(0);
    expect(subnetImports.filter((s) => s.includes('egress'))).toHaveLength(needInternet.length);
    dev.compute.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ POLYGON_API_KEY_SECRET_ARN: Match.anyValue() }) },
    });
  });
});

describe('trading', () => {
  it('reconciles on a schedule as the trading login, behind NAT, with the broker keys and nothing of the provider', () => {
    const found = resourcesOf(dev.compute, 'AWS::Lambda::Function').filter(([id]) =>
      id.startsWith('TradingReconcile'),
    );
    expect(found).toHaveLength(1);
    const fn = (found[0] as (typeof found)[number])[1];
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.BROKER_BASE_URL).toBe(STAGES.dev.trading.brokerUrl);
    expect(JSON.stringify(env.BROKER_CREDENTIALS_SECRET_ARN)).toContain('BrokerCredentials');
    expect(JSON.stringify(env.DB_SECRET_ARN)).toContain('tradinglogin');
    expect(env.POLYGON_API_KEY_SECRET_ARN).toBeUndefined();
    expect(JSON.stringify((fn.Properties.VpcConfig as { SubnetIds: unknown }).SubnetIds)).toContain('egress');
    dev.compute.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: `rate(${STAGES.dev.trading.reconcileEveryMinutes} minutes)`,
    });
    // The live engine is a container service in AWS stages (its own test: test/infra/trading-engine.test.ts).
    dev.compute.resourceCountIs('AWS::ECS::Service', 2);
  });
});

describe('production protections', () => {
  it('turns on Multi-AZ, deletion protection and long backups in prod only', () => {
    prod.data.hasResourceProperties('AWS::RDS::DBInstance', {
      MultiAZ: true,
      DeletionProtection: true,
      BackupRetentionPeriod: 30,
    });
    dev.data.hasResourceProperties('AWS::RDS::DBInstance', { MultiAZ: false, DeletionProtection: false });
    prod.data.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      MultiAZEnabled: true,
      AutomaticFailoverEnabled: true,
      NumCacheClusters: 3,
      SnapshotRetentionLimit: 35,
      SnapshotWindow: STAGES.prod.redis.snapshotWindow,
    });
    dev.data.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      MultiAZEnabled: false,
      SnapshotRetentionLimit: 15,
    });
    // Staging fails over like prod (a replica in another AZ), so failover is rehearsed before prod.
    expect(STAGES.staging.redis.nodes).toBeGreaterThanOrEqual(2);
  });

  it("sizes each event stream by the stage's stated retention window and gives the cap to every function", () => {
    expect(streamMaxLen(STAGES.prod.redis)).toBe(72 * 5_000);
    expect(streamMaxLen(STAGES.dev.redis)).toBe(24 * 2_000);
    for (const [stage, template] of [
      ['prod', prod],
      ['dev', dev],
    ] as const) {
      // Every function that reaches Redis
      const withRedis = resourcesOf(template.compute, 'AWS::Lambda::Function')
        .map(
          ([, f]) =>
            (f.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables,
        )
        .filter((v) => v?.REDIS_HOST !== undefined);
      expect(withRedis.length, stage).toBeGreaterThan(0);
      expect([...new Set(withRedis.map((v) => v?.EVENT_BUS_MAX_LEN))], stage).toEqual([
        String(streamMaxLen(STAGES[stage].redis)),
      ]);
    }
  });

  it('retains data resources on stack deletion in prod and not in dev', () => {
    const bucketPolicy = (t: Template) =>
      Object.values(t.findResources('AWS::S3::Bucket')).map(
        (b) => (b as { DeletionPolicy: string }).DeletionPolicy,
      );
    expect(new Set(bucketPolicy(prod.data))).toEqual(new Set(['Retain']));
    expect(new Set(bucketPolicy(dev.data))).toEqual(new Set(['Delete']));
    prod.data.hasResource('AWS::RDS::DBInstance', { DeletionPolicy: 'Snapshot' });
  });
});

describe('cdk-nag', () => {
  it('synthesizes dev, staging and prod with no unacknowledged AwsSolutions or HIPAA finding', () => {
    for (const name of ['dev', 'staging', 'prod'] as const) expect(() => synth(name)).not.toThrow();
    // Three full synths: on a machine loaded by the whole suite they outlast the default timeout.
  }, 300_000);

  it('fails synth on an unacknowledged finding', () => {
    const app = new App();
    const stack = new Stack(app, 'Unsafe');
    new sqs.Queue(stack, 'Plain', { retentionPeriod: Duration.days(1) });
    applyNag(app);
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3|AwsSolutions-SQS4/);
  });
});
