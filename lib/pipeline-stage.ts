import { Stage, type StageProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StageConfig } from './config';
import { ComputeStack } from './stacks/compute-stack';
import { DataStack } from './stacks/data-stack';
import type { ConsumerDefinition } from './topology';

export interface PipelineStageProps extends StageProps {
  readonly config: StageConfig;
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
