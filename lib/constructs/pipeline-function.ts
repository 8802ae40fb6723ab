import { join } from 'node:path';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge, LAMBDA_FINDINGS } from '../nag';
import { REPO_ROOT } from '../paths';

export interface PipelineFunctionProps {
  /** Handler module relative to the repository root; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
  readonly environment: Record<string, string>;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  /** Encrypts the log group and the function's environment variables. */
  readonly encryptionKey: kms.IKey;
  readonly reservedConcurrentExecutions: number;
  /** Set when the function is invoked asynchronously and so needs an on-failure DLQ of its own. */
  readonly asyncDeadLetterQueue?: boolean;
  /** Extra files the handler reads at run time, copied next to the bundle. */
  readonly assetDirs?: readonly { from: string; to: string }[];
}

/**
 * The one way the pipeline builds a Lambda function: Node.js on arm64, bundled by the local esbuild
 * (never Docker), X-Ray tracing, an encrypted log group with a retention, in the VPC.
 */
export class PipelineFunction extends Construct {
  readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy,
    });
    const copies = props.assetDirs ?? [];
    this.function = new nodejs.NodejsFunction(this, 'Handler', {
      entry: join(REPO_ROOT, props.entry),
      handler: 'handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: props.memorySize,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      environmentEncryption: props.encryptionKey,
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      projectRoot: REPO_ROOT,
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        target: 'node20',
        format: nodejs.OutputFormat.CJS,
        // The runtime's bundled SDK can lag behind the version the code was tested with.
        externalModules: [],
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input: string, output: string) =>
            copies.map(
              (c) =>
                `mkdir -p "${join(output, c.to)}" && cp -r "${join(REPO_ROOT, c.from)}/." "${join(output, c.to)}"`,
            ),
        },
      },
    });
    this.function.applyRemovalPolicy(props.removalPolicy);
    acknowledge(this, {
      ...LAMBDA_FINDINGS,
      ...(props.asyncDeadLetterQueue
        ? {}
        : {
            'HIPAA.Security-LambdaDLQ':
              'invoked synchronously (SQS event source, trigger or on demand): failures return to the caller or the queue and its DLQ; an async DLQ would never receive anything',
          }),
    });
  }
}
