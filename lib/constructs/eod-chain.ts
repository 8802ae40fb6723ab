import { Duration, type RemovalPolicy, TimeZone } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { acknowledge, acknowledgeSchedulerRoles, invokeVersionsFinding } from '../nag';
import { buildAlarm, buildDeadLetterQueue } from './defaults';

export interface EodStep {
  /** State name; unique within the chain. */
  readonly id: string;
  readonly function: lambda.IFunction;
  /**
   * An observer reports on the day but nothing later depends on it (the quality check): once its
   * retries are spent it is counted and alarmed, and the chain continues. Default false: a
   * failure stops the chain.
   */
  readonly observer?: boolean;
}

/** Namespace and name of the count of observer steps that failed after their retries. */
export const EOD_METRIC_NAMESPACE = 'Tickstock/EodChain';
export const OBSERVER_FAILED_METRIC = 'ObserverStepFailed';

export interface EodChainProps {
  /** In order; every step takes `{ tradeDate? }` and returns `{ tradeDate, status, ... }`. */
  readonly steps: readonly EodStep[];
  readonly scheduleGroup: scheduler.IScheduleGroup;
  /** Weekday start hour (0-23), in `timeZone`. */
  readonly hour: number;
  /** Weekday start minute (0-59), in `timeZone`. */
  readonly minute: number;
  /** IANA time zone of the exchange, e.g. America/New_York. */
  readonly timeZone: string;
  /**
   * Start every N minutes instead of the weekday cron: for an emulator, which ignores a cron's time
   * zone (config `emulator.eodEveryMinutes`).
   * @default the weekday cron above
   */
  readonly everyMinutes?: number;
  /** Encrypts the dead-letter queue. */
  readonly messagesKey: kms.IKey;
  /** Encrypts the state machine's log group. */
  readonly logsKey: kms.IKey;
  /** Receives the chain's alarms. */
  readonly alarmTopic: sns.ITopic;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The EOD chain as one Step Functions state machine, started by EventBridge Scheduler each weekday
 * after the close (America/New_York). Steps run in order, each retried with back-off (every step
 * is idempotent per trade date). A step that still fails stops the chain when later steps depend
 * on it (the universe sync needs the EOD signal, everything needs the day's bars): the failed
 * execution's input and error go to a dead-letter queue with an alarm, and an operator redrives
 * the execution (Step Functions redrive resumes at the failed step). An observer step (the quality
 * check) that still fails only alarms: its failure is counted (ObserverStepFailed, by step) and
 * the chain goes on, so the EOD signal and the universe sync never wait on a report. A first step
 * that reports the market closed (holiday) ends the execution successfully.
 */
export class EodChain extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly deadLetterQueue: sqs.Queue;
  readonly schedule: scheduler.Schedule;
  readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: EodChainProps) {
    super(scope, id);
    const [first] = props.steps;
    if (!first) throw new Error('the EOD chain needs at least one step');
    const ids = props.steps.map((s) => s.id);
    const repeated = ids.filter((s, i) => ids.indexOf(s) !== i);
    if (repeated.length > 0) throw new Error(`EOD chain: step id(s) used twice: ${repeated.join(', ')}`);
    if (!Number.isInteger(props.hour) || props.hour < 0 || props.hour > 23)
      throw new Error(`EOD chain: hour must be an integer from 0 to 23, got ${props.hour}`);
    if (!Number.isInteger(props.minute) || props.minute < 0 || props.minute > 59)
      throw new Error(`EOD chain: minute must be an integer from 0 to 59, got ${props.minute}`);

    this.deadLetterQueue = buildDeadLetterQueue(this, 'DeadLetterQueue', {
      key: props.messagesKey,
      removalPolicy: props.removalPolicy,
    });
    const failed = new tasks.SqsSendMessage(this, 'RecordFailure', {
      queue: this.deadLetterQueue,
      messageBody: sfn.TaskInput.fromJsonPathAt('$'),
    }).next(
      new sfn.Fail(this, 'ChainFailed', { error: 'EodStepFailed', cause: 'see the EOD dead-letter queue' }),
    );

    const invoke = (step: EodStep, payload: sfn.TaskInput) => {
      const task = new tasks.LambdaInvoke(this, step.id, {
        lambdaFunction: step.function,
        payload,
        resultSelector: { 'result.$': '$.Payload' },
        resultPath: `$.${step.id}`,
      });
      task.addRetry({
        errors: ['States.ALL'],
        interval: Duration.seconds(30),
        backoffRate: 2,
        maxAttempts: 3,
      });
      if (step.observer) {
        // Counted, alarmed, then on to the next step; the error stays in the execution's output.
        const counted = new tasks.CallAwsService(this, `${step.id}Failed`, {
          service: 'cloudwatch',
          action: 'putMetricData',
          parameters: {
            Namespace: EOD_METRIC_NAMESPACE,
            MetricData: [
              {
                MetricName: OBSERVER_FAILED_METRIC,
                Dimensions: [{ Name: 'Step', Value: step.id }],
                Value: 1,
                Unit: 'Count',
              },
            ],
          },
          // PutMetricData supports no resource-level permission.
          iamResources: ['*'],
          resultPath: sfn.JsonPath.DISCARD,
        });
        task.addCatch(counted, { resultPath: `$.${step.id}Error` });
        return { task, counted };
      }
      task.addCatch(failed, { resultPath: '$.error' });
      return { task, counted: undefined };
    };

    // The first step gets the execution's input ({} from the schedule, { tradeDate } to re-run a
    // day) and resolves the trade date; every later step works on that date.
    if (first.observer)
      throw new Error('EOD chain: the first step resolves the date and cannot be an observer');
    const firstTask = invoke(first, sfn.TaskInput.fromJsonPathAt('$')).task;
    const resolved = `$.${first.id}.result.tradeDate`;
    let remaining: sfn.IChainable = new sfn.Succeed(this, 'ChainComplete');
    for (const step of [...props.steps.slice(1)].reverse()) {
      const { task, counted } = invoke(step, sfn.TaskInput.fromObject({ 'tradeDate.$': resolved }));
      counted?.next(remaining);
      remaining = task.next(remaining);
    }
    const definition = sfn.Chain.start(firstTask).next(
      new sfn.Choice(this, 'MarketOpen?')
        .when(
          sfn.Condition.stringEquals(`$.${first.id}.result.status`, 'skipped'),
          new sfn.Succeed(this, 'MarketClosed'),
        )
        .otherwise(remaining),
    );

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: {
        destination: new logs.LogGroup(this, 'Logs', {
          retention: props.logRetentionDays as logs.RetentionDays,
          encryptionKey: props.logsKey,
          removalPolicy: props.removalPolicy,
        }),
        level: sfn.LogLevel.ALL,
        includeExecutionData: false,
      },
    });

    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'EOD chain, weekdays after the close; market holidays end at the first step',
      scheduleGroup: props.scheduleGroup,
      schedule:
        props.everyMinutes === undefined
          ? scheduler.ScheduleExpression.cron({
              minute: String(props.minute),
              hour: String(props.hour),
              weekDay: 'MON-FRI',
              timeZone: TimeZone.of(props.timeZone),
            })
          : scheduler.ScheduleExpression.rate(Duration.minutes(props.everyMinutes)),
      target: new schedulerTargets.StepFunctionsStartExecution(this.stateMachine, {
        // No date: the first step takes the session that just closed in New York.
        input: scheduler.ScheduleTargetInput.fromObject({}),
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 3,
        maxEventAge: Duration.hours(2),
      }),
    });

    acknowledgeSchedulerRoles(this);
    acknowledge(this.deadLetterQueue, {
      'AwsSolutions-SQS3':
        'this queue is the dead-letter queue of the chain (failed executions) and of its schedule target',
    });
    acknowledge(this.stateMachine, {
      ...Object.fromEntries(
        props.steps.map((s) => [
          invokeVersionsFinding(s.function),
          'Step Functions invokes the step function by version',
        ]),
      ),
      'AwsSolutions-IAM5[Resource::*]':
        'X-Ray, CloudWatch Logs delivery and PutMetricData (observer step failures) support no resource-level permissions',
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]':
        'CDK grant for sending a failed execution to the KMS-encrypted dead-letter queue, scoped to its key',
      'HIPAA.Security-IAMNoInlinePolicy':
        'state machine role created by CDK, scoped to its steps, logs and dead-letter queue',
    });

    const alarm = (name: string, metric: cloudwatch.IMetric, description: string) =>
      buildAlarm(this, name, {
        metric,
        threshold: 1,
        description: `EOD chain: ${description}`,
        topic: props.alarmTopic,
      });
    const period = Duration.minutes(5);
    const observers = props.steps.filter((st) => st.observer);
    this.alarms = [
      ...observers.map((st) =>
        alarm(
          `${st.id}FailedAlarm`,
          new cloudwatch.Metric({
            namespace: EOD_METRIC_NAMESPACE,
            metricName: OBSERVER_FAILED_METRIC,
            dimensionsMap: { Step: st.id },
            statistic: 'Sum',
            period,
          }),
          `the observer step ${st.id} failed after its retries (the chain continued): re-run it for the date`,
        ),
      ),
      alarm(
        'FailedAlarm',
        this.stateMachine.metricFailed({ period }),
        'an execution failed: see the EOD dead-letter queue',
      ),
      alarm('TimedOutAlarm', this.stateMachine.metricTimedOut({ period }), 'an execution timed out'),
      alarm(
        'DeadLetterAlarm',
        this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        'a failed run or schedule delivery is waiting in the dead-letter queue: fix, then redrive',
      ),
    ];
  }
}
