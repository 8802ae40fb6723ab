import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { STAGES } from '../../lib/config';
import { REPO_ROOT } from '../../lib/paths';
import { PipelineStage, stageId } from '../../lib/pipeline-stage';

/*
 * Why this test exists: CloudFormation identifies a resource by its logical id. Moving a construct
 * (a new parent, a renamed id) changes the logical id of everything under it, and on the next deploy
 * CloudFormation creates the "new" resource and deletes the old one: a new empty database, a new
 * bucket, a new KMS key (and data encrypted with the old one orphaned), a new VPC under everything.
 * The split of the stacks into constructs (issue 10) changed these ids once, while nothing was
 * deployed. From now on they are pinned: a refactor that changes one fails here, and must either
 * keep the id (construct id, or `overrideLogicalId`) or come with a migration plan.
 *
 * Adding a stateful resource (a new consumer's queues, a new secret) is fine: add its id below.
 * Changing or removing one is the accident this test is for.
 */
const STATEFUL_TYPES = [
  'AWS::EC2::VPC',
  'AWS::KMS::Key',
  'AWS::S3::Bucket',
  'AWS::RDS::DBInstance',
  'AWS::RDS::DBCluster',
  'AWS::RDS::DBProxy',
  'AWS::ElastiCache::ReplicationGroup',
  'AWS::SecretsManager::Secret',
  // A replaced queue loses its in-flight messages, and a replaced dead-letter queue its dead letters.
  'AWS::SQS::Queue',
];

const PINNED_PROD = {
  data: [
    'AWS::EC2::VPC NetworkVpc7FB7348F',
    'AWS::ElastiCache::ReplicationGroup CacheReplicationGroupBFE59FF3',
    'AWS::KMS::Key DataKey17AFBB84',
    'AWS::RDS::DBInstance DatabaseInstanceAA8A5FDE',
    'AWS::RDS::DBProxy DatabaseInstanceProxyA71C974C',
    'AWS::S3::Bucket DataBucketAccessLogsC7D55B3F',
    'AWS::S3::Bucket DataBucketBD860FE1',
    'AWS::SecretsManager::Secret BrokerCredentials3A27FE8A',
    'AWS::SecretsManager::Secret CacheAuthToken04672416',
    // One login secret per database component (schemas/sql/0090_roles.sql).
    'AWS::SecretsManager::Secret DatabaseLogintickstockapplogin37A423A5',
    'AWS::SecretsManager::Secret DatabaseLogintickstockhealthloginAE3B7891',
    'AWS::SecretsManager::Secret DatabaseLogintickstockmarketlogin9E450429',
    'AWS::SecretsManager::Secret DatabaseLogintickstockrouterlogin5594F439',
    'AWS::SecretsManager::Secret DatabaseLogintickstocktradingloginECC56B83',
    'AWS::SecretsManager::Secret MarketDataApiKeyD70EA247',
    'AWS::SecretsManager::Secret TickstockprodDataDatabaseInstanceSecretB99648543fdaad7efa858a3daf9490cf0a702aeb',
  ],
  compute: [
    'AWS::KMS::Key MessagesKey44305758',
    'AWS::SQS::Queue BackfillDeadLetterQueue1F7F6069',
    'AWS::SQS::Queue BackfillQueue0B5C7931',
    'AWS::SQS::Queue EodChainDeadLetterQueueFE116EE7',
    'AWS::SQS::Queue EquityProcessingDeadLetterQueue231900DA',
    'AWS::SQS::Queue EquityProcessingQueue013133ED',
    'AWS::SQS::Queue HealthEtlDeadLetterQueueBE65E131',
    'AWS::SQS::Queue HealthEtlQueue094C8608',
    'AWS::SQS::Queue RouterBarsDeadLetterQueueBEC797DF',
    'AWS::SQS::Queue RouterBarsQueue27362C77',
  ],
};

const CDK_CONTEXT = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }
).context;

function statefulIds(template: Template): string[] {
  return Object.entries(template.toJSON().Resources as Record<string, { Type: string }>)
    .filter(([, r]) => STATEFUL_TYPES.includes(r.Type))
    .map(([id, r]) => `${r.Type} ${id}`)
    .sort();
}

// Prepare: the app exactly as bin/app.ts builds it for prod (same Stage id: the database secret's
// logical id contains it), the pipeline's own consumers. Synthesized once at load time, as in
// stage.test.ts: a synth on a loaded machine outlasts a test's timeout.
const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
const prod = new PipelineStage(app, stageId('prod'), { config: STAGES.prod });
app.synth();

describe('stateful logical ids', () => {
  it('keeps the logical id of every stateful resource of prod, so no refactor replaces one', () => {
    // Act
    const data = statefulIds(Template.fromStack(prod.data));
    const compute = statefulIds(Template.fromStack(prod.compute));

    // Assess
    expect(data).toEqual(PINNED_PROD.data);
    expect(compute).toEqual(PINNED_PROD.compute);
  });
});

describe('database credentials per component', () => {
  it('each function gets its own component login as DB_SECRET_ARN; only the migrate function gets the admin secret', () => {
    // Prepare
    const compute = Template.fromStack(prod.compute).toJSON().Resources as Record<
      string,
      { Type: string; Properties?: { Environment?: { Variables?: Record<string, unknown> } } }
    >;
    const data = Template.fromStack(prod.data).toJSON().Resources as Record<string, { Type: string }>;
    const secretOf = (v: unknown) => JSON.stringify(v);

    // Act
    const byFunction = Object.entries(compute)
      .filter(([, r]) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Environment?.Variables?.DB_HOST)
      .map(([id, r]) => [id, secretOf(r.Properties?.Environment?.Variables?.DB_SECRET_ARN)] as const);

    // Assess
    const admin = byFunction.filter(([, s]) => s.includes('DatabaseInstanceSecret'));
    expect(admin.map(([id]) => id.startsWith('Migrate'))).toEqual([true]);
    const health = byFunction.filter(([id]) => id.startsWith('HealthEtl'));
    expect(health.length).toBeGreaterThan(0);
    expect(health.every(([, s]) => s.includes('DatabaseLogintickstockhealthlogin'))).toBe(true);
    const backfill = byFunction.filter(([id]) => id.startsWith('Backfill'));
    expect(backfill.every(([, s]) => s.includes('DatabaseLogintickstockmarketlogin'))).toBe(true);
    const reconcile = byFunction.filter(([id]) => id.startsWith('TradingReconcile'));
    expect(reconcile).toHaveLength(1);
    expect(reconcile.every(([, s]) => s.includes('DatabaseLogintickstocktradinglogin'))).toBe(true);
    expect(Object.keys(data).filter((id) => id.startsWith('DatabaseLogin')).length).toBeGreaterThanOrEqual(5);
  });
});
