import { Duration } from 'aws-cdk-lib';
import * as triggers from 'aws-cdk-lib/triggers';
import { Construct, type IConstruct } from 'constructs';
import type { OperationDefinition } from '../topology/types';
import { type FunctionPlatform, JobFunction } from './job-function';

export interface MigrationTriggerProps {
  /** The migrate entry of lib/topology/operations.ts (handler, SQL asset directory). */
  readonly definition: OperationDefinition;
  readonly platform: FunctionPlatform;
  /** What must exist before migrations run: the database and the proxy the function connects through. */
  readonly executeAfter: readonly IConstruct[];
  /**
   * What may only be created once the schema is current (the consumers).
   * @default none
   */
  readonly executeBefore?: readonly IConstruct[];
}

/**
 * Migrations as a deploy-time step: a trigger invokes the function after the database and proxy
 * exist and whenever the function (i.e. the bundled SQL) changes, so every deploy leaves the schema
 * current before any consumer runs; a failing migration fails (and rolls back) the deploy instead of
 * surfacing later as handler errors.
 */
export class MigrationTrigger extends Construct {
  readonly job: JobFunction;
  readonly trigger: triggers.Trigger;

  constructor(scope: Construct, id: string, props: MigrationTriggerProps) {
    super(scope, id);
    const { definition } = props;
    if (props.executeAfter.length === 0)
      throw new Error(
        `migration trigger "${definition.id}": executeAfter is empty: migrations would run before the database exists`,
      );
    if (!definition.assetDirs?.length)
      throw new Error(`migration trigger "${definition.id}": assetDirs must carry the SQL to apply`);
    if (definition.reservedConcurrency !== 1)
      throw new Error(
        `migration trigger "${definition.id}": reservedConcurrency must be 1 (two runs would race on the schema), got ${definition.reservedConcurrency}`,
      );
    this.job = new JobFunction(this, 'Function', {
      definition,
      platform: props.platform,
      reservedConcurrentExecutions: 1,
      serviceName: 'migrate',
      environment: { MIGRATIONS_DIR: `./${definition.assetDirs[0]?.to}` },
      assetDirs: definition.assetDirs,
    });
    this.trigger = new triggers.Trigger(this, 'OnDeploy', {
      handler: this.job.function,
      executeAfter: [...props.executeAfter],
      executeBefore: props.executeBefore ? [...props.executeBefore] : undefined,
      executeOnHandlerChange: true,
      timeout: Duration.seconds(definition.timeoutSeconds),
    });
  }
}
