import { Stage, type StageProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StageConfig } from './config';
import { ComputeStack } from './stacks/compute-stack';
import { DataStack } from './stacks/data-stack';
import type { ConsumerDefinition } from './topology';

/**
 * The Stage's construct id for an environment, which is also what `cdk deploy` selects:
 * `npx cdk deploy 'Tickstock-dev/*'` (the stacks sit inside the Stage, so `--all`, which selects only
 * top-level stacks, finds none).
 */
export function stageId(stageName: string): string {
  return `Tickstock-${stageName}`;
}

export interface PipelineStageProps extends StageProps {
  readonly config: StageConfig;
  /**
   * The SQS consumers to deploy; tests pass their own.
   * @default CONSUMERS of lib/topology.ts
   */
  readonly consumers?: readonly ConsumerDefinition[];
}

/** One deployable environment: the data stack and the compute stack that stands on it. */
export class PipelineStage extends Stage {
  readonly data: DataStack;
  readonly compute: ComputeStack;

  constructor(scope: Construct, id: string, props: PipelineStageProps) {
    super(scope, id, props);
    this.data = new DataStack(this, 'Data', { config: props.config });
    this.compute = new ComputeStack(this, 'Compute', {
      config: props.config,
      data: this.data,
      consumers: props.consumers,
    });
  }
}
