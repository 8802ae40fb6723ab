/**
 * The fault suite (`npm run test:faults`): PostgreSQL, Redis, LocalStack and the local market API
 * each go away in the middle of a health replay and of an EOD run, and the runner is killed
 * mid-batch. Each run must account for everything (nothing lost, nothing doubled) and the suite
 * prints, per fault, what was in flight and the recovery time: from the service answering again to
 * the first unit of work that succeeded after it.
 *
 * Everything restarted is the suite's own: a throwaway PostgreSQL cluster and redis-server on free
 * ports, a TCP proxy in front of the shared LocalStack (cut and restored; LocalStack itself keeps
 * serving other checkouts), a market API on an ephemeral port, and a runner child process of a
 * `faults` local stage (its own bucket and queues).
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REPLAY_PATHS } from '../../bin/commands/replay';
import { PostgresRecordStore } from '../../lambdas/health/record-store';
import { TRAINING_MANIFEST_KEY } from '../../lambdas/health/training';
import { addDays } from '../../lambdas/market/calendar';
import {
  type EodChainDeps,
  type EodChainResult,
  type EodStep,
  runEodChain,
} from '../../lambdas/market/eod/chain';
import { PolygonProvider } from '../../lambdas/market/provider';
import { upsertBars } from '../../lambdas/market/sql/bars';
import { AWS_MAX_ATTEMPTS } from '../../lambdas/platform/aws';
import { componentDatabaseUrl } from '../../lambdas/platform/connections';
import { CHANNELS, EventBus, streamKey } from '../../lambdas/platform/event-bus';
import { loadMigrations, migrate } from '../../lambdas/platform/migrations';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { createRedisClient, type RedisClient } from '../../lambdas/platform/redis';
import { MIGRATIONS_DIR } from '../../lib/paths';
import { CONSUMERS } from '../../lib/topology';
import { HEALTH_CONSUMERS } from '../../lib/topology/health';
import { applyLocalDefaults } from '../../localstack/env';
import { type MarketApi, type MarketApiOptions, startMarketApi } from '../../localstack/market-api/server';
import { type ReplayReport, replay, replayDependencies } from '../../localstack/replay';
import { bootstrapResources, deadLetterQueueName, ensureQueue, queueName } from '../../localstack/resources';
import { upsertSymbols } from '../../localstack/scenarios/load';
import { freePort, RunnerProcess, TcpProxy, ThrowawayPostgres, ThrowawayRedis, waitUntil } from './services';

// ---------------------------------------------------------------------------------------------
// The `faults` local stage, pointed at the throwaway servers.

const LOCALSTACK = { host: '127.0.0.1', port: 4566 };
// A killed runner's in-flight messages come back after the queue's visibility timeout (6 x the
// handler timeout: 12 min for the ETL in AWS). The suite's own queue uses a shorter one to stay
// bounded, but not shorter than the handler timeout: the idempotency layer's in-progress lock on a
// crashed invocation lasts that long, and a redelivery before it expires is refused (and, after
// maxReceiveCount refusals, dead-lettered) exactly as it would be in AWS.
const ETL_TIMEOUT_SECONDS = HEALTH_CONSUMERS[0]?.timeoutSeconds ?? 120;
const FAULTS_VISIBILITY_SECONDS = ETL_TIMEOUT_SECONDS + 10;
// How long each service stays away.
const OUTAGE_MS = 2_000;

interface Figure {
  readonly workload: 'health replay' | 'EOD run';
  readonly fault: string;
  readonly inFlight: string;
  readonly outageMs: number;
  readonly recoveryMs: number | null;
  readonly accounting: string;
}
const figures: Figure[] = [];

let workDir: string;
let pgServer: ThrowawayPostgres;
let redisServer: ThrowawayRedis;
let proxy: TcpProxy;
let runner: RunnerProcess;
let admin: pg.Pool;
let redis: RedisClient;
let s3: S3Client;
let sqs: SQSClient;
let databaseUrl: string;

function faultsStageEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LOCAL_STAGE_ID;
  delete env.DATA_BUCKET;
  delete env.PG_SCHEMA;
  Object.assign(env, {
    LOCAL_STAGE_NAME: 'faults',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisServer.url,
    AWS_ENDPOINT_URL: proxy.url,
    DATABASE_COMPONENT_ROLES: 'true',
    LOG_LEVEL: 'WARN',
  });
  applyLocalDefaults(env);
  return env;
}

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'tickstock-faults-'));
  [pgServer, redisServer, proxy] = await Promise.all([
    ThrowawayPostgres.start(),
    ThrowawayRedis.start(),
    TcpProxy.start(LOCALSTACK),
  ]);
  const bootstrap = new pg.Client({ connectionString: pgServer.url() });
  await bootstrap.connect();
  await bootstrap.query('CREATE DATABASE tickstock');
  await bootstrap.end();
  databaseUrl = pgServer.url('tickstock');
  admin = createPool({ connectionString: databaseUrl, max: 2 });
  await migrate(admin, await loadMigrations(MIGRATIONS_DIR));

  // This worker speaks for the faults stage from here on (bucket and queue names derive from it).
  Object.assign(process.env, faultsStageEnv());
  s3 = new S3Client({ forcePathStyle: true, endpoint: proxy.url, maxAttempts: AWS_MAX_ATTEMPTS });
  sqs = new SQSClient({ endpoint: proxy.url, maxAttempts: AWS_MAX_ATTEMPTS });
  redis = createRedisClient({ url: redisServer.url });
  await redis.connect();

  // A clean slate for the stage's queues (a shortened visibility timeout is set below).
  for (const consumer of CONSUMERS) {
    for (const name of [queueName(consumer), deadLetterQueueName(consumer)]) {
      const url = `${proxy.url}/000000000000/${name}`;
      await sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined);
    }
  }
  const queues = await bootstrapResources({ s3, sqs }, process.env.DATA_BUCKET as string);
  for (const consumer of HEALTH_CONSUMERS) {
    await sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: queues[consumer.id]?.url as string,
        Attributes: { VisibilityTimeout: String(FAULTS_VISIBILITY_SECONDS) },
      }),
    );
  }
  runner = new RunnerProcess(faultsStageEnv(), workDir);
  await runner.up(CONSUMERS.length);
}, 300_000);

afterAll(async () => {
  printFigures();
  await runner?.stop();
  await Promise.allSettled([admin?.end(), redis?.close()]);
  s3?.destroy();
  sqs?.destroy();
  await Promise.allSettled([pgServer?.stop(), redisServer?.stop(), proxy?.stop()]);
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function printFigures(): void {
  if (figures.length === 0) return;
  const s = (ms: number | null) => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);
  const lines = [
    '',
    'fault suite figures (recovery = service answering again -> first successful unit after it)',
    '| workload | fault | in flight | outage | recovery | accounting after |',
    '|---|---|---|---|---|---|',
    ...figures.map(
      (f) =>
        `| ${f.workload} | ${f.fault} | ${f.inFlight} | ${s(f.outageMs)} | ${s(f.recoveryMs)} | ${f.accounting} |`,
    ),
  ];
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------------------------------------
// Health replay

interface ReplayRun {
  readonly report: ReplayReport;
  readonly records: number;
  /** Hash of which version of each record is stored (what newest-wins converges to). */
  readonly recordsMd5: string;
  readonly ingests: number;
  readonly trainingObjects: number;
  /** Per record: last_modified_ms, client_record_version, content hash, source id. */
  readonly recordVersions: Map<string, string>;
}

/** Empties the record store, the idempotency keys and the bucket: each replay decides everything. */
async function resetReplayState(): Promise<void> {
  await admin.query('TRUNCATE health_records, health_record_blocks, health_ingests, health_sleep_spans');
  await redis.sendCommand(['FLUSHDB']);
  const bucket = process.env.DATA_BUCKET as string;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, MaxKeys: 500 }));
    const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
      Key: v.Key as string,
      VersionId: v.VersionId,
    }));
    if (objects.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
  }
}

async function completedSince(since: number): Promise<number | null> {
  const { rows } = await admin.query<{ first: string | null }>(
    `SELECT (extract(epoch FROM min(completed_at)) * 1000)::bigint::text AS first
     FROM health_ingests WHERE completed_at >= to_timestamp($1 / 1000.0)`,
    [since],
  );
  return rows[0]?.first ? Number(rows[0].first) : null;
}

async function completedCount(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM health_ingests WHERE completed_at IS NOT NULL',
  );
  return rows[0]?.n ?? 0;
}

async function runReplay(
  fault?: (progress: { uploaded: boolean }) => Promise<{ up: number; inFlight: string } | undefined>,
  timeoutMs = 240_000,
): Promise<ReplayRun & { up?: number; inFlight?: string }> {
  await resetReplayState();
  const deps = await replayDependencies({ s3, sqs, pool: admin });
  const progress = { uploaded: false };
  const running = replay(DEFAULT_REPLAY_PATHS, {
    ...deps,
    timeoutMs,
    say: () => {
      progress.uploaded = true;
    },
  });
  const injected = fault ? await fault(progress) : undefined;
  const report = await running;
  // The stored version of every record (blocks of migration 0230, and rows older than it).
  const stored = (await new PostgresRecordStore(admin).listRecords()).sort((a, b) =>
    a.recordType < b.recordType ? -1 : a.recordType > b.recordType ? 1 : a.metadataId < b.metadataId ? -1 : 1,
  );
  const { rows } = await admin.query<{ ingests: number }>(
    'SELECT count(*)::int AS ingests FROM health_ingests',
  );
  const md5 = (text: string | Uint8Array) => createHash('md5').update(text).digest('hex');
  return {
    report,
    recordVersions: new Map(
      stored.map((r) => [
        `${r.recordType}/${r.metadataId}`,
        [r.lastModifiedMs, r.clientRecordVersion, r.contentHash, r.sourceId].join(' '),
      ]),
    ),
    records: stored.length,
    recordsMd5: md5(
      stored
        .map((r) => [r.recordType, r.metadataId, r.lastModifiedMs, r.clientRecordVersion].join('|'))
        .join(','),
    ),
    ingests: rows[0]?.ingests ?? 0,
    // One object per processed file; the manifest (training/manifest.json) lists them and is not one.
    trainingObjects: (await countObjects('training/')) - (await countObjects(TRAINING_MANIFEST_KEY)),
    ...injected,
  };
}

async function countObjects(prefix: string): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: process.env.DATA_BUCKET as string,
        Prefix: prefix,
        ContinuationToken: token,
      }),
    );
    count += page.KeyCount ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  return count;
}

/** Waits until the replay is under way (some files done, uploads finished when `afterUpload`). */
async function midReplay(progress: { uploaded: boolean }, afterUpload: boolean): Promise<string> {
  await waitUntil(
    'the replay to get under way',
    async () => (!afterUpload || progress.uploaded) && (await completedCount()) >= 1,
    120_000,
  );
  const done = await completedCount();
  return `${done} of 37 files decided, the rest uploaded or in the runner's batches`;
}

/** Files whose outcome differs from the clean run's (order-dependent processed/duplicate swaps). */
function swapped(run: ReplayRun, clean: ReplayRun): string[] {
  const before = new Map(clean.report.files.map((f) => [f.file, f.outcome]));
  return run.report.files
    .filter((f) => before.get(f.file) !== f.outcome)
    .map((f) => `${f.file}: ${before.get(f.file)} -> ${f.outcome}`);
}

function replayAccounting(run: ReplayRun, clean: ReplayRun): string {
  const c = run.report.counts;
  const changed = swapped(run, clean);
  return (
    `uploaded ${run.report.uploaded} = processed ${c.processed} + quarantined ${c.quarantined} + ` +
    `duplicate ${c.duplicate} + dead-lettered ${c['dead-lettered']} (pending ${c.pending}); ` +
    `${run.records} records, versions ${run.recordsMd5 === clean.recordsMd5 ? 'equal to' : 'DIFFERENT from'} the clean run's ` +
    `(${payloadTies(run, clean)} equal-lastModified ties kept from another export); ` +
    `${run.trainingObjects} training objects` +
    (changed.length > 0 ? `; decided in another order: ${changed.join(', ')}` : '')
  );
}

/**
 * Records stored at the same version (lastModified, client version) as in the clean run but with
 * another payload: two exports carried the record with equal lastModified and different content,
 * and newest-wins leaves such a tie to whichever export was decided first. A fault can change that
 * order, so these are reported, not failed.
 */
function payloadTies(run: ReplayRun, clean: ReplayRun): number {
  let ties = 0;
  for (const [key, version] of run.recordVersions) {
    const before = clean.recordVersions.get(key)?.split(' ');
    const now = version.split(' ');
    if (before && before[0] === now[0] && before[1] === now[1] && before[2] !== now[2]) ties++;
  }
  return ties;
}

/** Records whose stored version differs from the clean run's (a few, for the failure message). */
function differingRecords(run: ReplayRun, clean: ReplayRun): string[] {
  const sourceFile = (r: ReplayRun, version: string | undefined) => {
    const id = version?.split(' ')[3];
    const i = r.report.sourceIds.indexOf(id ?? '');
    return i >= 0 ? r.report.files[i]?.file : id;
  };
  const out: string[] = [];
  for (const [key, version] of run.recordVersions) {
    const before = clean.recordVersions.get(key);
    if (before?.split(' ').slice(0, 2).join(' ') !== version.split(' ').slice(0, 2).join(' ')) {
      out.push(
        `${key}: clean ${before?.split(' ').slice(0, 2).join(' ')} from ${sourceFile(clean, before)}, ` +
          `now ${version.split(' ').slice(0, 2).join(' ')} from ${sourceFile(run, version)}`,
      );
    }
  }
  return out.slice(0, 5);
}

describe('health replay with faults', () => {
  let clean: ReplayRun;

  beforeAll(async () => {
    clean = await runReplay();
  }, 300_000);

  /**
   * Nothing lost, nothing doubled: every upload decided once, the same files quarantined, the
   * record store converged to the same content, one training object per processed file. Which of
   * the near-identical glucose re-syncs counts as "processed" depends on the order the files are
   * decided in, and a fault may change that order: the split between processed and duplicate may
   * differ, their sum may not.
   */
  function expectSameAsClean(run: ReplayRun): void {
    const c = run.report.counts;
    expect(run.report.identityHolds).toBe(true);
    expect(c.pending).toBe(0);
    expect(c['dead-lettered']).toBe(0);
    expect(c.quarantined).toBe(clean.report.counts.quarantined);
    expect(c.processed + c.duplicate).toBe(clean.report.counts.processed + clean.report.counts.duplicate);
    expect(run.records).toBe(clean.records);
    expect(differingRecords(run, clean)).toEqual([]);
    expect(run.recordsMd5).toBe(clean.recordsMd5);
    expect(run.ingests).toBe(clean.ingests);
    expect(run.trainingObjects).toBe(c.processed);
  }

  it('a clean replay accounts for every upload (the baseline)', () => {
    expect(clean.report.identityHolds).toBe(true);
    expect(clean.report.uploaded).toBe(37);
    expect(clean.records).toBeGreaterThan(0);
    expect(clean.trainingObjects).toBe(clean.report.counts.processed);
  });

  it('PostgreSQL restarted mid-replay: the runner survives and nothing is lost or doubled', async () => {
    let outage = 0;
    const run = await runReplay(async (progress) => {
      const inFlight = await midReplay(progress, false);
      const down = Date.now();
      pgServer.down();
      await sleep(OUTAGE_MS);
      const up = await pgServer.up();
      outage = up - down;
      return { up, inFlight };
    });

    expect(runnerAlive()).toBe(true);
    expectSameAsClean(run);
    const first = await completedSince(run.up as number);
    figures.push({
      workload: 'health replay',
      fault: 'PostgreSQL restart (pg_ctl stop -m fast, start)',
      inFlight: run.inFlight as string,
      outageMs: outage,
      recoveryMs: first === null ? null : first - (run.up as number),
      accounting: replayAccounting(run, clean),
    });
  });

  it('Redis killed and restarted mid-replay: nothing is lost or doubled', async () => {
    let outage = 0;
    const run = await runReplay(async (progress) => {
      const inFlight = await midReplay(progress, false);
      const down = Date.now();
      await redisServer.down();
      await sleep(OUTAGE_MS);
      const up = await redisServer.up();
      outage = up - down;
      return { up, inFlight };
    });

    expect(runnerAlive()).toBe(true);
    expectSameAsClean(run);
    const first = await completedSince(run.up as number);
    figures.push({
      workload: 'health replay',
      fault: 'Redis SIGKILL, restart (AOF)',
      inFlight: run.inFlight as string,
      outageMs: outage,
      recoveryMs: first === null ? null : first - (run.up as number),
      accounting: replayAccounting(run, clean),
    });
  });

  it('LocalStack cut off mid-replay (S3 and SQS unreachable): nothing is lost or doubled', async () => {
    let outage = 0;
    const run = await runReplay(async (progress) => {
      const inFlight = await midReplay(progress, true);
      const down = Date.now();
      await proxy.down();
      await sleep(OUTAGE_MS);
      const up = await proxy.up();
      outage = up - down;
      return { up, inFlight };
    });

    expect(runnerAlive()).toBe(true);
    expectSameAsClean(run);
    const first = await completedSince(run.up as number);
    figures.push({
      workload: 'health replay',
      fault: 'LocalStack unreachable (proxy cut, restored)',
      inFlight: run.inFlight as string,
      outageMs: outage,
      recoveryMs: first === null ? null : first - (run.up as number),
      accounting: replayAccounting(run, clean),
    });
  });

  // The killed runner's messages return only after the visibility timeout (the handler's timeout,
  // 450 s since the health time budget, plus 10 s): the replay waits that long and a little more.
  const KILLED_RUNNER_WAIT_MS = (FAULTS_VISIBILITY_SECONDS + 180) * 1_000;
  it(
    'the runner killed mid-batch: its in-flight messages come back and nothing is lost or doubled',
    async () => {
      let outage = 0;
      const run = await runReplay(async (progress) => {
        const inFlight = await midReplay(progress, false);
        const down = Date.now();
        await runner.kill();
        await sleep(OUTAGE_MS);
        const up = await runner.up(CONSUMERS.length);
        outage = up - down;
        return { up, inFlight: `${inFlight}; SIGKILL of the runner` };
      }, KILLED_RUNNER_WAIT_MS);

      expectSameAsClean(run);
      const first = await completedSince(run.up as number);
      figures.push({
        workload: 'health replay',
        fault: `runner SIGKILL mid-batch, restarted (visibility timeout ${FAULTS_VISIBILITY_SECONDS} s)`,
        inFlight: run.inFlight as string,
        outageMs: outage,
        recoveryMs: first === null ? null : first - (run.up as number),
        accounting: replayAccounting(run, clean),
      });
    },
    KILLED_RUNNER_WAIT_MS + 120_000,
  );
});

/** The runner process is still the one started before the fault (a crash would have ended it). */
function runnerAlive(): boolean {
  return runner.alive();
}

// ---------------------------------------------------------------------------------------------
// EOD run

const D1 = '2025-07-02';
const HISTORY_FROM = '2025-05-01';
let marketPort = 0;
let market: MarketApi;
const MARKET: MarketApiOptions = {
  seed: 'faults-eod',
  size: 500,
  listings: { [D1]: 3 },
  delistings: { [D1]: 2 },
};

interface EodOutcome {
  readonly result: EodChainResult;
  readonly snapshot: Record<string, string | number>;
  /**
   * Backfill job messages in the queue, and the distinct jobs among them (by the outbox message id).
   * SQS is at-least-once: a send whose answer is lost (LocalStack cut mid-request) is sent again by
   * the SDK, and the backfill worker is idempotent (bars upserted, progress keys stable); what must
   * equal the clean run is the set of jobs.
   */
  readonly backfillJobs: { readonly messages: number; readonly distinct: number };
  readonly streamEntries: number;
  readonly uniqueMessages: number;
  readonly retries: number;
  readonly steps: { step: EodStep | 'done'; at: number }[];
}

async function eodSnapshot(pool: pg.Pool): Promise<Record<string, string | number>> {
  const { rows } = await pool.query(
    `SELECT
       (SELECT count(*)::int FROM symbols) AS symbols,
       (SELECT md5(string_agg(concat_ws('|', symbol, active, delisted_at, first_seen, type, market_cap), ',' ORDER BY symbol)) FROM symbols) AS symbols_md5,
       (SELECT count(*)::int FROM ohlcv_daily) AS bars,
       (SELECT md5(string_agg(concat_ws('|', symbol, date, open, high, low, close, volume), ',' ORDER BY symbol, date)) FROM ohlcv_daily) AS bars_md5,
       (SELECT count(*)::int FROM universe_members) AS members,
       (SELECT md5(string_agg(concat_ws('|', u.category, u.name, m.symbol, m.ordinal), ',' ORDER BY u.category, u.name, m.ordinal))
          FROM universes u JOIN universe_members m ON m.universe_id = u.id) AS universes_md5,
       (SELECT string_agg(trade_date || ' ' || status || ' ' || symbols_with_bar || '/' || tracked_symbols, ',') FROM eod_runs) AS eod_runs,
       (SELECT count(*)::int FROM data_quality_alerts) AS alerts,
       (SELECT count(*)::int FROM universe_changes) AS universe_changes,
       (SELECT count(*)::int FROM market_outbox) AS outbox,
       (SELECT count(*)::int FROM market_outbox WHERE published_at IS NULL) AS outbox_undelivered`,
  );
  return rows[0] as Record<string, string | number>;
}

async function runEod(
  label: string,
  fault?: (step: EodStep) => Promise<void> | undefined,
): Promise<EodOutcome> {
  const schema = `eod_${label}_${randomBytes(3).toString('hex')}`;
  await migrate(admin, await loadMigrations(MIGRATIONS_DIR), schema);
  const owner = createPool({ connectionString: databaseUrl, schema, max: 2 });
  // The market jobs' own role, as on the stage.
  const pool = createPool({ connectionString: componentDatabaseUrl(databaseUrl, 'market'), schema, max: 4 });
  const namespace = `faults_${label}_${randomBytes(3).toString('hex')}`;
  const queue = await ensureQueue(
    sqs,
    {
      id: `faults-eod-backfill-${label}-${randomBytes(3).toString('hex')}`,
      maxReceiveCount: 5,
      timeoutSeconds: 30,
    },
    30,
  );
  const provider = new PolygonProvider({
    baseUrl: `http://127.0.0.1:${marketPort}`,
    apiKey: async () => 'faults-key',
    baseBackoffMs: 200,
    maxBackoffMs: 2_000,
  });
  try {
    const master = market.market.activeOn(addDays(D1, -1));
    await upsertSymbols(owner, master, { start: '2025-01-02', end: addDays(D1, -1) });
    await upsertBars(
      owner,
      [...market.market.groupedBarsRange(HISTORY_FROM, addDays(D1, -1)).values()].flat(),
    );
    const steps: EodOutcome['steps'] = [];
    let retries = 0;
    const pending: Promise<void>[] = [];
    const deps: EodChainDeps = {
      pool,
      provider,
      transportFor: (service) => {
        const bus = new EventBus({ client: redis, service, namespace });
        return {
          bus,
          transport: outboxTransport({ bus, redis, sqs, queueUrl: async () => queue.url }),
        };
      },
      beforeStep: (step) => {
        steps.push({ step, at: Date.now() });
        const injected = fault?.(step);
        if (injected) pending.push(injected);
      },
      onRetry: () => {
        retries += 1;
      },
    };
    const result = await runEodChain(deps, { tradeDate: D1 });
    steps.push({ step: 'done', at: Date.now() });
    await Promise.all(pending);
    let streamEntries = 0;
    const ids = new Set<string>();
    for (const channel of Object.values(CHANNELS)) {
      const reply = (await redis.sendCommand(['XRANGE', streamKey(channel, namespace), '-', '+'])) as [
        string,
        string[],
      ][];
      streamEntries += reply.length;
      for (const [, fields] of reply) {
        const envelope = fields[fields.indexOf('envelope') + 1] ?? '';
        ids.add(JSON.parse(envelope).message_id as string);
      }
    }
    return {
      result,
      snapshot: await eodSnapshot(owner),
      backfillJobs: await queuedJobs(queue.url),
      streamEntries,
      uniqueMessages: ids.size,
      retries,
      steps,
    };
  } finally {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.url })).catch(() => undefined);
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.deadLetterUrl })).catch(() => undefined);
    await Promise.allSettled([pool.end()]);
    await owner.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => undefined);
    await owner.end();
  }
}

/** Every message of a (test-owned) queue, read once: how many, and how many distinct outbox message ids. */
async function queuedJobs(queueUrl: string): Promise<{ messages: number; distinct: number }> {
  const ids = new Set<string>();
  let messages = 0;
  for (;;) {
    const page = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 300,
        MessageAttributeNames: ['message_id'],
      }),
    );
    const received = page.Messages ?? [];
    if (received.length === 0) break;
    messages += received.length;
    for (const m of received) ids.add(m.MessageAttributes?.message_id?.StringValue ?? m.MessageId ?? '');
  }
  return { messages, distinct: ids.size };
}

/** The first step boundary (a step done, the next begun) after the service answered again. */
function firstUnitAfter(outcome: EodOutcome, up: number): number | null {
  const after = outcome.steps.slice(1).find((s) => s.at >= up);
  return after ? after.at - up : null;
}

describe('EOD run with faults', () => {
  let clean: EodOutcome;

  beforeAll(async () => {
    marketPort = await freePort();
    market = await startMarketApi({ ...MARKET, port: marketPort });
    clean = await runEod('clean');
  }, 300_000);

  afterAll(async () => {
    await market?.close();
  });

  function expectSameAsClean(run: EodOutcome): void {
    expect(run.result.ok).toBe(true);
    expect(run.result.status).toBe(clean.result.status);
    expect(run.snapshot).toEqual(clean.snapshot);
    expect(run.backfillJobs.distinct).toBe(clean.backfillJobs.distinct);
    expect(run.uniqueMessages).toBe(clean.uniqueMessages);
    expect(run.streamEntries).toBe(run.uniqueMessages);
  }

  function eodAccounting(run: EodOutcome): string {
    const s = run.snapshot;
    return (
      `${run.result.status}; ${s.bars} bars, ${s.symbols} symbols, ${s.members} universe members, ${s.alerts} alerts ` +
      `(equal to the clean run: ${JSON.stringify(run.snapshot) === JSON.stringify(clean.snapshot)}); ` +
      `${run.backfillJobs.distinct} backfill jobs in ${run.backfillJobs.messages} messages (clean ${clean.backfillJobs.distinct}); ${run.streamEntries} stream entries, ` +
      `${run.uniqueMessages} distinct (clean ${clean.uniqueMessages}); outbox undelivered ${s.outbox_undelivered}; ` +
      `${run.retries} in-process step retries`
    );
  }

  it('a clean run publishes, enqueues and records the session once (the baseline)', () => {
    expect(clean.result.ok).toBe(true);
    expect(clean.result.status).toBe('COMPLETE');
    expect(clean.backfillJobs.distinct).toBeGreaterThan(0);
    expect(clean.backfillJobs.messages).toBe(clean.backfillJobs.distinct);
    expect(clean.streamEntries).toBe(clean.uniqueMessages);
    expect(clean.snapshot.outbox_undelivered).toBe(0);
  });

  async function withFault(
    name: string,
    atStep: EodStep,
    down: () => Promise<void> | void,
    up: () => Promise<number>,
  ): Promise<void> {
    let downAt = 0;
    let upAt = 0;
    let inFlight = '';
    const run = await runEod(name.split(' ')[0]?.toLowerCase() ?? 'fault', (step) => {
      if (step !== atStep) return undefined;
      inFlight = `step ${step} (of load, ipo_scan, quality, complete, sync, correlation) starting`;
      // Asynchronous: the step runs while the service goes away.
      return (async () => {
        await sleep(50);
        downAt = Date.now();
        await down();
        await sleep(OUTAGE_MS);
        upAt = await up();
      })();
    });
    expectSameAsClean(run);
    figures.push({
      workload: 'EOD run',
      fault: name,
      inFlight,
      outageMs: upAt - downAt,
      recoveryMs: firstUnitAfter(run, upAt),
      accounting: eodAccounting(run),
    });
  }

  it('PostgreSQL restarted during the IPO scan: the run ends as a clean run does', async () => {
    await withFault(
      'PostgreSQL restart (pg_ctl stop -m fast, start)',
      'ipo_scan',
      () => pgServer.down(),
      () => pgServer.up(),
    );
  });

  it('Redis killed and restarted while the EOD signal is published: the run ends as a clean run does', async () => {
    await withFault(
      'Redis SIGKILL, restart (AOF)',
      'complete',
      () => redisServer.down(),
      () => redisServer.up(),
    );
  });

  it('LocalStack cut off while the IPO scan enqueues backfill jobs: the run ends as a clean run does', async () => {
    await withFault(
      'LocalStack unreachable (proxy cut, restored)',
      'ipo_scan',
      () => proxy.down(),
      () => proxy.up(),
    );
  });

  it('the market API restarted during the daily load: the run ends as a clean run does', async () => {
    await withFault(
      'market API restart',
      'load',
      () => market.close(),
      async () => {
        market = await startMarketApi({ ...MARKET, port: marketPort });
        return Date.now();
      },
    );
  });
});
