import { basename } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REPLAY_PATHS } from '../../bin/commands/replay';
import { createPool } from '../../lambdas/platform/postgres';
import { applyLocalDefaults } from '../../localstack/env';
import { type ReplayReport, replay, replayDependencies } from '../../localstack/replay';

applyLocalDefaults();

const SIX_TYPES = [
  'ActiveCaloriesBurnedRecord',
  'BloodGlucoseRecord',
  'HeartRateRecord',
  'HeartRateVariabilityRmssdRecord',
  'SleepSessionRecord',
  'StepsRecord',
];

describe('health ETL replay on the local stage (S3 -> SQS -> runner -> handler)', () => {
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  const pool = createPool({ connectionString: process.env.DATABASE_URL as string, max: 2 });
  const bucket = process.env.DATA_BUCKET as string;
  let first: ReplayReport;
  let second: ReplayReport;

  async function trainingKeys(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: 'training/', ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key as string));
      token = page.NextContinuationToken;
    } while (token);
    return keys;
  }

  beforeAll(async () => {
    // Prepare: the test stage's record state starts empty, so the first replay decides everything.
    await pool.query('TRUNCATE health_records, health_record_blocks, health_ingests, health_sleep_spans');
    const deps = await replayDependencies({ s3, sqs, pool });
    // Act: the same files twice.
    first = await replay(DEFAULT_REPLAY_PATHS, deps);
    second = await replay(DEFAULT_REPLAY_PATHS, deps);
  }, 300_000);

  afterAll(async () => {
    await pool.end();
    s3.destroy();
    sqs.destroy();
  });

  it('accounts for every upload: uploaded = processed + quarantined + duplicate + dead-lettered', () => {
    expect(first.uploaded).toBe(37);
    expect(first.identityHolds).toBe(true);
    // 23 processed and 3 duplicates, or 24 and 2 when the 249-record glucose re-sync is decided
    // before a 250-record copy (see the near-identical syncs below).
    const extra = first.counts.processed - 23;
    expect(extra === 0 || extra === 1).toBe(true);
    expect(first.counts).toEqual({
      processed: 23 + extra,
      duplicate: 3 - extra,
      quarantined: 11,
      'dead-lettered': 0,
      pending: 0,
    });
  });

  it('produces training data for all six record types, one object per processed file', async () => {
    for (const type of SIX_TYPES) expect(first.byType[type]?.processed ?? 0).toBeGreaterThan(0);
    const keys = await trainingKeys();
    const processedIds = first.sourceIds.filter((_, i) => first.files[i]?.outcome === 'processed');
    for (const id of processedIds) expect(keys.filter((k) => k.includes(`.${id}.jsonl`))).toHaveLength(1);
  });

  it('recognises the three near-identical glucose syncs as duplicates', () => {
    // Day 1's export and its three near-identical re-syncs carry the same records. Whichever of the
    // four is decided first (two runner containers take batches in parallel, as Lambda would) is
    // processed; the other three are duplicates.
    const dayOne = [
      'BloodGlucoseRecord_1762306803112.avro',
      'BloodGlucoseRecord_1762307151907.avro',
      'BloodGlucoseRecord_1762307529033.avro',
      'BloodGlucoseRecord_1762308340640.avro',
    ];
    // Re-sync 2 (…7529033) holds the same records minus one. When the containers decide it before
    // every 250-record copy, the next 250-record copy brings that one record and is processed too:
    // never more than one extra, and then re-sync 2 is one of the two.
    const shorter = 'BloodGlucoseRecord_1762307529033.avro';
    const processed = first.files.filter((f) => dayOne.includes(f.file) && f.outcome === 'processed');
    const outcomes = first.files.filter((f) => dayOne.includes(f.file)).map((f) => f.outcome);
    expect(outcomes.every((o) => o === 'processed' || o === 'duplicate')).toBe(true);
    expect(
      processed.length === 1 || (processed.length === 2 && processed.some((f) => f.file === shorter)),
    ).toBe(true);
    const duplicates = first.files.filter((f) => f.outcome === 'duplicate').map((f) => f.file);
    expect(duplicates.every((f) => dayOne.includes(f))).toBe(true);
  });

  it('quarantines every bad file with a reason', () => {
    const quarantined = first.files.filter((f) => f.outcome === 'quarantined');
    expect(quarantined.map((f) => basename(f.file)).sort()).toEqual(
      [
        'WeightRecord_1762167600000.avro',
        'absurd-block-size.avro',
        'corrupt-sync-marker.avro',
        'deflate-bomb.avro',
        'empty.avro',
        'header-only.avro',
        'impossible-values.avro',
        'not-avro.avro',
        'snappy-bad-crc.avro',
        'truncated.avro',
        'wrong-magic.avro',
      ].sort(),
    );
    for (const f of quarantined) expect(f.reasons?.length ?? 0).toBeGreaterThan(0);
  });

  it('creates nothing new on a second replay', async () => {
    expect(second.identityHolds).toBe(true);
    expect(second.counts).toEqual({
      processed: 0,
      duplicate: 26,
      quarantined: 11,
      'dead-lettered': 0,
      pending: 0,
    });
    const keys = await trainingKeys();
    for (const id of second.sourceIds) expect(keys.some((k) => k.includes(id))).toBe(false);
  });
});
