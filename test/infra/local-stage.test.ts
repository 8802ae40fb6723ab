import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { Template as T } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import {
  EMULATOR_COMPUTE_OMISSIONS,
  EMULATOR_OMISSIONS,
  EMULATOR_REPLACEMENTS,
  EMULATOR_RESOURCE_OMISSIONS,
  STAGES,
  type StageName,
} from '../../lib/config';
import { applyNag } from '../../lib/nag';
import { REPO_ROOT } from '../../lib/paths';
import { PipelineStage } from '../../lib/pipeline-stage';

// The deploy rehearsal deploys the `local` stage onto MiniStack. It must be the real app minus what
// the emulator cannot host, and that difference must be exactly the one lib/config.ts declares.

const CDK_CONTEXT = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }
).context;

function synth(name: StageName) {
  // Path metadata (as the CDK CLI turns on) names each resource's construct.
  const app = new App({
    context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true },
  });
  // The same construct id for both, so logical ids compare across stages.
  const stage = new PipelineStage(app, 'Rehearsal', { config: STAGES[name] });
  applyNag(app);
  app.synth();
  return { data: T.fromStack(stage.data), compute: T.fromStack(stage.compute) };
}

interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

function resources(t: Template): Record<string, Resource> {
  return (t.toJSON() as { Resources: Record<string, Resource> }).Resources;
}

/** The construct directly under the stack that created a resource (its id in the data stack). */
function topConstruct(resource: Resource): string {
  const path = String(resource.Metadata?.['aws:cdk:path'] ?? '');
  return path.split('/')[2] ?? '';
}

/** CDK singletons at stack level created on behalf of a construct: named after their provider. */
const SINGLETON_OWNERS: Readonly<Record<string, string>> = {
  // RDS log exports' retention is set by CDK's log-retention function.
  LogRetention: 'Database',
  // The VPC's default security group is emptied by a CDK custom resource.
  'Custom::VpcRestrictDefaultSGCustomResourceProvider': 'Network',
};

function owner(resource: Resource): string {
  const top = topConstruct(resource);
  const singleton = Object.keys(SINGLETON_OWNERS).find((prefix) => top.startsWith(prefix));
  return singleton ? (SINGLETON_OWNERS[singleton] as string) : top;
}

const dev = synth('dev');
const local = synth('local');

describe('the local (deploy rehearsal) stage', () => {
  it('has the same compute stack as dev: every function, queue, mapping, state machine, schedule, alarm and the dashboard', () => {
    // A function version's logical id ends in a hash of the function's configuration (its
    // environment differs by stage); the rest of the id names the resource. AWS-only parts
    // (EMULATOR_COMPUTE_OMISSIONS) are compared in the next test.
    const types = (t: Template) =>
      Object.fromEntries(
        Object.entries(resources(t))
          .filter(
            ([id, r]) =>
              !(owner(r) in EMULATOR_COMPUTE_OMISSIONS) &&
              !Object.keys(EMULATOR_RESOURCE_OMISSIONS).some((fragment) => id.includes(fragment)),
          )
          .map(([id, r]) => [id.replace(/(CurrentVersion\w{8})[0-9a-f]{32}$/, '$1'), r.Type]),
      );

    expect(types(local.compute)).toEqual(types(dev.compute));
    // The single resources left out: present in dev, absent locally.
    for (const fragment of Object.keys(EMULATOR_RESOURCE_OMISSIONS)) {
      expect(Object.keys(resources(dev.compute)).some((id) => id.includes(fragment))).toBe(true);
      expect(Object.keys(resources(local.compute)).some((id) => id.includes(fragment))).toBe(false);
    }
  });

  it('omits from the compute stack exactly the AWS-only constructs lib/config.ts lists (the router service)', () => {
    const owners = (t: Template) => new Set(Object.values(resources(t)).map(owner));
    const localOwners = owners(local.compute);
    const omitted = [...owners(dev.compute)].filter((o) => !localOwners.has(o)).sort();
    expect(omitted).toEqual(Object.keys(EMULATOR_COMPUTE_OMISSIONS).sort());
    for (const reason of Object.values(EMULATOR_COMPUTE_OMISSIONS)) expect(reason.length).toBeGreaterThan(40);
    expect(Object.keys(local.compute.findResources('AWS::ECS::Service'))).toHaveLength(0);
  });

  it('omits from the data stack exactly the constructs lib/config.ts lists, and adds only its replacements', () => {
    const owners = (t: Template) => new Set(Object.values(resources(t)).map(owner));
    const devOwners = owners(dev.data);
    const localOwners = owners(local.data);

    const omitted = [...devOwners].filter((o) => !localOwners.has(o)).sort();
    const added = [...localOwners].filter((o) => !devOwners.has(o)).sort();

    expect(omitted).toEqual(Object.keys(EMULATOR_OMISSIONS).sort());
    expect(added).toEqual(Object.keys(EMULATOR_REPLACEMENTS).sort());
    for (const reason of [...Object.values(EMULATOR_OMISSIONS), ...Object.values(EMULATOR_REPLACEMENTS)])
      expect(reason.length).toBeGreaterThan(40);
  });

  it('keeps every other data-stack resource (key, bucket and its access logs, ingest policy, API key) as in dev', () => {
    const kept = (t: Template) =>
      Object.entries(resources(t))
        .filter(([, r]) => !(owner(r) in EMULATOR_OMISSIONS) && !(owner(r) in EMULATOR_REPLACEMENTS))
        .map(([id, r]) => `${id} ${r.Type}`)
        .sort();

    expect(kept(local.data)).toEqual(kept(dev.data));
    expect(kept(local.data).some((r) => r.endsWith('AWS::S3::Bucket'))).toBe(true);
  });

  it("points functions at the machine's PostgreSQL and Redis without TLS, outside any VPC; AWS stages never do", () => {
    const functions = (t: Template) =>
      Object.values(resources(t)).filter(
        (r) =>
          r.Type === 'AWS::Lambda::Function' &&
          /\/Handler\/Resource$/.test(String(r.Metadata?.['aws:cdk:path'])),
      );
    const env = (r: Resource) =>
      ((r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ??
        {}) as Record<string, unknown>;

    const localFns = functions(local.compute);
    expect(localFns.length).toBeGreaterThan(5);
    for (const fn of localFns) {
      expect(env(fn)).toMatchObject({
        DB_HOST: '127.0.0.1',
        DB_NAME: 'tickstock_rehearsal',
        DB_TLS: 'disabled',
        REDIS_HOST: '127.0.0.1',
        REDIS_TLS: 'disabled',
        EVENT_BUS_NAMESPACE: 'tickstock_rehearsal',
      });
      expect(env(fn).REDIS_AUTH_SECRET_ARN).toBeUndefined();
      expect(fn.Properties?.VpcConfig).toBeUndefined();
    }
    for (const name of ['dev', 'staging', 'prod'] as const) {
      const fns = functions(name === 'dev' ? dev.compute : synth(name).compute);
      for (const fn of fns) {
        expect(env(fn).DB_TLS).toBeUndefined();
        expect(env(fn).REDIS_TLS).toBeUndefined();
        expect(fn.Properties?.VpcConfig).toBeDefined();
      }
    }
  });

  it('schedules the EOD chain by rate (emulators ignore cron time zones) and the jobs every minute', () => {
    const expressions = (t: Template) =>
      Object.values(resources(t))
        .filter((r) => r.Type === 'AWS::Scheduler::Schedule')
        .map((r) => [topConstruct(r), r.Properties?.ScheduleExpression])
        .sort();

    expect(expressions(local.compute)).toEqual([
      ['EodChain', 'rate(1 day)'],
      ['EquityDispatch', 'rate(1 minute)'],
      ['MarketCapRefresh', 'rate(1 minute)'],
      ['TradingReconcile', 'rate(1 minute)'],
    ]);
    expect(expressions(dev.compute)).toEqual([
      ['EodChain', 'cron(30 16 ? * MON-FRI *)'],
      ['EquityDispatch', 'rate(15 minutes)'],
      ['MarketCapRefresh', 'rate(15 minutes)'],
      ['TradingReconcile', `rate(${STAGES.dev.trading.reconcileEveryMinutes} minutes)`],
    ]);
  });
});
