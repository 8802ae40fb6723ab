import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { TRADING_HEALTH_PORT, TRADING_METRICS, TradingEngine } from '../../lib/constructs/trading-engine';
import { acknowledge, applyNag } from '../../lib/nag';

// The trading engine's Fargate service alone in a bare stack with cdk-nag on: synth fails on any
// finding that is not acknowledged, so a passing synth is the nag check. The stage tests cover its
// place in the app (AWS stages only, never the emulator stage).

function build() {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'TradingTest', { env: { account: '111111111111', region: 'us-east-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    subnetConfiguration: [
      { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
      { name: 'egress', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
    ],
  });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const proxySg = new ec2.SecurityGroup(stack, 'ProxySg', { vpc, allowAllOutbound: false });
  const login = new secretsmanager.Secret(stack, 'TradingLogin', { encryptionKey: key });
  const broker = new secretsmanager.Secret(stack, 'BrokerCredentials', { encryptionKey: key });
  const topic = new sns.Topic(stack, 'Alarms', { masterKey: key, enforceSSL: true });
  const engine = new TradingEngine(stack, 'TradingEngine', {
    vpc,
    subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    databaseProxySecurityGroup: proxySg,
    database: { host: 'proxy.internal', name: 'tickstock', login },
    brokerUrl: 'https://paper-api.alpaca.markets',
    brokerCredentials: broker,
    logsKey: key,
    logRetentionDays: 14,
    removalPolicy: RemovalPolicy.DESTROY,
    alarmTopic: topic,
    environment: { STAGE: 'dev' },
  });
  const standIn = 'stand-in for a data-stack part in this construct test';
  acknowledge(vpc, {
    'AwsSolutions-VPC7': standIn,
    'HIPAA.Security-VPCDefaultSecurityGroupClosed': standIn,
    'HIPAA.Security-VPCFlowLogsEnabled': standIn,
    'HIPAA.Security-VPCNoUnrestrictedRouteToIGW': standIn,
  });
  for (const s of [login, broker])
    acknowledge(s, { 'AwsSolutions-SMG4': standIn, 'HIPAA.Security-SecretsManagerRotationEnabled': standIn });
  applyNag(app);
  const assembly = app.synth();
  return {
    stack,
    engine,
    template: Template.fromStack(stack),
    assembly,
    ids: { proxySg, login, broker, key },
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
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(roleLogicalId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

const container = () =>
  Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0]?.Properties.ContainerDefinitions[0];

describe('trading live engine service (ECS Fargate)', () => {
  it('runs exactly one task (one writer, one broker stream per key) in the private subnets, never two at once', () => {
    template.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 1,
      DeploymentConfiguration: Match.objectLike({
        MinimumHealthyPercent: 0,
        MaximumPercent: 100,
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
      }),
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
    const service = Object.values(template.findResources('AWS::ECS::Service'))[0];
    const subnets = JSON.stringify(service?.Properties.NetworkConfiguration.AwsvpcConfiguration.Subnets);
    expect(subnets).toContain('egressSubnet');
    expect(subnets).not.toContain('publicSubnet');
  });

  it('takes the trading database login and the broker keys from Secrets Manager, never as plain environment', () => {
    const c = container();
    const secrets = Object.fromEntries(
      (c.Secrets as { Name: string; ValueFrom: unknown }[]).map((s) => [s.Name, JSON.stringify(s.ValueFrom)]),
    );
    expect(Object.keys(secrets).sort()).toEqual([
      'BROKER_KEY_ID',
      'BROKER_SECRET_KEY',
      'DB_PASSWORD',
      'DB_USERNAME',
    ]);
    for (const name of ['DB_USERNAME', 'DB_PASSWORD'])
      expect(secrets[name]).toContain(logicalId(built.ids.login));
    for (const name of ['BROKER_KEY_ID', 'BROKER_SECRET_KEY'])
      expect(secrets[name]).toContain(logicalId(built.ids.broker));
    const env = Object.fromEntries(
      (c.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );
    for (const name of Object.keys(env)) expect(name).not.toMatch(/KEY|TOKEN|PASSWORD|SECRET/);
    expect(env).toMatchObject({
      DB_HOST: 'proxy.internal',
      DB_TLS: 'required',
      BROKER_BASE_URL: 'https://paper-api.alpaca.markets',
      TRADING_HEALTH_PORT: String(TRADING_HEALTH_PORT),
      POWERTOOLS_METRICS_NAMESPACE: TRADING_METRICS.namespace,
      POWERTOOLS_SERVICE_NAME: TRADING_METRICS.service,
    });
    expect(c.ReadonlyRootFilesystem).toBe(true);
    expect(JSON.stringify(c.HealthCheck.Command)).toContain('/live');
  });

  it('gives the task role no permission at all, and the execution role only image, logs and the two secrets', () => {
    const task = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0];
    const roleId = (arn: unknown) => (arn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    expect(statementsOfRole(roleId(task?.Properties.TaskRoleArn))).toEqual([]);
    const statements = statementsOfRole(roleId(task?.Properties.ExecutionRoleArn));
    const actions = statements.flatMap((s) => [s.Action].flat());
    for (const a of actions) expect(a).toMatch(/^(ecr|logs|secretsmanager|kms):/);
    for (const s of statements) {
      const list = [s.Action].flat();
      if (s.Resource === '*') expect(list).toEqual(['ecr:GetAuthorizationToken']);
      if (list.includes('kms:Decrypt')) expect(JSON.stringify(s.Condition)).toContain('kms:ViaService');
    }
    const secretResources = JSON.stringify(
      statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:')).map((s) => s.Resource),
    );
    for (const secret of [built.ids.login, built.ids.broker])
      expect(secretResources).toContain(logicalId(secret));
  });

  it('lets the task out only on HTTPS and to the database proxy, and admits nothing in', () => {
    const sgId = logicalId(built.engine.securityGroup);
    const sg = template.findResources('AWS::EC2::SecurityGroup')[sgId] ?? {};
    expect((sg.Properties.SecurityGroupEgress as { FromPort: number }[]).map((r) => r.FromPort)).toEqual([
      443,
    ]);
    const extraEgress = Object.values(template.findResources('AWS::EC2::SecurityGroupEgress')).filter((r) =>
      JSON.stringify(r.Properties.GroupId).includes(sgId),
    );
    expect(extraEgress.map((r) => r.Properties.FromPort)).toEqual([5432]);
    expect(JSON.stringify(extraEgress[0]?.Properties.DestinationSecurityGroupId)).toContain(
      logicalId(built.ids.proxySg),
    );
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => ({
      port: r.Properties.FromPort,
      group: JSON.stringify(r.Properties.GroupId),
      source: JSON.stringify(r.Properties.SourceSecurityGroupId),
    }));
    expect(ingress).toEqual([
      {
        port: 5432,
        group: expect.stringContaining(logicalId(built.ids.proxySg)),
        source: expect.stringContaining(sgId),
      },
    ]);
  });

  it('alarms on breaker trips, old ambiguous orders, reconciliation differences, broker errors, auth failures and a missing task', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    const engineAlarms = alarms.filter((a) => a.Properties.Namespace === TRADING_METRICS.namespace);
    expect(engineAlarms.map((a) => a.Properties.MetricName).sort()).toEqual(
      [...TRADING_METRICS.names].sort(),
    );
    for (const a of engineAlarms) {
      expect(a.Properties.Dimensions).toEqual([{ Name: 'service', Value: TRADING_METRICS.service }]);
      expect(a.Properties.AlarmActions).toHaveLength(1);
    }
    const running = alarms.find((a) => a.Properties.MetricName === 'RunningTaskCount');
    expect(running?.Properties).toMatchObject({
      Namespace: 'ECS/ContainerInsights',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    expect(alarms).toHaveLength(TRADING_METRICS.names.length + 1);
  });

  it('builds the image from lambdas/trading-live/Dockerfile with only package files, tsconfig and lambdas/ in the context', () => {
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
    expect(images[0]?.source.dockerFile).toBe('lambdas/trading-live/Dockerfile');
    const dir = join(built.assembly.directory, images[0]?.source.directory ?? '');
    expect(readdirSync(dir).sort()).toEqual([
      'lambdas',
      'package-lock.json',
      'package.json',
      'tsconfig.json',
    ]);
    // The bundle comes from build.mjs (which the restart-recovery test runs too).
    expect(readFileSync(join(dir, 'lambdas/trading-live/Dockerfile'), 'utf8')).toContain(
      'RUN node lambdas/trading-live/build.mjs /out',
    );
    expect(readdirSync(join(dir, 'lambdas/trading-live'))).toEqual(
      expect.arrayContaining(['build.mjs', 'main.ts']),
    );
    expect(readdirSync(join(dir, 'lambdas/platform'))).toContain('container-bundle.mjs');
  });
});
