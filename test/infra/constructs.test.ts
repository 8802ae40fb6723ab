import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { Cache } from '../../lib/constructs/cache';
import { Dashboard } from '../../lib/constructs/dashboard';
import { DataBucket } from '../../lib/constructs/data-bucket';
import { Database } from '../../lib/constructs/database';
import { buildAlarm, buildQueueWithDeadLetter } from '../../lib/constructs/defaults';
import { EodChain } from '../../lib/constructs/eod-chain';
import { type FunctionPlatform, JobFunction } from '../../lib/constructs/job-function';
import { MigrationTrigger } from '../../lib/constructs/migration-trigger';
import { Network } from '../../lib/constructs/network';
import { QueueConsumer } from '../../lib/constructs/queue-consumer';
import { ScheduledJob } from '../../lib/constructs/scheduled-job';
import type { ConsumerDefinition, FunctionDefinition } from '../../lib/topology';
import { MIGRATE } from '../../lib/topology/operations';

// Construct-level tests: each construct alone in a bare stack (bundling skipped), so every invalid
// combination is proved to fail at synth with a message naming the prop, and the methods other
// helpers extend functions with are proved to produce what they promise.

const JOB: FunctionDefinition = {
  id: 'Probe',
  entry: 'lambdas/status/handler.ts',
  description: 'construct test function',
  timeoutSeconds: 30,
  memoryMb: 256,
};
const CONSUMER: ConsumerDefinition = {
  ...JOB,
  id: 'ProbeConsumer',
  batchSize: 5,
  maxBatchingWindowSeconds: 1,
  maxReceiveCount: 3,
  maxConcurrency: 2,
  maxMessageAgeSeconds: 300,
};

function fixture() {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Probe', { env: { account: '111111111111', region: 'us-east-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC },
      { name: 'egress', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    ],
  });
  const key = new kms.Key(stack, 'Key');
  const securityGroup = new ec2.SecurityGroup(stack, 'Functions', { vpc });
  const dbSecret = new secretsmanager.Secret(stack, 'DbSecret', { encryptionKey: key });
  const apiKey = new secretsmanager.Secret(stack, 'ApiKey', { encryptionKey: key });
  const platform: FunctionPlatform = {
    vpc,
    securityGroups: [securityGroup],
    isolatedSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    egressSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    encryptionKey: key,
    logRetentionDays: 14,
    removalPolicy: RemovalPolicy.DESTROY,
    environment: { STAGE: 'test' },
    secrets: [dbSecret],
    provider: { baseUrl: 'https://provider.invalid', callsPerMinute: 10, apiKey },
  };
  const topic = new sns.Topic(stack, 'Topic');
  return { app, stack, vpc, key, securityGroup, platform, topic, dbSecret, apiKey };
}

describe('JobFunction', () => {
  it('rejects a provider caller when the platform has no NAT subnets', () => {
    const { stack, platform } = fixture();
    const { egressSubnets: _none, ...withoutNat } = platform;
    expect(
      () =>
        new JobFunction(stack, 'F', { definition: { ...JOB, needsInternet: true }, platform: withoutNat }),
    ).toThrow(
      'function "Probe": needsInternet requires the platform\'s egressSubnets (NAT); none were given',
    );
  });

  it('rejects a provider caller when the platform has no provider access', () => {
    const { stack, platform } = fixture();
    const { provider: _none, ...withoutProvider } = platform;
    expect(
      () =>
        new JobFunction(stack, 'F', {
          definition: { ...JOB, needsInternet: true },
          platform: withoutProvider,
        }),
    ).toThrow(
      'function "Probe": needsInternet requires the platform\'s provider access (URL, rate, API key)',
    );
  });

  it('rejects timeouts, memory and concurrency Lambda would refuse at deploy time', () => {
    const { stack, platform } = fixture();
    expect(
      () => new JobFunction(stack, 'A', { definition: { ...JOB, timeoutSeconds: 901 }, platform }),
    ).toThrow('function "Probe": timeoutSeconds must be an integer from 1 to 900 (Lambda), got 901');
    expect(() => new JobFunction(stack, 'B', { definition: { ...JOB, memoryMb: 64 }, platform })).toThrow(
      'function "Probe": memoryMb must be an integer from 128 to 10240 (Lambda), got 64',
    );
    expect(
      () => new JobFunction(stack, 'C', { definition: JOB, platform, reservedConcurrentExecutions: 0 }),
    ).toThrow('function "Probe": reservedConcurrentExecutions must be a positive integer, got 0');
  });

  it('rejects extra environment that would override a platform variable', () => {
    const { stack, platform } = fixture();
    expect(
      () =>
        new JobFunction(stack, 'F', { definition: JOB, platform, environment: { STAGE: 'prod', OWN: '1' } }),
    ).toThrow('function "Probe": environment would override platform variable(s) STAGE');
  });

  it('binds secrets on its own role only, with KMS limited to Secrets Manager calls', () => {
    // Prepare
    const { stack, platform, key } = fixture();
    const extra = new secretsmanager.Secret(stack, 'RoleCredentials', { encryptionKey: key });
    const fn = new JobFunction(stack, 'F', { definition: JOB, platform });

    // Act
    fn.bindSecrets(extra);

    // Assess
    const template = Template.fromStack(stack);
    const policies = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    expect(policies).toContain(stack.getLogicalId(extra.node.defaultChild as secretsmanager.CfnSecret));
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'kms:Decrypt',
            Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.us-east-1.amazonaws.com' } },
          }),
        ]),
      },
    });
    // No grant was written into the key's policy (that would tie a data stack to this one).
    expect(JSON.stringify(template.findResources('AWS::KMS::Key'))).not.toContain('FHandlerServiceRole');
  });

  it('sends to a queue through sendTo: its QUEUE_URL_ variable, SendMessage on it and its key', () => {
    // Prepare
    const { stack, platform, key } = fixture();
    const queue = new sqs.Queue(stack, 'Target', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: key,
    });
    const fn = new JobFunction(stack, 'F', { definition: JOB, platform });

    // Act
    fn.sendTo('EquityProcessing', queue);

    // Assess
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ QUEUE_URL_EQUITY_PROCESSING: Match.anyValue() }) },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'sqs:SendMessage',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Target'), 'Arn'] },
          }),
          Match.objectLike({ Action: ['kms:GenerateDataKey', 'kms:Decrypt'] }),
        ]),
      },
    });
  });
});

describe('QueueConsumer', () => {
  const build = (definition: ConsumerDefinition) => {
    const { stack, platform, key, topic } = fixture();
    return () => new QueueConsumer(stack, 'C', { definition, platform, queueKey: key, alarmTopic: topic });
  };

  it('rejects a batch above 10 without a batching window, as SQS event sources do', () => {
    expect(build({ ...CONSUMER, batchSize: 20, maxBatchingWindowSeconds: 0 })).toThrow(
      'consumer "ProbeConsumer": batchSize 20 > 10 needs maxBatchingWindowSeconds > 0 (SQS event source rule)',
    );
  });

  it('rejects a maximum concurrency below 2, the event source minimum', () => {
    expect(build({ ...CONSUMER, maxConcurrency: 1 })).toThrow(
      'consumer "ProbeConsumer": maxConcurrency must be an integer from 2 to 1000 (SQS event source), got 1',
    );
  });

  it('rejects a receive count SQS would refuse', () => {
    expect(build({ ...CONSUMER, maxReceiveCount: 0 })).toThrow(
      'maxReceiveCount must be an integer from 1 to 1000 (SQS), got 0',
    );
  });

  it('rejects an S3 prefix with a leading slash, which no object key matches', () => {
    expect(build({ ...CONSUMER, s3Prefix: '/raw/' })).toThrow(
      'consumer "ProbeConsumer": s3Prefix must be a non-empty key prefix without a leading "/", got "/raw/"',
    );
  });
});

describe('ScheduledJob', () => {
  it('rejects a scheduled job without a rate', () => {
    const { stack, platform } = fixture();
    const group = new scheduler.ScheduleGroup(stack, 'Group');
    const dlq = new sqs.Queue(stack, 'Dlq');
    expect(
      () =>
        new ScheduledJob(stack, 'J', {
          definition: JOB,
          platform,
          scheduleGroup: group,
          deadLetterQueue: dlq,
        }),
    ).toThrow('scheduled job "Probe": everyMinutes is required (the rate of its schedule)');
    expect(
      () =>
        new ScheduledJob(stack, 'K', {
          definition: { ...JOB, everyMinutes: 2.5 },
          platform,
          scheduleGroup: group,
          deadLetterQueue: dlq,
        }),
    ).toThrow('scheduled job "Probe": everyMinutes must be a positive integer, got 2.5');
  });
});

describe('MigrationTrigger', () => {
  it('rejects a trigger that would run before the database exists', () => {
    const { stack, platform } = fixture();
    expect(
      () => new MigrationTrigger(stack, 'M', { definition: MIGRATE, platform, executeAfter: [] }),
    ).toThrow(
      'migration trigger "Migrate": executeAfter is empty: migrations would run before the database exists',
    );
  });

  it('rejects concurrent migrations', () => {
    const { stack, platform, key } = fixture();
    expect(
      () =>
        new MigrationTrigger(stack, 'M', {
          definition: { ...MIGRATE, reservedConcurrency: 2 },
          platform,
          executeAfter: [key],
        }),
    ).toThrow(
      'migration trigger "Migrate": reservedConcurrency must be 1 (two runs would race on the schema), got 2',
    );
  });
});

describe('Dashboard and EodChain', () => {
  it('rejects a dashboard with no consumer to show', () => {
    const { stack } = fixture();
    expect(() => new Dashboard(stack, 'D', { consumers: [] })).toThrow(
      'dashboard: consumers is empty: there would be nothing to show',
    );
  });

  it('rejects an EOD chain whose step ids repeat or whose start hour does not exist', () => {
    const { stack, key, topic } = fixture();
    const fn = lambda.Function.fromFunctionArn(
      stack,
      'Step',
      'arn:aws:lambda:us-east-1:111111111111:function:step',
    );
    const props = {
      scheduleGroup: new scheduler.ScheduleGroup(stack, 'Group'),
      hour: 16,
      minute: 30,
      timeZone: 'America/New_York',
      messagesKey: key,
      logsKey: key,
      alarmTopic: topic,
      logRetentionDays: 14,
      removalPolicy: RemovalPolicy.DESTROY,
    };
    expect(
      () =>
        new EodChain(stack, 'A', {
          ...props,
          steps: [
            { id: 'Load', function: fn },
            { id: 'Load', function: fn },
          ],
        }),
    ).toThrow('EOD chain: step id(s) used twice: Load');
    expect(
      () => new EodChain(stack, 'B', { ...props, hour: 24, steps: [{ id: 'Load', function: fn }] }),
    ).toThrow('EOD chain: hour must be an integer from 0 to 23, got 24');
  });
});

describe('data constructs', () => {
  it('rejects a network whose NAT gateways outnumber its zones, or that has none', () => {
    const { stack, key } = fixture();
    const props = { logsKey: key, logRetentionDays: 14, removalPolicy: RemovalPolicy.DESTROY };
    expect(() => new Network(stack, 'A', { ...props, maxAzs: 2, natGateways: 3 })).toThrow(
      'network: natGateways must be an integer from 1 (provider calls need a route out) to maxAzs (2), got 3',
    );
    expect(() => new Network(stack, 'B', { ...props, maxAzs: 1, natGateways: 1 })).toThrow(
      'network: maxAzs must be an integer >= 2 (RDS needs two AZs), got 1',
    );
  });

  it('rejects a data bucket that expires quarantined exports immediately', () => {
    const { stack, key } = fixture();
    expect(
      () =>
        new DataBucket(stack, 'B', {
          key,
          quarantineExpirationDays: 0,
          noncurrentVersionExpirationDays: 30,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
    ).toThrow('data bucket: quarantineExpirationDays must be a positive integer, got 0');
  });

  it('rejects a deletion-protected database in a stack that deletes its data', () => {
    const { stack, vpc, securityGroup, key } = fixture();
    expect(
      () =>
        new Database(stack, 'D', {
          vpc,
          subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
          clients: securityGroup,
          key,
          instanceType: 't4g.micro',
          allocatedStorageGb: 20,
          databaseName: 'probe',
          multiAz: false,
          deletionProtection: true,
          backupRetentionDays: 7,
          retain: false,
          logRetentionDays: 14,
          stageName: 'probe',
        }),
    ).toThrow(
      'database: deletionProtection without retain: the stack would delete its data but the instance would refuse to go, blocking every teardown',
    );
  });

  it('rejects a cache without nodes or with more than ElastiCache allows', () => {
    const { stack, vpc, securityGroup, key } = fixture();
    const props = {
      vpc,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      clients: securityGroup,
      key,
      nodeType: 'cache.t4g.micro',
      removalPolicy: RemovalPolicy.DESTROY,
      description: 'probe',
      stageName: 'probe',
    };
    for (const nodes of [0, 7])
      expect(() => new Cache(stack, `C${nodes}`, { ...props, nodes })).toThrow(
        `cache: nodes must be an integer from 1 to 6 (primary plus up to 5 replicas), got ${nodes}`,
      );
    expect(() => new Cache(stack, 'W', { ...props, nodes: 1, snapshotWindow: '6-7' })).toThrow(
      'cache: snapshotWindow must be hh:mm-hh:mm (UTC), got 6-7',
    );
  });

  it('gives a replicated cache failover across AZs, and keeps its snapshots in the stated window', () => {
    // Prepare
    const { stack, vpc, securityGroup, key } = fixture();

    // Act
    new Cache(stack, 'Replicated', {
      vpc,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      clients: securityGroup,
      key,
      nodeType: 'cache.t4g.small',
      nodes: 2,
      snapshotRetentionDays: 20,
      snapshotWindow: '06:00-07:00',
      removalPolicy: RemovalPolicy.DESTROY,
      description: 'probe',
      stageName: 'probe',
    });

    // Assess
    Template.fromStack(stack).hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
      NumCacheClusters: 2,
      AutomaticFailoverEnabled: true,
      MultiAZEnabled: true,
      SnapshotRetentionLimit: 20,
      SnapshotWindow: '06:00-07:00',
    });
  });
});

describe('defaults', () => {
  it('builds a queue pair that is encrypted, TLS-only and redrives after maxReceiveCount', () => {
    // Prepare
    const { stack, key } = fixture();

    // Act
    buildQueueWithDeadLetter(stack, { key, removalPolicy: RemovalPolicy.DESTROY, maxReceiveCount: 4 });

    // Assess
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SQS::Queue', 2);
    template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: Duration.days(14).toSeconds(),
      KmsMasterKeyId: Match.anyValue(),
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 4 }),
      KmsMasterKeyId: Match.anyValue(),
    });
    for (const policy of Object.values(template.findResources('AWS::SQS::QueuePolicy')))
      expect(JSON.stringify(policy)).toContain('"aws:SecureTransport":"false"');
  });

  it('builds an alarm to the topic that notifies the recovery only when asked', () => {
    // Prepare
    const { stack, topic } = fixture();
    const metric = new cloudwatch.Metric({ namespace: 'Probe', metricName: 'Errors' });

    // Act
    buildAlarm(stack, 'Quiet', { metric, threshold: 1, description: 'quiet', topic });
    buildAlarm(stack, 'Loud', { metric, threshold: 1, description: 'loud', topic, notifyOk: true });

    // Assess
    const alarms = Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { AlarmDescription: string; OKActions?: unknown[]; TreatMissingData: string };
    }[];
    const byName = Object.fromEntries(alarms.map((a) => [a.Properties.AlarmDescription, a.Properties]));
    expect(byName.quiet?.OKActions).toBeUndefined();
    expect(byName.loud?.OKActions).toHaveLength(1);
    expect(byName.loud?.TreatMissingData).toBe('notBreaching');
  });
});
