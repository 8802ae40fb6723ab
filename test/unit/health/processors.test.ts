import { describe, expect, it } from 'vitest';
import { createProcessor } from '../../../lambdas/health/processors';
import { createActiveCaloriesProcessor } from '../../../lambdas/health/processors/active-calories';
import {
  createGlucoseProcessor,
  estimatedA1c,
  type GlucoseInsights,
  glucoseClass,
  glycemicControl,
  gmi,
} from '../../../lambdas/health/processors/glucose';
import {
  createHeartRateProcessor,
  exerciseBouts,
  type HeartRateInsights,
  heartRateClass,
  heartRateZone,
  restingHeartRate,
} from '../../../lambdas/health/processors/heart-rate';
import { createHrvProcessor, type HrvInsights, hrvBand } from '../../../lambdas/health/processors/hrv';
import { analyseSession, type SleepInsights } from '../../../lambdas/health/processors/sleep';
import { type StepsInsights, stepsBand } from '../../../lambdas/health/processors/steps';
import type {
  BloodGlucoseRecord,
  HealthRecord,
  HeartRateRecord,
  RecordType,
  SleepSessionRecord,
  StepsRecord,
} from '../../../lambdas/health/types';
import { loadSample, sampleFiles } from './helpers';

function run(recordType: RecordType, records: readonly HealthRecord[]) {
  const p = createProcessor(recordType);
  for (const r of records) p.add(r);
  return p.finish();
}

const META = {
  id: 'm',
  dataOriginPackageName: 'com.dexcom.g7',
  lastModifiedTimeEpochMillis: 1,
  clientRecordId: null,
  clientRecordVersion: 0,
  device: null,
};

function reading(
  t: number,
  level: number,
  zone: string | null = 'Z',
  origin = 'com.dexcom.g7',
): BloodGlucoseRecord {
  return {
    metadata: { ...META, id: `g${t}`, dataOriginPackageName: origin },
    timeEpochMillis: t,
    zoneOffsetId: zone,
    levelInMilligramsPerDeciliter: level,
    specimenSource: 'INTERSTITIAL_FLUID',
    mealType: 'UNKNOWN',
    relationToMeal: 'UNKNOWN',
    appRecordFetchTimeEpochMillis: 2,
  };
}

describe('physiological-range gate', () => {
  it('out-of-range glucose readings never enter the mean, SD, classes or A1c, and the narrative says so', () => {
    // Prepare: 60 plausible readings at 100-159 mg/dL and 40 at 9999.
    const t0 = Date.UTC(2025, 10, 3, 12);
    const records = Array.from({ length: 100 }, (_, i) => reading(t0 + i * 300_000, i < 60 ? 100 + i : 9999));

    // Act
    const result = run('BloodGlucoseRecord', records);

    // Assess
    const g = (result.insights as unknown as GlucoseInsights).origins['com.dexcom.g7'];
    expect(g?.readings).toBe(60);
    expect(g?.maxMgDl).toBe(159);
    expect(g?.meanMgDl).toBe(129.5);
    expect(g?.classes.severe_hyper).toBe(0);
    expect(result.insights.excludedOutOfRange).toEqual({ values: 40, range: '20-600 mg/dL' });
    expect(result.narrative).toMatch(
      /^40 glucose level values outside the physiological range 20-600 mg\/dL were left out/,
    );
    expect(result.narrative).not.toMatch(/9999/);
  });

  it('heart-rate samples outside 30-220 bpm are dropped from their record, the rest kept', () => {
    // Prepare: one series of 5 samples, one of them 300 bpm.
    const start = Date.UTC(2025, 10, 3, 15);
    const record: HeartRateRecord = {
      metadata: { ...META, dataOriginPackageName: 'com.google.android.apps.fitness' },
      startTimeEpochMillis: start,
      endTimeEpochMillis: start + 4 * 60_000,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      samples: [70, 72, 300, 74, 76].map((b, i) => ({
        timeEpochMillis: start + i * 60_000,
        beatsPerMinute: b,
      })),
      appRecordFetchTimeEpochMillis: 2,
    };

    // Act
    const result = run('HeartRateRecord', [record]);

    // Assess
    const h = (result.insights as unknown as HeartRateInsights).origins['com.google.android.apps.fitness'];
    expect(h?.samples).toBe(4);
    expect(h?.maxBpm).toBe(76);
    expect(result.insights.excludedOutOfRange).toEqual({ values: 1, range: '30-220 bpm' });
  });
});

describe('glucose processor', () => {
  it('reproduces the real 253-reading file: mean 111.5 mg/dL, CV 13.5 %, range 77-159', async () => {
    // Prepare
    const [file] = sampleFiles('BloodGlucoseRecord');
    const records = await loadSample<'BloodGlucoseRecord'>(file as string);
    const levels = records.map((r) => r.levelInMilligramsPerDeciliter);
    const mean = levels.reduce((a, b) => a + b, 0) / levels.length;
    const sd = Math.sqrt(levels.reduce((a, b) => a + (b - mean) ** 2, 0) / (levels.length - 1));

    // Act
    const result = run('BloodGlucoseRecord', records);
    const g = (result.insights as unknown as GlucoseInsights).origins['com.dexcom.g7'];

    // Assess: sample SD (n - 1), CV = SD / mean x 100, one decimal.
    expect(records).toHaveLength(253);
    expect(g).toMatchObject({
      readings: 253,
      meanMgDl: 111.5,
      cvPercent: 13.5,
      minMgDl: 77,
      maxMgDl: 159,
      zone: 'Z',
    });
    expect(g?.cvPercent).toBe(Math.round((sd / mean) * 1000) / 10);
    expect(g?.estimatedA1cPercent).toBe(Math.round(((111.5 + 46.7) / 28.7) * 10) / 10);
    expect(g?.gmiPercent).toBe(Math.round((3.31 + 0.02392 * mean) * 10) / 10);
    expect(g?.timeInRangePercent).toBe(100);
    expect(g?.control).toBe('excellent');
    expect(g?.a1cIndicativeOnly).toBe(true);
    expect(result.narrative).toMatch(/Average glucose was 111\.5 mg\/dL/);
    expect(result.narrative).toMatch(/coefficient of variation 13\.5 %/);
    expect(result.narrative).toMatch(/UTC as recorded/);
  });

  it('classes, formulas and the control grade follow the fact sheet', () => {
    expect([53, 54, 69, 70, 100, 101, 140, 141, 180, 181].map(glucoseClass)).toEqual([
      'severe_hypo',
      'hypo',
      'hypo',
      'normal_fasting',
      'normal_fasting',
      'normal',
      'normal',
      'elevated',
      'elevated',
      'severe_hyper',
    ]);
    expect(estimatedA1c(154)).toBeCloseTo(7, 1);
    expect(gmi(154)).toBeCloseTo(6.99, 2);
    expect(glycemicControl(20, 75, 1, 0).grade).toBe('excellent');
    expect(glycemicControl(20, 55, 1, 0).grade).toBe('good');
    expect(glycemicControl(40, 55, 1, 0).grade).toBe('fair');
    expect(glycemicControl(20, 45, 1, 0).grade).toBe('poor');
    // Improvement: a lot of time low caps the grade.
    expect(glycemicControl(20, 90, 8, 2)).toEqual({
      grade: 'fair',
      baseGrade: 'excellent',
      cappedForLows: true,
    });
  });

  it('counts the low of the second day as one episode, without calling it nocturnal: the sensor writes UTC', async () => {
    const [, file] = sampleFiles('BloodGlucoseRecord');
    const result = run('BloodGlucoseRecord', await loadSample(file as string));
    const g = (result.insights as unknown as GlucoseInsights).origins['com.dexcom.g7'];
    expect(g?.minMgDl).toBe(53);
    expect(g?.classes.severe_hypo).toBe(1);
    expect(g?.classes.hypo).toBe(4);
    expect(g?.lowEpisodes).toBe(1);
    expect(g?.readingsWithoutLocalTime).toBe(g?.readings);
    expect(g?.overnight.assessed).toBe(false);
    expect(result.narrative).not.toMatch(/nocturnal|Overnight|fasting window/);
    expect(result.narrative).toMatch(/no fasting or overnight window is assessed/);
  });

  it('with a local offset, the windows are claimed only when at least half covered', () => {
    // Prepare: 30 readings 06:00-08:25 local (fasting window half covered), 10 at 23:00-23:45.
    const six = Date.UTC(2025, 10, 3, 11, 0);
    const eleven = Date.UTC(2025, 10, 4, 4, 0);
    const records = [
      ...Array.from({ length: 10 }, (_, i) => reading(eleven - 86_400_000 + i * 300_000, 90, '-05:00')),
      ...Array.from({ length: 30 }, (_, i) => reading(six + i * 300_000, 98, '-05:00')),
    ];

    // Act
    const result = run('BloodGlucoseRecord', records);

    // Assess
    const g = (result.insights as unknown as GlucoseInsights).origins['com.dexcom.g7'];
    expect(g?.fasting).toMatchObject({ readings: 30, assessed: true, meanMgDl: 98 });
    expect(g?.overnight).toMatchObject({ readings: 10, assessed: false });
    expect(result.narrative).toMatch(/fasting window \(06:00-09:59\) the average was 98\.0 mg\/dL/);
    expect(result.narrative).not.toMatch(/Overnight/);
  });

  it("uses each reading's own zone offset for the fasting and overnight windows", () => {
    // Prepare: the same instant, 12:00 UTC, is 07:00 at -05:00 (fasting) but noon in UTC.
    const noonUtc = Date.UTC(2025, 10, 3, 12, 0);
    const utc = createGlucoseProcessor();
    const local = createGlucoseProcessor();

    // Act
    utc.add(reading(noonUtc, 95, 'Z'));
    local.add(reading(noonUtc, 95, '-05:00'));
    const u = (utc.finish().insights as unknown as GlucoseInsights).origins['com.dexcom.g7'];
    const l = (local.finish().insights as unknown as GlucoseInsights).origins['com.dexcom.g7'];

    // Assess
    expect(u?.fasting.readings).toBe(0);
    expect(l?.fasting.readings).toBe(1);
    expect(l?.firstReading).toBe('2025-11-03 07:00');
  });

  it('trend from the first vs second half by time, even when records arrive out of order', () => {
    const t0 = Date.UTC(2025, 10, 3);
    const slots = [4, 0, 1, 2, 3, 5];
    const records = [110, 100, 100, 100, 120, 120].map((v, i) => reading(t0 + (slots[i] ?? 0) * 300_000, v));
    const g = (run('BloodGlucoseRecord', records).insights as unknown as GlucoseInsights).origins[
      'com.dexcom.g7'
    ];
    expect(g?.trend).toEqual({ firstHalf: 100, secondHalf: 116.7, changePercent: 16.7, direction: 'rising' });
  });

  it('two sources are summarised separately, never pooled', () => {
    const t0 = Date.UTC(2025, 10, 3);
    const records = [reading(t0, 100), reading(t0 + 300_000, 110), reading(t0, 200, 'Z', 'com.other.meter')];
    const ins = run('BloodGlucoseRecord', records).insights as unknown as GlucoseInsights;
    expect(Object.keys(ins.origins)).toEqual(['com.dexcom.g7', 'com.other.meter']);
    expect(ins.origins['com.dexcom.g7']?.meanMgDl).toBe(105);
    expect(ins.origins['com.other.meter']?.meanMgDl).toBe(200);
    expect(ins.chosenOrigin).toBe('com.dexcom.g7');
  });
});

describe('heart rate processor', () => {
  it('uses samples[] of every record, per origin, with resting HR from the ring overnight', async () => {
    // Prepare
    const [file] = sampleFiles('HeartRateRecord');
    const records = await loadSample<'HeartRateRecord'>(file as string);
    const ringNight = records.find(
      (r) => r.metadata.dataOriginPackageName === 'com.ouraring.oura',
    ) as HeartRateRecord;
    const expectedResting = restingHeartRate(ringNight.samples.map((s) => s.beatsPerMinute)) as number;

    // Act
    const ins = run('HeartRateRecord', records).insights as unknown as HeartRateInsights;

    // Assess
    const watch = ins.origins['com.google.android.apps.fitness'];
    const ring = ins.origins['com.ouraring.oura'];
    expect(ring?.samples).toBe(74);
    expect(watch?.samples).toBe(records.reduce((a, r) => a + r.samples.length, 0) - 74);
    expect(watch?.spotReadings).toBe(66);
    expect(ins.restingFrom).toBe('com.ouraring.oura');
    expect(ins.restingBpm).toBe(Math.round(expectedResting * 10) / 10);
    expect(watch?.exercise).toHaveLength(1);
    expect(watch?.exercise[0]).toMatchObject({ start: '2025-11-03 17:15', minutes: 29 });
    expect(watch?.elevatedAtRest).toBe(0);
  });

  it('the overlapping re-sync carries the UPDATED 22:00 series (60 samples instead of 31)', async () => {
    const [first, second] = sampleFiles('HeartRateRecord');
    const before = await loadSample<'HeartRateRecord'>(first as string);
    const after = await loadSample<'HeartRateRecord'>(second as string);
    const series = (rs: HeartRateRecord[]) =>
      rs.find((r) => r.samples.length > 1 && r.startTimeEpochMillis === Date.UTC(2025, 10, 4, 3, 0));
    expect(series(before)?.samples).toHaveLength(31);
    expect(series(after)?.samples).toHaveLength(60);
    expect(series(after)?.metadata.id).toBe(series(before)?.metadata.id);
    expect(series(after)?.metadata.lastModifiedTimeEpochMillis).toBeGreaterThan(
      series(before)?.metadata.lastModifiedTimeEpochMillis as number,
    );
  });

  it('classes and zones', () => {
    expect([39, 40, 59, 60, 99, 100, 119, 120, 149, 150].map(heartRateClass)).toEqual([
      'below_40',
      '40_59',
      '40_59',
      'normal',
      'normal',
      'elevated',
      'elevated',
      'tachycardia',
      'tachycardia',
      'severe',
    ]);
    expect([107, 108, 126, 144, 162].map((b) => heartRateZone(b, 180))).toEqual([
      'below_60',
      '60_70',
      '70_80',
      '80_90',
      '90_plus',
    ]);
  });

  it('resting HR = mean of the lowest 20 % of overnight samples, a high sleeping heart rate included', () => {
    expect(restingHeartRate([50, 52, 54, 56, 58, 60, 62, 64, 66, 90])).toBe(51);
    expect(restingHeartRate([88, 90, 92, 94, 96])).toBe(88);
    expect(restingHeartRate([])).toBeNull();
  });

  it('a night at 90 bpm is reported as the overnight heart rate and drives the resting figure, not daytime readings', () => {
    // Prepare: overnight samples at 90 bpm, daytime spot readings at 60.
    const night = Date.UTC(2025, 10, 4, 6, 0); // 01:00 at -05:00
    const day = Date.UTC(2025, 10, 4, 16, 0); // 11:00 at -05:00
    const rec = (t: number, bpm: number[], id: string): HeartRateRecord => ({
      metadata: { ...META, id, dataOriginPackageName: 'com.ouraring.oura' },
      startTimeEpochMillis: t,
      endTimeEpochMillis: t + (bpm.length - 1) * 300_000,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      samples: bpm.map((b, i) => ({ timeEpochMillis: t + i * 300_000, beatsPerMinute: b })),
      appRecordFetchTimeEpochMillis: 2,
    });

    // Act
    const result = run('HeartRateRecord', [rec(night, [90, 90, 90, 90, 90], 'n'), rec(day, [60], 'd')]);

    // Assess
    const ins = result.insights as unknown as HeartRateInsights;
    expect(ins.origins['com.ouraring.oura']?.overnightMeanBpm).toBe(90);
    expect(ins.restingBpm).toBe(90);
    expect(result.narrative).toMatch(
      /Overnight \(22:00-05:59 local, when usually asleep\) heart rate averaged 90\.0 bpm over 5 samples, high for sleep/,
    );
  });

  it('exercise needs >= 10 min of >= 100 bpm with no gap over 2 min (spot readings 10 min apart are not a run)', () => {
    const t0 = Date.UTC(2025, 10, 3, 22);
    const minutes = (ms: number[]) => ms.map((m) => t0 + m * 60_000);
    const run11 = exerciseBouts(
      minutes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
      Array(12).fill(120),
      '-05:00',
    );
    const spots = exerciseBouts(minutes([0, 10, 20]), [120, 120, 120], '-05:00');
    const short = exerciseBouts(minutes([0, 1, 2, 3, 4, 5]), Array(6).fill(120), '-05:00');
    expect(run11.bouts).toEqual([
      { start: '2025-11-03 17:00', end: '2025-11-03 17:11', minutes: 11, meanBpm: 120, peakBpm: 120 },
    ]);
    expect(spots.bouts).toEqual([]);
    expect(short.bouts).toEqual([]);
  });

  it('fast samples outside exercise are flagged as elevated at rest, exercise samples are not', () => {
    const t0 = Date.UTC(2025, 10, 3, 15);
    const record: HeartRateRecord = {
      metadata: { ...META, dataOriginPackageName: 'w' },
      startTimeEpochMillis: t0,
      endTimeEpochMillis: t0 + 40 * 60_000,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      appRecordFetchTimeEpochMillis: 1,
      samples: [
        ...Array.from({ length: 15 }, (_, i) => ({ timeEpochMillis: t0 + i * 60_000, beatsPerMinute: 130 })),
        { timeEpochMillis: t0 + 30 * 60_000, beatsPerMinute: 115 },
      ],
    };
    const p = createHeartRateProcessor();
    p.add(record);
    const w = (p.finish().insights as unknown as HeartRateInsights).origins.w;
    expect(w?.exercise).toHaveLength(1);
    expect(w?.elevatedAtRest).toBe(1);
  });
});

describe('HRV processor', () => {
  it('bands on the mean and a trend only with >= 7 readings', async () => {
    expect([19.9, 20, 39.9, 40, 59.9, 60, 79.9, 80].map(hrvBand)).toEqual([
      'very_low',
      'low',
      'low',
      'average',
      'average',
      'good',
      'good',
      'excellent',
    ]);
    const [file] = sampleFiles('HeartRateVariabilityRmssdRecord');
    const records = await loadSample<'HeartRateVariabilityRmssdRecord'>(file as string);
    const full = run('HeartRateVariabilityRmssdRecord', records).insights as unknown as HrvInsights;
    const few = createHrvProcessor();
    for (const r of records.slice(0, 6)) few.add(r);
    const fewIns = few.finish().insights as unknown as HrvInsights;
    const mean = records.reduce((a, r) => a + r.heartRateVariabilityRmssd, 0) / records.length;
    expect(full.origins['com.ouraring.oura']?.readings).toBe(74);
    expect(full.origins['com.ouraring.oura']?.meanMs).toBe(Math.round(mean * 10) / 10);
    expect(full.origins['com.ouraring.oura']?.trend.available).toBe(true);
    expect(fewIns.origins['com.ouraring.oura']?.trend).toEqual({
      available: false,
      reason: 'needs at least 7 readings, has 6',
    });
  });
});

describe('sleep processor', () => {
  it('the 7.38 h session with 109 stages has efficiency 83.5 % = (LIGHT + DEEP + REM + SLEEPING) / staged time', async () => {
    // Prepare
    const [file] = sampleFiles('SleepSessionRecord');
    const [session] = await loadSample<'SleepSessionRecord'>(file as string);
    const s = session as SleepSessionRecord;
    const minutesOf = (k: string) =>
      s.stages
        .filter((x) => x.stage === k)
        .reduce((a, x) => a + (x.endTimeEpochMillis - x.startTimeEpochMillis) / 60_000, 0);
    const staged = s.stages.reduce((a, x) => a + (x.endTimeEpochMillis - x.startTimeEpochMillis) / 60_000, 0);

    // Act
    const ins = analyseSession(s);

    // Assess
    expect(s.stages).toHaveLength(109);
    expect(Math.round(((s.endTimeEpochMillis - s.startTimeEpochMillis) / 3_600_000) * 100) / 100).toBe(7.38);
    expect(ins.efficiencyPercent).toBe(83.5);
    expect(ins.efficiencyPercent).toBe(
      Math.round(
        ((minutesOf('LIGHT') + minutesOf('DEEP') + minutesOf('REM') + minutesOf('SLEEPING')) / staged) * 1000,
      ) / 10,
    );
    expect(ins.stageCoveragePercent).toBe(100);
    expect(ins.kind).toBe('main');
    expect(ins.nightOf).toBe('2025-11-02');
    expect(ins.deepPercentOfSleep).toBe(18.9);
    expect(ins.findings.join()).toMatch(/awake 16\.5 %/);
  });

  it('two apps the same night: both described, one chosen, never added', async () => {
    const [, file] = sampleFiles('SleepSessionRecord');
    const result = run('SleepSessionRecord', await loadSample(file as string));
    const ins = result.insights as unknown as SleepInsights;
    expect(ins.sessions.map((s) => s.origin).sort()).toEqual([
      'com.google.android.apps.fitness',
      'com.ouraring.oura',
    ]);
    expect(ins.nights).toHaveLength(1);
    expect(ins.nights[0]).toMatchObject({ nightOf: '2025-11-03', chosenOrigin: 'com.ouraring.oura' });
    const fit = ins.sessions.find((s) => s.origin === 'com.google.android.apps.fitness');
    expect(fit?.deepPercentOfSleep).toBeNull();
    expect(result.narrative).toMatch(/not added together/);
    expect(result.narrative).not.toMatch(/14 h|13 h/);
  });

  it('the afternoon session is a nap, apart from the night', async () => {
    const [, , file] = sampleFiles('SleepSessionRecord');
    const ins = run('SleepSessionRecord', await loadSample(file as string))
      .insights as unknown as SleepInsights;
    expect(ins.naps).toBe(1);
    expect(ins.nights).toEqual([]);
    expect(ins.sessions[0]).toMatchObject({ kind: 'nap', nightOf: '2025-11-04', start: '2025-11-04 14:05' });
  });

  it('overlapping stages are counted once and stages are clipped to the session', () => {
    const t0 = Date.UTC(2025, 10, 4, 4);
    const m = 60_000;
    const s: SleepSessionRecord = {
      metadata: META,
      title: null,
      notes: null,
      startTimeEpochMillis: t0,
      endTimeEpochMillis: t0 + 100 * m,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      durationMillis: null,
      appRecordFetchTimeEpochMillis: 1,
      stages: [
        { startTimeEpochMillis: t0 - 10 * m, endTimeEpochMillis: t0 + 50 * m, stage: 'LIGHT' },
        { startTimeEpochMillis: t0 + 40 * m, endTimeEpochMillis: t0 + 90 * m, stage: 'DEEP' },
        { startTimeEpochMillis: t0 + 90 * m, endTimeEpochMillis: t0 + 110 * m, stage: 'AWAKE' },
      ],
    };
    const ins = analyseSession(s);
    expect(ins.stageMinutes).toEqual({ LIGHT: 50, DEEP: 40, AWAKE: 10 });
    expect(ins.stageCoveragePercent).toBe(100);
    expect(ins.efficiencyPercent).toBe(90);
  });

  it('a session without stages has no efficiency and is classed on time in bed', () => {
    const t0 = Date.UTC(2025, 10, 4, 4);
    const s: SleepSessionRecord = {
      metadata: META,
      title: null,
      notes: null,
      startTimeEpochMillis: t0,
      endTimeEpochMillis: t0 + 8 * 3_600_000,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      durationMillis: 8 * 3_600_000,
      appRecordFetchTimeEpochMillis: 1,
      stages: [],
    };
    expect(analyseSession(s)).toMatchObject({
      efficiencyPercent: null,
      durationClass: 'optimal',
      nightOf: '2025-11-03',
    });
  });
});

describe('steps and active calories processors', () => {
  it('two apps the same day: per origin, the higher chosen, never summed (3933 and 2517 -> 3933)', async () => {
    const [file] = sampleFiles('StepsRecord');
    const result = run('StepsRecord', await loadSample(file as string));
    const ins = result.insights as unknown as StepsInsights;
    expect(ins.days).toHaveLength(1);
    expect(ins.days[0]).toMatchObject({
      date: '2025-11-03',
      chosenOrigin: 'com.google.android.apps.fitness',
      total: 3933,
      band: 'sedentary',
      percentOfTarget: 39.3,
    });
    expect(ins.days[0]?.origins).toEqual([
      { origin: 'com.google.android.apps.fitness', total: 3933, records: 1, window: '00:00-23:59' },
      { origin: 'com.ouraring.oura', total: 2517, records: 1, window: '04:00-04:00' },
    ]);
    expect(result.narrative).not.toMatch(/6,450/);
    expect(result.narrative).toMatch(/not added/);
  });

  it('the day is the local date of the record start (a 23:30 local record is not the next UTC day)', () => {
    const start = Date.UTC(2025, 10, 4, 4, 30); // 23:30 on Nov 3 at -05:00
    const record: StepsRecord = {
      metadata: { ...META, dataOriginPackageName: 'a' },
      startTimeEpochMillis: start,
      endTimeEpochMillis: start + 1_800_000,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      count: 300,
      appRecordFetchTimeEpochMillis: 1,
    };
    const ins = run('StepsRecord', [record]).insights as unknown as StepsInsights;
    expect(ins.days[0]?.date).toBe('2025-11-03');
  });

  it('records of one origin on one day are summed within that origin', () => {
    const base = Date.UTC(2025, 10, 3, 14);
    const records: StepsRecord[] = [0, 1, 2].map((h) => ({
      metadata: { ...META, id: `s${h}`, dataOriginPackageName: 'a' },
      startTimeEpochMillis: base + h * 3_600_000,
      endTimeEpochMillis: base + (h + 1) * 3_600_000,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      count: 1000,
      appRecordFetchTimeEpochMillis: 1,
    }));
    const ins = run('StepsRecord', records).insights as unknown as StepsInsights;
    expect(ins.days[0]).toMatchObject({ total: 3000, chosenOrigin: 'a' });
  });

  it('bands', () => {
    expect([4999, 5000, 7499, 7500, 9999, 10000, 12499, 12500].map(stepsBand)).toEqual([
      'sedentary',
      'low_active',
      'low_active',
      'somewhat_active',
      'somewhat_active',
      'active',
      'active',
      'highly_active',
    ]);
  });

  it('active calories: 124 kcal is 25 % of the 500 kcal target, band low', async () => {
    const [file] = sampleFiles('ActiveCaloriesBurnedRecord');
    const p = createActiveCaloriesProcessor();
    for (const r of await loadSample<'ActiveCaloriesBurnedRecord'>(file as string)) p.add(r);
    const result = p.finish();
    expect(result.insights).toMatchObject({ days: [{ total: 124, band: 'low', percentOfTarget: 24.8 }] });
    expect(result.narrative).toMatch(/124 kcal/);
  });
});

describe('every processor on every sample', () => {
  it.each(sampleFiles())(
    '%s -> insights, a narrative with recommendations, and a data input',
    async (file) => {
      const recordType = file.split('_')[0] as RecordType;
      const result = run(recordType, await loadSample(file));
      expect(result.narrative.length).toBeGreaterThan(80);
      expect(result.narrative).toMatch(/Recommendation|Nap on/);
      expect(result.input.length).toBeGreaterThan(40);
      expect(JSON.parse(JSON.stringify(result.insights))).toEqual(result.insights);
    },
  );
});
