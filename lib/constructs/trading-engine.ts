import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { buildAlarm } from './defaults';
import { SingleTaskService } from './single-task-service';

/**
 * The engine's EMF metrics (lambdas/trading-live/metrics.ts): namespace, service and the names the
 * alarms below read. Keep them in step with the process.
 */
export const TRADING_METRICS = {
  namespace: 'Tickstock',
  service: 'trading-engine',
  names: [
    'BreakerTrips',
    'OldestAmbiguousOrderSeconds',
    'ReconciliationDifferences',
    'BrokerErrors',
    'BrokerAuthFailures',
  ],
} as const;

/**
 * Port of the engine's `/health` (readiness: orders only after rebuild and reconciliation) and `/live`
 * (liveness, the container's health check: a halted engine stays up and alarmed, never replaced into
 * the same halt).
 */
export const TRADING_HEALTH_PORT = 4595;

export interface TradingEngineProps {
  readonly vpc: ec2.IVpc;
  /** Private subnets with NAT egress: the broker is on the internet. */
  readonly subnets: ec2.SubnetSelection;
  /** The RDS Proxy's security group: the engine's own is admitted on 5432 here. */
  readonly databaseProxySecurityGroup: ec2.ISecurityGroup;
  readonly database: {
    /** The RDS Proxy endpoint (TLS required). */
    readonly host: string;
    readonly name: string;
    /** The trading component's login (`tickstock_trading_login`): username and password fields. */
    readonly login: secretsmanager.ISecret;
  };
  /** The broker's REST base; the trade-updates stream is `<base>/stream`. */
  readonly brokerUrl: string;
  /** `{"keyId", "secretKey"}` of the broker account. */
  readonly brokerCredentials: secretsmanager.ISecret;
  /** Encrypts the log group. */
  readonly logsKey: kms.IKey;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly alarmTopic: sns.ITopic;
  /** Variables every pipeline process gets (STAGE, LOG_LEVEL, ...). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Seconds an order may stay ambiguous (timeout, cut connection, invalid answer) before the alarm:
   * the engine looks it up every few seconds, so minutes mean the broker cannot tell us.
   * @default 120
   */
  readonly ambiguousAlarmSeconds?: number;
}

/**
 * The trading live engine (issue 14) as an ECS Fargate service: one long-lived task, because the
 * broker's trade-updates stream is a WebSocket held for the whole session (Lambda cannot hold it)
 * and the broker allows one stream per key; the engine is also the single writer that keeps the
 * account's risk state in memory. A deployment stops the old task before starting the new one: the
 * new one rebuilds from the event store (RDS PostgreSQL), reconciles with the broker and only then
 * accepts orders (restart recovery). Image built by CDK from this repository
 * (lambdas/trading-live/Dockerfile); the trading database login and the broker keys are injected by
 * ECS from Secrets Manager, so the task role has no permission at all (metrics are EMF lines on
 * stdout); the task reaches only the database proxy and HTTPS (broker, AWS endpoints).
 */
export class TradingEngine extends Construct {
  readonly cluster: ecs.Cluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly service: ecs.FargateService;
  readonly securityGroup: ec2.SecurityGroup;
  readonly logGroup: logs.LogGroup;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: TradingEngineProps) {
    super(scope, id);
    const task = new SingleTaskService(this, 'Service', {
      vpc: props.vpc,
      subnets: props.subnets,
      description: 'trading engine: broker and AWS APIs over HTTPS, the database proxy',
      httpsFor: 'broker REST and stream, ECR, Secrets Manager, CloudWatch Logs',
      dockerfile: 'lambdas/trading-live/Dockerfile',
      containerName: 'engine',
      // The engine's state is one account's orders and positions: small. Half a vCPU keeps the
      // order path (risk check + one append) far from saturation.
      cpu: 512,
      memoryMiB: 1024,
      environment: {
        ...props.environment,
        DB_HOST: props.database.host,
        DB_PORT: '5432',
        DB_NAME: props.database.name,
        DB_TLS: 'required',
        BROKER_BASE_URL: props.brokerUrl,
        TRADING_HEALTH_PORT: String(TRADING_HEALTH_PORT),
        TRADING_METRICS_INTERVAL_MS: '60000',
        POWERTOOLS_METRICS_NAMESPACE: TRADING_METRICS.namespace,
        POWERTOOLS_SERVICE_NAME: TRADING_METRICS.service,
        NODE_OPTIONS: '--max-old-space-size=768',
      },
      // The trading login and the broker keys; the task role gets nothing.
      secrets: {
        DB_USERNAME: { secret: props.database.login, field: 'username' },
        DB_PASSWORD: { secret: props.database.login, field: 'password' },
        BROKER_KEY_ID: { secret: props.brokerCredentials, field: 'keyId' },
        BROKER_SECRET_KEY: { secret: props.brokerCredentials, field: 'secretKey' },
      },
      // Rebuild and reconciliation come before readiness; liveness is checked (see TRADING_HEALTH_PORT).
      healthCheck: { port: TRADING_HEALTH_PORT, path: '/live', startPeriod: Duration.seconds(120) },
      // SIGTERM: stop taking orders, let in-flight requests end, close the stream.
      stopTimeout: Duration.seconds(60),
      logsKey: props.logsKey,
      logRetentionDays: props.logRetentionDays,
      removalPolicy: props.removalPolicy,
    });
    this.cluster = task.cluster;
    this.securityGroup = task.securityGroup;
    this.logGroup = task.logGroup;
    this.taskDefinition = task.taskDefinition;
    this.service = task.service;
    this.securityGroup.addEgressRule(
      props.databaseProxySecurityGroup,
      ec2.Port.tcp(5432),
      'trading engine to the database proxy',
    );
    // The rule sits in this stack, so the data stack never depends on compute.
    new ec2.CfnSecurityGroupIngress(this, 'ProxyFromEngine', {
      groupId: props.databaseProxySecurityGroup.securityGroupId,
      sourceSecurityGroupId: this.securityGroup.securityGroupId,
      ipProtocol: 'tcp',
      fromPort: 5432,
      toPort: 5432,
      description: 'trading engine to the database proxy',
    });

    const metric = (name: (typeof TRADING_METRICS.names)[number], statistic: string, minutes = 5) =>
      new cloudwatch.Metric({
        namespace: TRADING_METRICS.namespace,
        metricName: name,
        dimensionsMap: { service: TRADING_METRICS.service },
        statistic,
        period: Duration.minutes(minutes),
      });
    const alarm = (name: string, m: cloudwatch.IMetric, threshold: number, description: string) =>
      buildAlarm(this, name, { metric: m, threshold, description, topic: props.alarmTopic });
    const ambiguous = props.ambiguousAlarmSeconds ?? 120;
    this.alarms = [
      alarm(
        'BreakerTripsAlarm',
        metric('BreakerTrips', 'Sum'),
        1,
        'trading: a circuit breaker tripped (the control report names it, its inputs and the reset)',
      ),
      alarm(
        'AmbiguousOrdersAlarm',
        metric('OldestAmbiguousOrderSeconds', 'Maximum', 1),
        ambiguous,
        `trading: an order's fate at the broker has been unknown for ${ambiguous} s or more (timeout, cut connection or invalid answer not yet resolved)`,
      ),
      alarm(
        'ReconciliationDifferencesAlarm',
        metric('ReconciliationDifferences', 'Sum'),
        1,
        'trading: reconciliation found a difference with the broker (booked from the broker, or a dispute blocking the symbol)',
      ),
      alarm(
        'BrokerErrorsAlarm',
        metric('BrokerErrors', 'Sum'),
        10,
        'trading: 10 or more retryable or ambiguous broker outcomes in 5 minutes (429s, 5xx, maintenance, timeouts)',
      ),
      alarm(
        'BrokerAuthAlarm',
        metric('BrokerAuthFailures', 'Sum', 1),
        1,
        'trading: the broker refused our credentials: trading is halted until the key works and a named reset',
      ),
    ];
    // The task itself: Container Insights' running count, missing data as breaching (no engine, no
    // data point).
    const running = new cloudwatch.Alarm(this, 'EngineNotRunningAlarm', {
      metric: new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName: 'RunningTaskCount',
        dimensionsMap: { ClusterName: this.cluster.clusterName, ServiceName: this.service.serviceName },
        statistic: 'Minimum',
        period: Duration.minutes(1),
      }),
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: 'trading: no engine task running for 3 minutes (orders are not taken)',
    });
    running.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
    this.alarms.push(running);
  }
}
