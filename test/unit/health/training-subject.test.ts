/**
 * Which (domain, data origins, period) a training example is about (issue 15, point 3): the rule
 * decides which later export supersedes which example, so a wrong day silently drops a current
 * example from the training set. Real-shape records: the samples and the generator's builders.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { processExport } from '../../../lambdas/health/pipeline';
import { MemoryRecordStore } from '../../../lambdas/health/record-store';
import { rawKeyFor } from '../../../lambdas/health/source';
import { createSubjectTracker, type TrainingSubject } from '../../../lambdas/health/training';
import { type HealthRecord, type RecordType, recordInterval } from '../../../lambdas/health/types';
import {
  encodeExport,
  glucoseDay,
  localMidnight,
  type MetadataShape,
  sleepSession,
  stampFetchTime,
} from '../../fixtures/health/generator';
import { loadSample, NOW } from './helpers';

const HOUR = 3_600_000;
const MINUTE = 60_000;

function subjectOf(type: RecordType, records: readonly HealthRecord[], fetch: number): TrainingSubject {
  const t = createSubjectTracker(type);
  for (const r of records) t.add(r);
  return t.finish(fetch);
}

const localDate = (ms: number, offsetMinutes: number) =>
  new Date(ms + offsetMinutes * MINUTE).toISOString().slice(0, 10);

/** Encodes records as the app writes them and processes the export on `store`, completing it. */
async function ingest(store: MemoryRecordStore, type: RecordType, fetch: number, records: unknown[]) {
  const name = `${type}_${fetch}.avro`;
  const bytes = encodeExport(type, stampFetchTime(records as object[], fetch));
  const r = await processExport({
    bytes,
    source: {
      bucket: 'health-raw',
      key: rawKeyFor(name),
      etag: createHash('md5').update(bytes).digest('hex'),
    },
    store,
    now: new Date(NOW),
  });
  expect(r.status).toBe('processed');
  await store.completeIngest(r.sourceId);
  return r;
}

describe('training subject: the day of an export', () => {
  it('a glucose export that runs past midnight belongs to the day holding most of its readings', async () => {
    // Prepare: the real-shape day-0 CGM export, 253 readings from 03:05Z on 11-03 to 00:05Z on 11-04.
    const file = 'BloodGlucoseRecord_1762219812481.avro';
    const records = await loadSample<'BloodGlucoseRecord'>(file);
    const last = Math.max(...records.map((r) => r.timeEpochMillis));
    const onFirstDay = records.filter((r) => localDate(r.timeEpochMillis, 0) === '2025-11-03').length;
    expect(localDate(last, 0)).toBe('2025-11-04'); // the old rule's day: the last reading's
    expect(onFirstDay).toBeGreaterThan(records.length / 2);

    // Act
    const s = subjectOf('BloodGlucoseRecord', records, 1762219812481);

    // Assess
    expect(s).toMatchObject({
      key: 'metabolic_diabetes|com.dexcom.g7|2025-11-03',
      period: 'day',
      localDay: '2025-11-03',
      dayComplete: true,
    });
  });

  it('each record counts in its own zone, and a tie goes to the later day', () => {
    // Prepare: 24 readings either side of UTC midnight, i.e. all on 11-03 at -05:00.
    const start = Date.UTC(2025, 10, 4, 0, 0) - 24 * 5 * MINUTE;
    const readings = glucoseDay({ seed: 9, start, readings: 48, meals: [] }) as unknown as HealthRecord[];
    const inZone = (zone: string) =>
      readings.map((r) => ({ ...r, zoneOffsetId: zone })) as unknown as HealthRecord[];

    // Act
    const utc = subjectOf('BloodGlucoseRecord', inZone('Z'), Date.UTC(2025, 10, 5));
    const local = subjectOf('BloodGlucoseRecord', inZone('-05:00'), Date.UTC(2025, 10, 5));

    // Assess
    expect(utc.localDay).toBe('2025-11-04');
    expect(local.localDay).toBe('2025-11-03');
  });

  it('a heart-rate day with the ring record of the evening before belongs to that day', async () => {
    const records = await loadSample<'HeartRateRecord'>('HeartRateRecord_1762320369317.avro');
    const starts = records.map((r) => recordInterval('HeartRateRecord', r).start);
    expect(localDate(Math.min(...starts), -300)).toBe('2025-11-03'); // the overnight record began at 23:30
    expect(subjectOf('HeartRateRecord', records, 1762320369317).localDay).toBe('2025-11-04');
  });
});

describe('training subject: sleep', () => {
  it('a night that began after midnight belongs to the evening before', async () => {
    // Prepare: the short night before day 3 (11-06), which began after local midnight.
    const records = await loadSample<'SleepSessionRecord'>('SleepSessionRecord_1762431655317.avro');
    expect(localDate(records[0]?.startTimeEpochMillis as number, -300)).toBe('2025-11-06');

    // Act
    const s = subjectOf('SleepSessionRecord', records, 1762431655317);

    // Assess: the night of 11-05, complete (a session is exported once it has ended).
    expect(s).toMatchObject({
      key: 'sleep_recovery|com.ouraring.oura|2025-11-05',
      period: 'night',
      localDay: '2025-11-05',
      dayComplete: true,
      asOf: null,
    });
  });

  it('a nap is a subject of its own: it neither supersedes nor is superseded by the night', async () => {
    // Prepare: the nap of 11-04 afternoon and the night that began on the evening of 11-04.
    const nap = await loadSample<'SleepSessionRecord'>('SleepSessionRecord_1762297331317.avro');
    const night = await loadSample<'SleepSessionRecord'>('SleepSessionRecord_1762348240317.avro');
    const store = new MemoryRecordStore();

    // Act
    const rNap = await ingest(store, 'SleepSessionRecord', 1762297331317, nap);
    const rNight = await ingest(store, 'SleepSessionRecord', 1762348240317, night);

    // Assess
    expect(rNap.trainingExample?.metadata.subject).toMatchObject({
      key: 'sleep_recovery|com.ouraring.oura|2025-11-04|nap',
      period: 'nap',
      localDay: '2025-11-04',
      dayComplete: true,
    });
    expect(rNap.trainingExample?.input).toContain('Nap on 2025-11-04.');
    expect(rNight.trainingExample?.metadata.subject).toMatchObject({
      key: 'sleep_recovery|com.ouraring.oura|2025-11-04',
      period: 'night',
    });
    expect(rNight.trainingExample?.input).toContain('Night of 2025-11-04 (the evening the sleep began).');
    const manifest = await store.trainingManifest();
    expect(manifest.map((s) => [s.subjectKey, s.current.trainingKey, s.superseded.length])).toEqual([
      ['sleep_recovery|com.ouraring.oura|2025-11-04', rNight.trainingKey, 0],
      ['sleep_recovery|com.ouraring.oura|2025-11-04|nap', rNap.trainingKey, 0],
    ]);
  });

  it('a later export of the same night, with the session updated, supersedes the earlier example', async () => {
    // Prepare: a night exported at 06:10 while the ring still held the session open (ends 06:00),
    // then re-exported with the session's final version (same id, later lastModified, to 07:00).
    const start = localMidnight(2) - 60 * MINUTE; // 23:00 on 11-04
    const first = sleepSession({
      seed: 31,
      origin: 'oura',
      start,
      minutes: 420,
      stages: { LIGHT: [220, 14], DEEP: [80, 5], REM: [90, 5], AWAKE: [30, 4] },
    });
    const meta = first.metadata as MetadataShape;
    const final = {
      ...sleepSession({
        seed: 31,
        origin: 'oura',
        start,
        minutes: 480,
        stages: { LIGHT: [250, 16], DEEP: [90, 5], REM: [105, 6], AWAKE: [35, 4] },
      }),
      metadata: { ...meta, lastModifiedTimeEpochMillis: meta.lastModifiedTimeEpochMillis + 2 * HOUR },
    };
    const store = new MemoryRecordStore();

    // Act
    const early = await ingest(store, 'SleepSessionRecord', start + 7 * HOUR + 10 * MINUTE, [first]);
    const late = await ingest(store, 'SleepSessionRecord', start + 9 * HOUR, [final]);

    // Assess
    expect(early.trainingExample?.metadata.subject.key).toBe('sleep_recovery|com.ouraring.oura|2025-11-04');
    expect(late.trainingExample?.metadata.subject.key).toBe('sleep_recovery|com.ouraring.oura|2025-11-04');
    const [subject] = await store.trainingManifest();
    expect(subject?.current.trainingKey).toBe(late.trainingKey);
    expect(subject?.superseded.map((s) => s.trainingKey)).toEqual([early.trainingKey]);
  });
});

describe('training subject: partial-day re-export', () => {
  it('a CGM export fetched mid-day is superseded by the full-day export of the same day', async () => {
    // Prepare: day 1's readings from 00:00Z; the first export fetched at 11:00Z holds 132 of them,
    // the later one all 288 plus the first reading of the next day.
    const day = glucoseDay({
      seed: 77,
      start: Date.UTC(2025, 10, 4, 0, 0),
      readings: 289,
      meals: [Date.UTC(2025, 10, 4, 12, 30), Date.UTC(2025, 10, 4, 18, 0)],
    });
    const store = new MemoryRecordStore();

    // Act
    const morning = await ingest(
      store,
      'BloodGlucoseRecord',
      Date.UTC(2025, 10, 4, 11, 0),
      day.slice(0, 132),
    );
    const full = await ingest(store, 'BloodGlucoseRecord', Date.UTC(2025, 10, 5, 0, 20), day);

    // Assess: the running total says so, then the same (domain, origin, day) is superseded.
    expect(morning.trainingExample?.metadata.subject).toMatchObject({
      key: 'metabolic_diabetes|com.dexcom.g7|2025-11-04',
      dayComplete: false,
      asOf: '11:00',
    });
    expect(full.trainingExample?.metadata.subject).toMatchObject({
      key: 'metabolic_diabetes|com.dexcom.g7|2025-11-04',
      dayComplete: true,
    });
    const [subject] = await store.trainingManifest();
    expect(subject?.current.trainingKey).toBe(full.trainingKey);
    expect(subject?.superseded.map((s) => s.trainingKey)).toEqual([morning.trainingKey]);
  });
});
