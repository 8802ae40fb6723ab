import { join } from 'node:path';
import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { queueUrlVariable } from '../../lambdas/platform/queues';
import { acknowledge, LAMBDA_FINDINGS } from '../nag';
import { REPO_ROOT } from '../paths';
import type { FunctionDefinition } from '../topology/types';

/** The market-data provider, for functions whose definition says `needsInternet`. */
export interface ProviderAccess {
  readonly baseUrl: string;
  /** The plan's limit for the whole account; each function gets its share per container. */
  readonly callsPerMinute: number;
  /** The provider's API key, bound to every function that calls it. */
  readonly apiKey: secretsmanager.ISecret;
}

/** The broker of the trading live engine, for functions whose definition says `needsBroker`. */
export interface BrokerAccess {
  readonly baseUrl: string;
  /** `{"keyId", "secretKey"}`, bound to every function that calls the broker. */
  readonly credentials: secretsmanager.ISecret;
}

/**
 * What every function of a stack shares: network, keys, log settings, the base environment and the
 * secrets every function reads. Built once by the compute stack.
 */
export interface FunctionPlatform {
  /**
   * The VPC functions run in.
   * @default none: only an emulator stage, whose functions are local processes (EMULATOR_OMISSIONS)
   */
  readonly vpc?: ec2.IVpc;
  /**
   * The only sources the database proxy and Redis admit.
   * @default none (no VPC)
   */
  readonly securityGroups?: readonly ec2.ISecurityGroup[];
  /**
   * Subnets without any route to the internet (AWS services through VPC endpoints).
   * @default none (no VPC)
   */
  readonly isolatedSubnets?: ec2.SubnetSelection;
  /**
   * Subnets with NAT egress, for functions that call the provider.
   * @default none: a definition with `needsInternet` is rejected
   */
  readonly egressSubnets?: ec2.SubnetSelection;
  /** Encrypts the log groups and the functions' environment variables. */
  readonly encryptionKey: kms.IKey;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  /** Variables every function gets (stage, data stores, log level). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Secrets every function reads (database, Redis AUTH), bound with `bindSecrets()`.
   * @default none
   */
  readonly secrets?: readonly secretsmanager.ISecret[];
  /**
   * The market-data provider.
   * @default none: a definition with `needsInternet` is rejected
   */
  readonly provider?: ProviderAccess;
  /**
   * The trading broker.
   * @default none: a definition with `needsBroker` is rejected
   */
  readonly broker?: BrokerAccess;
}

export interface JobFunctionProps {
  /** What the function is (lib/topology): handler, timeout, memory, internet, queues. */
  readonly definition: FunctionDefinition;
  readonly platform: FunctionPlatform;
  /**
   * Concurrent executions reserved (and allowed); the provider's rate limit is shared among them.
   * @default 1 (a job runs one at a time)
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Variables of this function only; a name the platform already sets is rejected.
   * @default none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * POWERTOOLS_SERVICE_NAME: the `service` of its logs and metrics.
   * @default the definition's id
   */
  readonly serviceName?: string;
  /**
   * Set when the function is invoked asynchronously and so needs an on-failure DLQ of its own.
   * @default false
   */
  readonly asyncDeadLetterQueue?: boolean;
  /**
   * Extra files the handler reads at run time, copied next to the bundle.
   * @default none
   */
  readonly assetDirs?: readonly { readonly from: string; readonly to: string }[];
}

/**
 * The one way the pipeline builds a Lambda function: Node.js on arm64, bundled by the local esbuild
 * (never Docker), X-Ray tracing, an encrypted log group with a retention, in the VPC (NAT subnets
 * only for provider callers), the platform's secrets bound. Queues and secrets beyond the platform's
 * are added with `sendTo()` and `bindSecrets()`.
 */
export class JobFunction extends Construct {
  readonly definition: FunctionDefinition;
  readonly function: nodejs.NodejsFunction;
  private readonly boundSecrets = new Set<string>();

  constructor(scope: Construct, id: string, props: JobFunctionProps) {
    super(scope, id);
    const { definition, platform } = props;
    this.definition = definition;
    const reserved = props.reservedConcurrentExecutions ?? 1;
    validate(definition, platform, reserved, props.environment ?? {});

    const provider = definition.needsInternet ? platform.provider : undefined;
    const broker = definition.needsBroker ? platform.broker : undefined;
    const environment: Record<string, string> = {
      NODE_OPTIONS: '--enable-source-maps',
      ...platform.environment,
      ...(provider
        ? {
            MARKET_API_BASE_URL: provider.baseUrl,
            POLYGON_API_KEY_SECRET_ARN: provider.apiKey.secretArn,
            // The provider's limit is per account and each container has its own token bucket.
            MARKET_API_CALLS_PER_MINUTE: String(Math.max(1, Math.floor(provider.callsPerMinute / reserved))),
          }
        : {}),
      ...(broker
        ? { BROKER_BASE_URL: broker.baseUrl, BROKER_CREDENTIALS_SECRET_ARN: broker.credentials.secretArn }
        : {}),
      ...props.environment,
      POWERTOOLS_SERVICE_NAME: props.serviceName ?? definition.id,
    };

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: platform.logRetentionDays as logs.RetentionDays,
      encryptionKey: platform.encryptionKey,
      removalPolicy: platform.removalPolicy,
    });
    const copies = props.assetDirs ?? [];
    this.function = new nodejs.NodejsFunction(this, 'Handler', {
      entry: join(REPO_ROOT, definition.entry),
      handler: 'handler',
      description: definition.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: Duration.seconds(definition.timeoutSeconds),
      memorySize: definition.memoryMb,
      ...(platform.vpc
        ? {
            vpc: platform.vpc,
            vpcSubnets:
              definition.needsInternet || definition.needsBroker
                ? platform.egressSubnets
                : platform.isolatedSubnets,
            securityGroups: [...(platform.securityGroups ?? [])],
          }
        : {}),
      environment,
      environmentEncryption: platform.encryptionKey,
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      reservedConcurrentExecutions: reserved,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      projectRoot: REPO_ROOT,
      bundling: {
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        target: 'node20',
        // esbuild's per-bundle size summary (a warning sign per bundle over 1 MB) is noise on every synth.
        logLevel: nodejs.LogLevel.WARNING,
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
    this.function.applyRemovalPolicy(platform.removalPolicy);
    this.bindSecrets(
      ...(platform.secrets ?? []),
      ...(provider ? [provider.apiKey] : []),
      ...(broker ? [broker.credentials] : []),
    );
    acknowledge(this, {
      ...LAMBDA_FINDINGS,
      ...(platform.vpc
        ? {}
        : {
            'HIPAA.Security-LambdaInsideVPC':
              'emulator stage only (deploy rehearsal): functions run as local processes; every AWS stage has a VPC',
          }),
      ...(props.asyncDeadLetterQueue
        ? {}
        : {
            'HIPAA.Security-LambdaDLQ':
              'invoked synchronously (SQS event source, Step Functions, trigger or on demand): failures return to the caller or the queue and its DLQ; an async DLQ would never receive anything',
          }),
    });
  }

  /**
   * Read access to secrets, granted on the function's role only: `Secret.grantRead` would also write
   * the role into the key policy of the secret's key, which lives in the data stack, making the data
   * stack depend on the compute stack. KMS use is limited to calls through Secrets Manager.
   */
  bindSecrets(...secrets: secretsmanager.ISecret[]): this {
    const fresh = secrets.filter((s) => !this.boundSecrets.has(s.secretArn));
    if (fresh.length === 0) return this;
    for (const s of fresh) this.boundSecrets.add(s.secretArn);
    const role = this.function.grantPrincipal;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: fresh.map((s) => s.secretArn),
      }),
    );
    const keys = [...new Set(fresh.flatMap((s) => (s.encryptionKey ? [s.encryptionKey.keyArn] : [])))];
    if (keys.length > 0) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: keys,
          conditions: {
            StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
          },
        }),
      );
    }
    return this;
  }

  /**
   * Lets the function send to a consumer's queue: its `QUEUE_URL_<ID>` variable, SendMessage on that
   * queue and the queue key, without grantSendMessages' wildcards.
   */
  sendTo(consumerId: string, queue: sqs.IQueue): this {
    this.function.addEnvironment(queueUrlVariable(consumerId), queue.queueUrl);
    const role = this.function.grantPrincipal;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
    );
    if (queue.encryptionMasterKey) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [queue.encryptionMasterKey.keyArn],
        }),
      );
    }
    return this;
  }
}

function validate(
  definition: FunctionDefinition,
  platform: FunctionPlatform,
  reserved: number,
  environment: Readonly<Record<string, string>>,
): void {
  const name = `function "${definition.id}"`;
  const { timeoutSeconds, memoryMb } = definition;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 900)
    throw new Error(
      `${name}: timeoutSeconds must be an integer from 1 to 900 (Lambda), got ${timeoutSeconds}`,
    );
  if (!Number.isInteger(memoryMb) || memoryMb < 128 || memoryMb > 10240)
    throw new Error(`${name}: memoryMb must be an integer from 128 to 10240 (Lambda), got ${memoryMb}`);
  if (!Number.isInteger(reserved) || reserved < 1)
    throw new Error(`${name}: reservedConcurrentExecutions must be a positive integer, got ${reserved}`);
  if (definition.needsInternet && platform.vpc && !platform.egressSubnets)
    throw new Error(`${name}: needsInternet requires the platform's egressSubnets (NAT); none were given`);
  if (definition.needsBroker && platform.vpc && !platform.egressSubnets)
    throw new Error(`${name}: needsBroker requires the platform's egressSubnets (NAT); none were given`);
  if (definition.needsBroker && !platform.broker)
    throw new Error(`${name}: needsBroker requires the platform's broker access (URL, credentials)`);
  if (definition.needsInternet && !platform.provider)
    throw new Error(`${name}: needsInternet requires the platform's provider access (URL, rate, API key)`);
  const clashes = Object.keys(environment).filter(
    (k) => k in platform.environment || k === 'POWERTOOLS_SERVICE_NAME' || k === 'NODE_OPTIONS',
  );
  if (clashes.length > 0)
    throw new Error(`${name}: environment would override platform variable(s) ${clashes.join(', ')}`);
}
