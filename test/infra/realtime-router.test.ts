import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { PROCESS_METRICS } from '../../lambdas/realtime-router/metrics';
import { ROUTER_CONTAINER_NODE_ARGS } from '../../lambdas/realtime-router/service';
import { RealtimeRouter, ROUTER_METRICS, ROUTER_PORT } from '../../lib/constructs/realtime-router';
import { acknowledge, applyNag } from '../../lib/nag';

// The router's Fargate service alone in a bare stack with cdk-nag on: synth fails on any finding that
// is not acknowledged, so a passing synth is the nag check. The stage tests cover its place in the app
// (AWS stages only, never the emulator stage).

function build() {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'RouterTest', { env: { account: '111111111111', region: 'us-east-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
      { name: 'egress', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
    ],
  });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const redisSg = new ec2.SecurityGroup(stack, 'RedisSg', { vpc, allowAllOutbound: false });
  const authSecret = new secretsmanager.Secret(stack, 'RedisAuth', { encryptionKey: key });
  const apiKey = new secretsmanager.Secret(stack, 'ApiKey', { encryptionKey: key });
  const topic = new sns.Topic(stack, 'Alarms', { masterKey: key, enforceSSL: true });
  const barsQueue = new sqs.Queue(stack, 'Bars', { encryptionMasterKey: key, enforceSSL: true });
  const archivePolicy = new iam.ManagedPolicy(stack, 'ArchivePolicy', {
    statements: [
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: ['arn:aws:s3:::tickstock-dev-data/realtime/frames/x'],
      }),
    ],
  });
  const router = new RealtimeRouter(stack, 'RealtimeRouter', {
    vpc,
    subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    redisSecurityGroup: redisSg,
    redis: { host: 'redis.internal', port: '6379', authSecret },
    apiKey,
    barsQueue,
    archive: { bucketName: 'tickstock-dev-data', prefix: 'realtime/frames/', policy: archivePolicy },
    feedUrl: 'wss://socket.massive.com/stocks',
    restUrl: 'https://api.polygon.io',
    logsKey: key,
    logRetentionDays: 14,
    removalPolicy: RemovalPolicy.DESTROY,
    alarmTopic: topic,
    environment: { STAGE: 'dev' },
  });
  // The stand-ins for the data stack's parts are not the app's (the stage tests check those): their
  // findings are acknowledged on them alone, so every finding of the router itself still fails synth.
  const standIn = 'stand-in for a data-stack part in this construct test';
  acknowledge(vpc, {
    'AwsSolutions-VPC7': standIn,
    'HIPAA.Security-VPCDefaultSecurityGroupClosed': standIn,
    'HIPAA.Security-VPCFlowLogsEnabled': standIn,
    'HIPAA.Security-VPCNoUnrestrictedRouteToIGW': standIn,
  });
  acknowledge(barsQueue, { 'AwsSolutions-SQS3': standIn, 'HIPAA.Security-SQSQueueDeadLetterQueue': standIn });
  for (const s of [authSecret, apiKey])
    acknowledge(s, { 'AwsSolutions-SMG4': standIn, 'HIPAA.Security-SecretsManagerRotationEnabled': standIn });
  applyNag(app);
  const assembly = app.synth();
  return {
    stack,
    router,
    template: Template.fromStack(stack),
    assembly,
    ids: { redisSg, authSecret, apiKey, barsQueue, key, archivePolicy },
  };
}

const built = build();
const { template, stack } = built;
const logicalId = (c: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(c.node.defaultChild as never);

interface Statement {
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

function statementsOfRole(roleLogicalId: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(roleLogicalId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

describe('real-time router service (ECS Fargate)', () => {
  it('runs exactly one Fargate task in the private subnets, never two at once, rolled back on a failed deploy', () => {
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 1,
      DeploymentConfiguration: Match.objectLike({
        MinimumHealthyPercent: 0,
        MaximumPercent: 100,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      }),
      NetworkConfiguration: {
        AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }),
      },
    });
    const service = Object.values(template.findResources('AWS::ECS::Service'))[0];
    const subnets = JSON.stringify(service?.Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets);
    expect(subnets).toContain('egressSubnet');
    expect(subnets).not.toContain('publicSubnet');
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });

  it('takes the provider key and the Redis AUTH token from Secrets Manager, never as plain environment', () => {
    const task = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0];
    const container = task?.Properties.ContainerDefinitions[0];
    const secrets = Object.fromEntries(
      (container.Secrets as { Name: string; ValueFrom: unknown }[]).map((s) => [
        s.Name,
        JSON.stringify(s.ValueFrom),
      ]),
    );
    expect(Object.keys(secrets).sort()).toEqual(['POLYGON_API_KEY', 'REDIS_AUTH_TOKEN']);
    expect(secrets.POLYGON_API_KEY).toContain(
      stack.getLogicalId(built.ids.apiKey.node.defaultChild as never),
    );
    expect(secrets.REDIS_AUTH_TOKEN).toContain(
      stack.getLogicalId(built.ids.authSecret.node.defaultChild as never),
    );
    const env = Object.fromEntries(
      (container.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );
    for (const name of Object.keys(env)) expect(name).not.toMatch(/KEY|TOKEN|PASSWORD|SECRET/);
    expect(env).toMatchObject({
      REDIS_HOST: 'redis.internal',
      REDIS_TLS: 'required',
      ROUTER_PORT: String(ROUTER_PORT),
      ROUTER_METRICS_INTERVAL_MS: '60000',
      POWERTOOLS_METRICS_NAMESPACE: ROUTER_METRICS.namespace,
      POWERTOOLS_SERVICE_NAME: ROUTER_METRICS.service,
    });
    expect(container.ReadonlyRootFilesystem).toBe(true);
    expect(container.LogConfiguration.LogDriver).toBe('awslogs');
    expect(JSON.stringify(container.HealthCheck.Command)).toContain('/health');
  });

  it('lets the task role only send to the bars queue and put archive objects (the data stack policy), and the execution role only pull the image, log and read the two secrets', () => {
    const task = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0];
    const roleId = (arn: unknown) => (arn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const taskRole = roleId(task?.Properties.TaskRoleArn);
    const executionRole = roleId(task?.Properties.ExecutionRoleArn);
    const taskStatements = statementsOfRole(taskRole).map((st) => ({
      actions: [st.Action].flat().sort(),
      resource: JSON.stringify(st.Resource),
    }));
    expect(taskStatements.map((st) => st.actions)).toEqual([
      ['sqs:SendMessage'],
      ['kms:Decrypt', 'kms:GenerateDataKey'],
    ]);
    expect(taskStatements[0]?.resource).toContain(logicalId(built.ids.barsQueue));
    expect(taskStatements[1]?.resource).toContain(logicalId(built.ids.key));
    const container = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0]?.Properties
      .ContainerDefinitions[0];
    const env = Object.fromEntries(
      (container.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );
    expect(env).toMatchObject({
      DATA_BUCKET: 'tickstock-dev-data',
      REALTIME_ARCHIVE_PREFIX: 'realtime/frames/',
    });
    expect(JSON.stringify(env.QUEUE_URL_ROUTER_BARS)).toContain(logicalId(built.ids.barsQueue));
    const role = template.findResources('AWS::IAM::Role')[taskRole];
    expect(JSON.stringify(role?.Properties.ManagedPolicyArns)).toBe(
      JSON.stringify([{ Ref: stack.getLogicalId(built.ids.archivePolicy.node.defaultChild as never) }]),
    );
    expect(role?.Properties.Policies).toBeUndefined();

    const statements = statementsOfRole(executionRole);
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    for (const a of actions) expect(a).toMatch(/^(ecr|logs|secretsmanager|kms):/);
    expect(actions).not.toContain('secretsmanager:*');
    for (const s of statements) {
      const list = Array.isArray(s.Action) ? s.Action : [s.Action];
      if (s.Resource === '*') expect(list).toEqual(['ecr:GetAuthorizationToken']);
      if (list.includes('kms:Decrypt')) expect(JSON.stringify(s.Condition)).toContain('kms:ViaService');
    }
    const secretResources = JSON.stringify(
      statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:')).map((s) => s.Resource),
    );
    for (const secret of [built.ids.apiKey, built.ids.authSecret])
      expect(secretResources).toContain(stack.getLogicalId(secret.node.defaultChild as never));
    expect(secretResources.match(/"Ref"/g)).toHaveLength(2);
  });

  it('lets the task out only on HTTPS and to Redis, and in only from its clients security group', () => {
    const sgId = logicalId(built.router.securityGroup);
    const sg = template.findResources('AWS::EC2::SecurityGroup')[sgId];
    const egress = sg?.Properties.SecurityGroupEgress as { IpProtocol: string; FromPort: number }[];
    expect(egress.map((r) => r.FromPort)).toEqual([443]);
    const extraEgress = Object.values(template.findResources('AWS::EC2::SecurityGroupEgress')).filter((r) =>
      JSON.stringify(r.Properties.GroupId).includes(sgId),
    );
    expect(extraEgress.map((r) => r.Properties.FromPort)).toEqual([6379]);
    expect(JSON.stringify(extraEgress[0]?.Properties.DestinationSecurityGroupId)).toContain(
      logicalId(built.ids.redisSg),
    );
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => ({
      port: r.Properties.FromPort,
      group: JSON.stringify(r.Properties.GroupId),
      source: JSON.stringify(r.Properties.SourceSecurityGroupId),
    }));
    expect(ingress).toHaveLength(2);
    expect(ingress).toContainEqual({
      port: ROUTER_PORT,
      group: expect.stringContaining(sgId),
      source: expect.stringContaining(logicalId(built.router.clientSecurityGroup)),
    });
    expect(ingress).toContainEqual({
      port: 6379,
      group: expect.stringContaining(logicalId(built.ids.redisSg)),
      source: expect.stringContaining(sgId),
    });
  });

  it('alarms on feed lag, disconnects, buffer depth, dropped, conflated and tick p99, each a metric the process publishes', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    const names = alarms.map((a) => a.Properties.MetricName).sort();
    expect(names).toEqual(
      ['BufferDepth', 'Conflated', 'Disconnects', 'Dropped', 'FeedLagMs', 'TickLatencyP99Ms'].sort(),
    );
    for (const a of alarms) {
      expect(PROCESS_METRICS).toContain(a.Properties.MetricName);
      expect(a.Properties.Namespace).toBe(ROUTER_METRICS.namespace);
      expect(a.Properties.Dimensions).toEqual([{ Name: 'service', Value: ROUTER_METRICS.service }]);
      expect(a.Properties.AlarmActions).toHaveLength(1);
      expect(a.Properties.TreatMissingData).toBe('notBreaching');
    }
  });

  it('builds the image from lambdas/realtime-router/Dockerfile with only package files, tsconfig and lambdas/ in the context', () => {
    const manifests = readdirSync(built.assembly.directory).filter((f) => f.endsWith('.assets.json'));
    const images = manifests.flatMap((f) =>
      Object.values(
        (
          JSON.parse(readFileSync(join(built.assembly.directory, f), 'utf8')) as {
            dockerImages?: Record<string, { source: { directory: string; dockerFile?: string } }>;
          }
        ).dockerImages ?? {},
      ),
    );
    expect(images).toHaveLength(1);
    expect(images[0]?.source.dockerFile).toBe('lambdas/realtime-router/Dockerfile');
    const dir = join(built.assembly.directory, images[0]?.source.directory ?? '');
    const top = readdirSync(dir).sort();
    expect(top).toEqual(['lambdas', 'package-lock.json', 'package.json', 'tsconfig.json']);
    const dockerfile = readFileSync(join(dir, 'lambdas/realtime-router/Dockerfile'), 'utf8');
    // The bundles come from build.mjs (which the surge benchmark runs too), the CMD's flags are the
    // ones the benchmark runs them with.
    expect(dockerfile).toContain('RUN node lambdas/realtime-router/build.mjs /out');
    expect(dockerfile).toContain(
      `CMD ${JSON.stringify(['node', ...ROUTER_CONTAINER_NODE_ARGS, 'main.mjs']).replaceAll(',', ', ')}`,
    );
    expect(readdirSync(join(dir, 'lambdas/realtime-router'))).toEqual(
      expect.arrayContaining(['build.mjs', 'main.ts', 'redis-sink-worker.ts']),
    );
  });
});
