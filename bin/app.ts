#!/usr/bin/env -S npx tsx
import { App } from 'aws-cdk-lib';
import { stageConfig } from '../lib/config';
import { applyNag, unacknowledgedFindings } from '../lib/nag';
import { PipelineStage, stageId } from '../lib/pipeline-stage';

// Configuration is read here, once; constructs receive it as props.
const app = new App();
const config = stageConfig(app.node.tryGetContext('stage'));
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
