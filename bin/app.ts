#!/usr/bin/env -S npx tsx
import { App } from 'aws-cdk-lib';
import { stageConfig } from '../lib/config';
import { applyNag, unacknowledgedFindings } from '../lib/nag';
import { PipelineStage, stageId } from '../lib/pipeline-stage';

// Configuration is read here, once; constructs receive it as props.
const app = new App();
let config: ReturnType<typeof stageConfig>;
try {
  config = stageConfig(app.node.tryGetContext('stage'));
} catch (error) {
  // A mistyped -c stage is a usage error: one line naming the valid stages, not a stack trace.
  console.error(`usage error: ${(error as Error).message}`);
  process.exit(2);
}
new PipelineStage(app, stageId(config.name), {
  config,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
applyNag(app);

const findings = unacknowledgedFindings(app.synth().directory);
if (findings.length > 0) {
  console.error(`cdk-nag: ${findings.length} unacknowledged finding(s):\n  ${findings.join('\n  ')}`);
  process.exitCode = 1;
}
