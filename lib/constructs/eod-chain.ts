import { Duration, type RemovalPolicy, TimeZone } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { acknowledge, invokeVersionsFinding } from '../nag';

export interface EodStep {
  readonly id: string;
  readonly function: lambda.IFunction;
}

export interface EodChainProps {
  /** In order; every step takes `{ tradeDate? }` and returns `{ tradeDate, status, ... }`. */
  readonly steps: readonly EodStep[];
  readonly scheduleGroup: scheduler.IScheduleGroup;
  /** Weekday start, in the exchange's time zone. */
  readonly hour: number;
  readonly minute: number;
  readonly timeZone: string;
  readonly messagesKey: kms.IKey;
  readonly logsKey: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The EOD chain as one Step Functions state machine, started by EventBridge Scheduler each weekday
 * after the close (America/New_York). Steps run in order, each retried with back-off (every step
 * is idempotent per trade date). A step that still fails stops the chain: later steps depend on
 * earlier ones (quality checks need the day's bars, the universe sync needs the EOD signal), so
 * the failed execution's input and error go to a dead-letter queue with an alarm, and an operator
 * redrives the execution (Step Functions redrive resumes at the failed step). A first step that
 * reports the market closed (holiday) ends the execution successfully.
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

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.messagesKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
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
      task.addCatch(failed, { resultPath: '$.error' });
      return task;
    };

    // The first step gets the execution's input ({} from the schedule, { tradeDate } to re-run a
    // day) and resolves the trade date; every later step works on that date.
    const firstTask = invoke(first, sfn.TaskInput.fromJsonPathAt('$'));
    const resolved = `$.${first.id}.result.tradeDate`;
    let remaining: sfn.IChainable = new sfn.Succeed(this, 'ChainComplete');
    for (const step of [...props.steps.slice(1)].reverse()) {
      remaining = invoke(step, sfn.TaskInput.fromObject({ 'tradeDate.$': resolved })).next(remaining);
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
      schedule: scheduler.ScheduleExpression.cron({
        minute: String(props.minute),
        hour: String(props.hour),
        weekDay: 'MON-FRI',
        timeZone: TimeZone.of(props.timeZone),
      }),
      target: new schedulerTargets.StepFunctionsStartExecution(this.stateMachine, {
        // No date: the first step takes the session that just closed in New York.
        input: scheduler.ScheduleTargetInput.fromObject({}),
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 3,
        maxEventAge: Duration.hours(2),
      }),
    });

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
        'X-Ray and CloudWatch Logs delivery for the state machine support no resource-level permissions',
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]':
        'CDK grant for sending a failed execution to the KMS-encrypted dead-letter queue, scoped to its key',
      'HIPAA.Security-IAMNoInlinePolicy':
        'state machine role created by CDK, scoped to its steps, logs and dead-letter queue',
    });

    const action = new cwActions.SnsAction(props.alarmTopic);
    const alarm = (name: string, metric: cloudwatch.IMetric, description: string) => {
      const created = new cloudwatch.Alarm(this, name, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `EOD chain: ${description}`,
      });
      created.addAlarmAction(action);
      return created;
    };
    const period = Duration.minutes(5);
    this.alarms = [
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
