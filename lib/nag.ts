import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
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

/**
 * The finding for a role that may invoke any version of a function (`<fn>:*`), as Step Functions
 * and EventBridge Scheduler need: named by the function's logical id.
 */
export function invokeVersionsFinding(fn: lambda.IFunction): string {
  const cfn = fn.node.defaultChild as CfnElement;
  return `AwsSolutions-IAM5[Resource::<${Stack.of(fn).getLogicalId(cfn)}.Arn>:*]`;
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

interface ValidationReport {
  readonly pluginReports: {
    readonly pluginName: string;
    readonly conclusion: string;
    readonly violations: {
      readonly ruleName: string;
      readonly violatingConstructs: { readonly constructPath: string }[];
    }[];
  }[];
}

/**
 * The cdk-nag findings of a synthesized assembly, one line each. The CDK CLI checks the validation
 * report only for the stacks a command selects, and a plain `cdk synth` of a Stage-based app selects
 * none, so bin/app.ts checks the whole report itself.
 */
export function unacknowledgedFindings(assemblyDir: string): string[] {
  const file = join(assemblyDir, 'validation-report.json');
  if (!existsSync(file)) return [];
  const report = JSON.parse(readFileSync(file, 'utf8')) as ValidationReport;
  return report.pluginReports
    .filter((p) => p.conclusion === 'failure')
    .flatMap((p) =>
      p.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName}  ${c.constructPath}`)),
    );
}

/** Roles EventBridge Scheduler gets to invoke its targets. */
const SCHEDULER_ROLE_FINDINGS: Record<string, string> = {
  'HIPAA.Security-IAMNoInlinePolicy':
    'scheduler target role created by CDK, scoped to invoking its one target',
};

/**
 * EventBridge Scheduler's target roles are created at stack level (`SchedulerRoleForTarget-*`), one
 * per target, so a schedule's construct cannot acknowledge them on itself.
 */
export function acknowledgeSchedulerRoles(scope: IConstruct, invoked?: lambda.IFunction): void {
  for (const child of Stack.of(scope).node.children) {
    if (!child.node.id.startsWith('SchedulerRoleForTarget')) continue;
    acknowledge(child, {
      ...SCHEDULER_ROLE_FINDINGS,
      ...(invoked
        ? { [invokeVersionsFinding(invoked)]: 'the scheduler invokes its target function by version' }
        : {}),
    });
  }
}

/** The acknowledgement of a schedule construct itself. */
export function acknowledgeSchedule(schedule: IConstruct): void {
  acknowledge(schedule, SCHEDULER_ROLE_FINDINGS);
}
