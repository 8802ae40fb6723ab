import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * cdk-nag AwsSolutions and HIPAA Security packs as CDK validation plugins: synth fails on any finding
 * that is not acknowledged. Acknowledgements (`Validations.of(x).acknowledge({ id, reason })`) sit
 * next to the construct they concern, each with its reason.
 */
export function applyNag(scope: IConstruct): void {
  Validations.of(scope).addPlugins(new AwsSolutionsChecks(scope, { verbose: true }));
  Validations.of(scope).addPlugins(new HIPAASecurityChecks(scope, { verbose: true }));
}

/** Acknowledges cdk-nag findings on a construct (and its children), each with its reason. */
export function acknowledge(scope: IConstruct, findings: Record<string, string>): void {
  for (const [id, reason] of Object.entries(findings)) Validations.of(scope).acknowledge({ id, reason });
}

/** Findings every Lambda function of the pipeline shares, with why each is accepted. */
export const LAMBDA_FINDINGS: Record<string, string> = {
  'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
    'AWS-maintained minimal policy for writing the function its own logs',
  'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]':
    'AWS-maintained minimal policy for managing the ENIs of a function in a VPC',
  'AwsSolutions-IAM5[Resource::*]':
    'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; every other statement is scoped',
  'HIPAA.Security-IAMNoInlinePolicy':
    'grant*() writes one role-scoped policy attached to exactly this role; reviewed with the code that needs it',
};
