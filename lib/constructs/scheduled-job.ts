import { Duration } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeSchedule, acknowledgeSchedulerRoles } from '../nag';
import type { JobDefinition } from '../topology/types';
import { type FunctionPlatform, JobFunction } from './job-function';

export interface ScheduledJobProps {
  /** The job's entry in lib/topology/jobs.ts; `everyMinutes` is required here. */
  readonly definition: JobDefinition;
  readonly platform: FunctionPlatform;
  readonly scheduleGroup: scheduler.IScheduleGroup;
  /** Receives invocations the scheduler could not deliver after its retries. */
  readonly deadLetterQueue: sqs.IQueue;
  /**
   * Scheduler retries of a failed delivery (0 to 185).
   * @default 2
   */
  readonly retryAttempts?: number;
  /**
   * Overrides the definition's rate: an emulator stage fires its jobs sooner so a rehearsal sees it.
   * @default the definition's everyMinutes
   */
  readonly everyMinutes?: number;
}

/**
 * A job on a rate schedule of its own: one function (a run at a time) invoked with `{}` by
 * EventBridge Scheduler every `everyMinutes`, undeliverable invocations to a dead-letter queue.
 */
export class ScheduledJob extends Construct {
  readonly job: JobFunction;
  readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: ScheduledJobProps) {
    super(scope, id);
    const { definition } = props;
    const every = props.everyMinutes ?? definition.everyMinutes;
    if (every === undefined)
      throw new Error(
        `scheduled job "${definition.id}": everyMinutes is required (the rate of its schedule)`,
      );
    if (!Number.isInteger(every) || every < 1)
      throw new Error(
        `scheduled job "${definition.id}": everyMinutes must be a positive integer, got ${every}`,
      );
    const retryAttempts = props.retryAttempts ?? 2;
    if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 185)
      throw new Error(
        `scheduled job "${definition.id}": retryAttempts must be an integer from 0 to 185, got ${retryAttempts}`,
      );

    this.job = new JobFunction(this, 'Function', { definition, platform: props.platform });
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: definition.description,
      scheduleGroup: props.scheduleGroup,
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(every)),
      target: new schedulerTargets.LambdaInvoke(this.job.function, {
        input: scheduler.ScheduleTargetInput.fromObject({}),
        deadLetterQueue: props.deadLetterQueue,
        retryAttempts,
      }),
    });
    acknowledgeSchedule(this.schedule);
    acknowledgeSchedulerRoles(this, this.job.function);
  }
}
