import type { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';

export interface NetworkProps {
  /** Availability zones (2 or more: the database's subnet group needs two). */
  readonly maxAzs: number;
  /** NAT gateways (1 to maxAzs); they serve only the functions that call the market-data provider. */
  readonly natGateways: number;
  /** Encrypts the flow-log group. */
  readonly logsKey: kms.IKey;
  readonly logRetentionDays: number;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The VPC: public subnets holding only NAT gateways, egress subnets for provider-calling functions,
 * isolated subnets for data stores and every other function, VPC endpoints for the AWS services
 * functions reach from isolated subnets, flow logs of all traffic, and the functions' security group.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** Security group of every pipeline function: the only source the proxy and Redis accept. */
  readonly functionSecurityGroup: ec2.SecurityGroup;
  /** Subnets with NAT egress, for functions that call the market-data provider. */
  readonly egressSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  /** Subnets without any route to the internet; AWS services through VPC endpoints. */
  readonly isolatedSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    if (!Number.isInteger(props.maxAzs) || props.maxAzs < 2)
      throw new Error(`network: maxAzs must be an integer >= 2 (RDS needs two AZs), got ${props.maxAzs}`);
    if (!Number.isInteger(props.natGateways) || props.natGateways < 1 || props.natGateways > props.maxAzs)
      throw new Error(
        `network: natGateways must be an integer from 1 (provider calls need a route out) to maxAzs (${props.maxAzs}), got ${props.natGateways}`,
      );

    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      encryptionKey: props.logsKey,
      removalPolicy: props.removalPolicy,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: props.maxAzs,
      natGateways: props.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'egress', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        all: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    this.vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    for (const [name, service] of [
      ['SqsEndpoint', ec2.InterfaceVpcEndpointAwsService.SQS],
      ['SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
      ['ElastiCacheEndpoint', ec2.InterfaceVpcEndpointAwsService.ELASTICACHE],
    ] as const) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        subnets: this.isolatedSubnets,
        privateDnsEnabled: true,
      });
    }

    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'pipeline Lambda functions',
      allowAllOutbound: false,
    });
    // HTTPS out: AWS services through the VPC endpoints, and the market-data provider through NAT.
    this.functionSecurityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'HTTPS to AWS endpoints and provider',
    );

    const endpointRules = {
      'AwsSolutions-EC23':
        'interface endpoint accepts HTTPS from the VPC CIDR only; the rule cannot read the CIDR token at synth time',
      'HIPAA.Security-EC2RestrictedCommonPorts':
        'interface endpoint accepts only TCP 443 from inside the VPC',
      'HIPAA.Security-EC2RestrictedSSH':
        'interface endpoint accepts only TCP 443 from inside the VPC; no SSH',
    };
    for (const child of this.vpc.node.children) {
      if (child instanceof ec2.InterfaceVpcEndpoint) acknowledge(child, endpointRules);
    }
    acknowledge(this.vpc, {
      'HIPAA.Security-VPCNoUnrestrictedRouteToIGW':
        'public subnets hold only the NAT gateways used by provider-calling functions; no workload runs there',
      'HIPAA.Security-IAMNoInlinePolicy':
        'flow-log delivery role created by CDK, scoped to its one log group',
    });
  }
}
