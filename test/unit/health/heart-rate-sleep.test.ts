/**
 * Sleeping and resting heart rate from the person's sleep sessions (issue 15, point 4): the sleep
 * records say when the person slept, the heart-rate samples inside those sessions are the sleeping
 * heart rate and the resting figure is taken from them; the 22:00-05:59 clock window only stands
 * in on a night no sleep record covers, and every output says which definition was used.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processExport } from '../../../lambdas/health/pipeline';
import { createProcessor } from '../../../lambdas/health/processors';
import { type HeartRateInsights, RESTING_DEFINITIONS } from '../../../lambdas/health/processors/heart-rate';
import { type SleepSpan, sleepSpanOf } from '../../../lambdas/health/processors/sleep';
import { MemoryRecordStore, PostgresRecordStore } from '../../../lambdas/health/record-store';
import {
  MemorySleepSpans,
  PostgresSleepSpans,
  type SleepSpanStore,
} from '../../../lambdas/health/sleep-spans';
import { rawKeyFor } from '../../../lambdas/health/source';
import type { HeartRateRecord, SleepSessionRecord } from '../../../lambdas/health/types';
import { batchOrder } from '../../../lambdas/health-etl/messages';
import { FIXTURES_DIR, SAMPLES_DIR, sleepSession } from '../../fixtures/health/generator';
import { createTestSchema, type TestSchema } from '../../support/db';
import { loadSample, NOW } from './helpers';

const MINUTE = 60_000;
const ZONE = '-05:00';
/** Local (-05:00) clock of 2025-11-04 + `day` days, as epoch millis. */
const local = (day: number, hour: number, minute = 0) => Date.UTC(2025, 10, 4 + day, hour + 5, minute);

const META = {
  id: 'x',
  dataOriginPackageName: 'com.ouraring.oura',
  lastModifiedTimeEpochMillis: 1,
  clientRecordId: null,
  clientRecordVersion: 0,
  device: null,
};

/** A heart-rate series record: one sample every `stepMin` minutes from `start`. */
function series(id: string, origin: string, start: number, bpm: number[], stepMin = 5): HeartRateRecord {
  return {
    metadata: { ...META, id, dataOriginPackageName: origin },
    startTimeEpochMillis: start,
    endTimeEpochMillis: start + (bpm.length - 1) * stepMin * MINUTE,
    startZoneOffsetId: ZONE,
    endZoneOffsetId: ZONE,
    samples: bpm.map((b, i) => ({ timeEpochMillis: start + i * stepMin * MINUTE, beatsPerMinute: b })),
    appRecordFetchTimeEpochMillis: 2,
  };
}

/** A main sleep session span as the sleep processor makes it from a real-shape session record. */
function night(seed: number, start: number, minutes: number, title: string | null = null): SleepSpan {
  const stages: Record<string, [number, number]> =
    minutes >= 240
      ? { LIGHT: [minutes - 170, 10], DEEP: [90, 4], REM: [60, 4], AWAKE: [20, 3] }
      : { LIGHT: [minutes - 20, 4], AWAKE: [20, 2] };
  const record = sleepSession({
    seed,
    origin: 'oura',
    start,
    minutes,
    stages,
    title,
  }) as unknown as SleepSessionRecord;
  return sleepSpanOf(record) as SleepSpan;
}

function heartRate(records: HeartRateRecord[], sleepSpans?: SleepSpan[]) {
  const p = createProcessor('HeartRateRecord');
  for (const r of records) p.add(r);
  const result = p.finish(sleepSpans ? { sleepSpans } : undefined);
  return { ...result, ins: result.insights as unknown as HeartRateInsights };
}

describe('resting and sleeping heart rate from sleep sessions', () => {
  // The evening of 11-04: the watch reads 58-62 bpm from 22:00 while the person is still up, the
  // ring's series from 23:30 reads 88-92 bpm while asleep (the session runs 23:30-06:30).
  const watchEvening = series(
    'w',
    'com.google.android.apps.fitness',
    local(0, 22),
    [58, 60, 62, 60, 58, 60],
    10,
  );
  const ringNight = series(
    'r',
    'com.ouraring.oura',
    local(0, 23, 30),
    Array.from({ length: 60 }, (_, i) => 88 + (i % 5)),
  );
  const sleep = night(1, local(0, 23, 30), 420);

  it('a sleeping heart rate of 90 bpm is the resting basis, not the awake evening readings', () => {
    // Act
    const withSleep = heartRate([watchEvening, ringNight], [sleep]);
    const clockOnly = heartRate([watchEvening, ringNight]);

    // Assess: with the sleep record, resting comes from the 60 samples asleep.
    expect(withSleep.ins).toMatchObject({
      restingMethod: 'sleep_sessions',
      restingDefinition: RESTING_DEFINITIONS.sleep_sessions,
      restingFrom: 'com.ouraring.oura',
      restingBpm: 88,
      sleepingBpm: 90,
      sleepingFrom: 'com.ouraring.oura',
      sleepSessions: { count: 1, origins: ['com.ouraring.oura'], nights: ['2025-11-04'] },
    });
    // The watch's evening readings fall in the 22:00-05:59 window but outside the session: not asleep.
    expect(withSleep.ins.origins['com.google.android.apps.fitness']).toMatchObject({
      overnightSamples: 6,
      sleepSamples: 0,
      restingSamples: 0,
      restingBpm: null,
    });
    expect(withSleep.narrative).toMatch(
      /During sleep \(inside the sleep sessions of the sleep records\) heart rate averaged 90\.0 bpm over 60 samples, high for sleep\./,
    );
    expect(withSleep.narrative).toMatch(
      /Resting heart rate was 88\.0 bpm \(within the 60-100 normal range\), the mean of the lowest 20 % of the 60 samples recorded during sleep sessions \(com\.ouraring\.oura sleep records\), from com\.ouraring\.oura\./,
    );
    expect(withSleep.narrative).toMatch(/discuss the high heart rate during the night with a clinician/);

    // Assess: without it, the clock window stands in and says so.
    expect(clockOnly.ins).toMatchObject({
      restingMethod: 'overnight_window',
      restingDefinition: RESTING_DEFINITIONS.overnight_window,
      sleepingBpm: null,
      sleepSessions: { count: 0 },
    });
    expect(clockOnly.narrative).toMatch(
      /overnight samples \(22:00-05:59 local\), as no sleep record covers the night/,
    );
  });

  it('a night no sleep record covers falls back to the clock window; both definitions are named', () => {
    // Prepare: two nights of ring data, a sleep record for the first only.
    const second = series(
      'r2',
      'com.ouraring.oura',
      local(1, 23, 30),
      Array.from({ length: 60 }, () => 50),
    );

    // Act
    const { ins, narrative } = heartRate([ringNight, second], [sleep]);

    // Assess
    expect(ins.restingMethod).toBe('sleep_sessions_and_overnight_window');
    expect(ins.origins['com.ouraring.oura']).toMatchObject({ sleepSamples: 60, restingSamples: 120 });
    expect(ins.restingBpm).toBe(50);
    expect(narrative).toMatch(
      /of the 120 samples recorded during sleep sessions \(com\.ouraring\.oura sleep records\) and, on nights no sleep record covers, between 22:00 and 05:59 local/,
    );
  });

  it('a nap is not a night: samples during a nap are not sleeping or resting samples', () => {
    const afternoon = series('a', 'com.ouraring.oura', local(0, 14), [70, 72, 74, 72, 70, 71]);
    const nap = night(3, local(0, 13, 50), 100, 'Nap');
    expect(nap.kind).toBe('nap');
    const { ins } = heartRate([afternoon], [nap]);
    expect(ins).toMatchObject({ restingMethod: null, restingBpm: null, sleepingBpm: null });
  });

  it('two apps reporting the same night: overlapping sessions count each sample once', () => {
    const phone = {
      ...night(4, local(0, 23), 480),
      origin: 'com.google.android.apps.fitness',
      sessionId: 'p',
    };
    const { ins } = heartRate([ringNight], [sleep, phone]);
    expect(ins.origins['com.ouraring.oura']?.sleepSamples).toBe(60);
    expect(ins.sleepSessions).toEqual({
      count: 2,
      origins: ['com.google.android.apps.fitness', 'com.ouraring.oura'],
      nights: ['2025-11-04'],
    });
  });
});

/** Processes a sample or hostile export on the given stores and completes it. */
async function ingestFile(
  dir: string,
  file: string,
  store: MemoryRecordStore | PostgresRecordStore,
  spans?: SleepSpanStore,
) {
  const bytes = readFileSync(join(dir, file));
  const r = await processExport({
    bytes,
    source: {
      bucket: 'health-raw',
      key: rawKeyFor(file),
      etag: createHash('md5').update(bytes).digest('hex'),
    },
    store,
    sleepSpans: spans,
    now: new Date(NOW),
  });
  if (r.status === 'processed') await store.completeIngest(r.sourceId);
  return r;
}

const SLEEP_NIGHT_BEFORE_DAY_1 = 'SleepSessionRecord_1762260330317.avro';
const HR_DAY_1 = 'HeartRateRecord_1762320369317.avro';

describe('the pipeline hands a heart-rate export the sleep sessions of earlier sleep exports', () => {
  it('sleep processed first: resting heart rate from the samples asleep; heart rate first: the clock window', async () => {
    // Prepare
    const sleepFirst = new MemoryRecordStore();
    const hrFirst = new MemoryRecordStore();

    // Act
    await ingestFile(SAMPLES_DIR, SLEEP_NIGHT_BEFORE_DAY_1, sleepFirst);
    const after = await ingestFile(SAMPLES_DIR, HR_DAY_1, sleepFirst);
    const before = await ingestFile(SAMPLES_DIR, HR_DAY_1, hrFirst);

    // Assess
    const a = after.insights as unknown as HeartRateInsights;
    const b = before.insights as unknown as HeartRateInsights;
    expect(a.restingMethod).toBe('sleep_sessions');
    expect(a.sleepSessions.nights).toContain('2025-11-03');
    expect(after.trainingExample?.input).toContain(
      `restingDefinition: ${RESTING_DEFINITIONS.sleep_sessions}`,
    );
    expect(b.restingMethod).toBe('overnight_window');
    expect(b.sleepingBpm).toBeNull();
  });

  it('a batch runs the most deferred first, then sleep exports, else in arrival order', () => {
    const msg = (id: string, key: string, deferrals = 0) => ({
      id,
      deferrals,
      body: JSON.stringify({ bucket: 'b', key }),
    });
    const ordered = batchOrder(
      [
        msg('hr', rawKeyFor(HR_DAY_1)),
        msg('steps', rawKeyFor('StepsRecord_1762347687317.avro')),
        msg('sleep', rawKeyFor(SLEEP_NIGHT_BEFORE_DAY_1)),
        msg('deferred-hr', rawKeyFor('HeartRateRecord_1762406829317.avro'), 2),
        msg('avro-sleep', 'raw/AvroSleepSessionRecord/2025/11/05/AvroSleepSessionRecord_1762348240317.avro'),
      ],
      (m) => m.deferrals,
    );
    expect(ordered.map((m) => m.id)).toEqual(['deferred-hr', 'sleep', 'avro-sleep', 'hr', 'steps']);
  });
});

describe('sleep sessions kept in PostgreSQL (health_sleep_spans)', () => {
  let db: TestSchema;

  beforeAll(async () => {
    db = await createTestSchema('health_sleep_spans');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('survive the process: a later worker reads the sessions an earlier one kept', async () => {
    // Act: one worker processes the sleep export, another (new store objects) the heart rate.
    const r1 = await ingestFile(
      SAMPLES_DIR,
      SLEEP_NIGHT_BEFORE_DAY_1,
      new PostgresRecordStore(db.pool),
      new PostgresSleepSpans(db.pool),
    );
    const r2 = await ingestFile(
      SAMPLES_DIR,
      HR_DAY_1,
      new PostgresRecordStore(db.pool),
      new PostgresSleepSpans(db.pool),
    );

    // Assess
    expect(r1.status).toBe('processed');
    const { rows } = await db.pool.query(
      "SELECT data_origin, kind, to_char(night_of, 'YYYY-MM-DD') AS night_of FROM health_sleep_spans ORDER BY data_origin",
    );
    expect(rows).toEqual([
      { data_origin: 'com.google.android.apps.fitness', kind: 'main', night_of: '2025-11-03' },
      { data_origin: 'com.ouraring.oura', kind: 'main', night_of: '2025-11-03' },
    ]);
    expect((r2.insights as unknown as HeartRateInsights).restingMethod).toBe('sleep_sessions');
  });

  it('a newer version of a session replaces the kept one, an older one never does; both stores agree', async () => {
    const records = await loadSample<'SleepSessionRecord'>(SLEEP_NIGHT_BEFORE_DAY_1);
    const span = sleepSpanOf(records[0] as SleepSessionRecord) as SleepSpan;
    const longer = { ...span, end: span.end + 30 * MINUTE, lastModified: span.lastModified + 1 };
    const older = { ...span, end: span.end - 60 * MINUTE, lastModified: span.lastModified - 1 };
    for (const store of [new PostgresSleepSpans(db.pool), new MemorySleepSpans()]) {
      await store.save('u2', 's1', [span]);
      await store.save('u2', 's2', [longer]);
      await store.save('u2', 's3', [older]);
      expect(await store.overlapping('u2', span.start, span.end)).toEqual([longer]);
      expect(await store.overlapping('other-user', span.start, span.end)).toEqual([]);
      expect(await store.overlapping('u2', longer.end, longer.end + MINUTE)).toEqual([]);
    }
  });

  it('a quarantined sleep export keeps no session', async () => {
    const spans = new PostgresSleepSpans(db.pool);
    const r = await ingestFile(
      join(FIXTURES_DIR, 'hostile'),
      'SleepSessionRecord_1762689600000.avro',
      new PostgresRecordStore(db.pool),
      spans,
    );
    expect(r.status).toBe('quarantined');
    expect(await spans.overlapping('default', Date.UTC(2025, 10, 8), Date.UTC(2025, 10, 11))).toEqual([]);
  });
});
