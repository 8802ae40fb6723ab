import { describe, expect, it } from 'vitest';
import { planQuarantine, quarantineKey, sidecarKey } from '../../../lambdas/health/quarantine';
import type { BloodGlucoseRecord, HeartRateRecord, RecordType } from '../../../lambdas/health/types';
import { createValidator, validateRecords, WEIGHTS } from '../../../lambdas/health/validate';
import { loadBad, loadSample, NOW, sampleFiles } from './helpers';

function glucose(i: number, overrides: Partial<BloodGlucoseRecord> = {}): BloodGlucoseRecord {
  return {
    metadata: {
      id: `id-${i}`,
      dataOriginPackageName: 'com.dexcom.g7',
      lastModifiedTimeEpochMillis: Date.UTC(2025, 10, 3, 0, i + 5),
      clientRecordId: null,
      clientRecordVersion: 0,
      device: null,
    },
    timeEpochMillis: Date.UTC(2025, 10, 3, 0, i * 5),
    zoneOffsetId: 'Z',
    levelInMilligramsPerDeciliter: 100 + i,
    specimenSource: 'INTERSTITIAL_FLUID',
    mealType: 'UNKNOWN',
    relationToMeal: 'UNKNOWN',
    appRecordFetchTimeEpochMillis: Date.UTC(2025, 10, 4),
    ...overrides,
  };
}

describe('quality score', () => {
  it('weights are 0.3 / 0.3 / 0.2 / 0.2', () => {
    expect(WEIGHTS).toEqual({
      schemaValidity: 0.3,
      completeness: 0.3,
      inRangeShare: 0.2,
      temporalOrder: 0.2,
    });
  });

  it.each(sampleFiles())('sample %s scores 1.0 with no blocking error and no warning', async (file) => {
    // Prepare
    const recordType = file.split('_')[0] as RecordType;
    const records = await loadSample(file);

    // Act
    const result = validateRecords(recordType, records, { now: NOW });

    // Assess
    expect(result.blocking).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.checks).toEqual({ schemaValidity: 1, completeness: 1, inRangeShare: 1, temporalOrder: 1 });
    expect(result.score).toBe(1);
    expect(result.passed).toBe(true);
  });

  it('computes every check exactly on a hand-made file', () => {
    // Prepare: 10 readings; one out of range (15), one with no zone, one step back in time.
    const records = Array.from({ length: 10 }, (_, i) => glucose(i));
    records[3] = glucose(3, { levelInMilligramsPerDeciliter: 15 });
    records[5] = glucose(5, { zoneOffsetId: null });
    records[7] = glucose(7, { timeEpochMillis: Date.UTC(2025, 10, 2) });

    // Act
    const result = validateRecords('BloodGlucoseRecord', records, { now: NOW });

    // Assess: 7 required fields per reading -> 69/70 present; 9/10 in range; unordered.
    expect(result.checks).toEqual({
      schemaValidity: 1,
      completeness: 0.986,
      inRangeShare: 0.9,
      temporalOrder: 0.7,
    });
    expect(result.score).toBe(Math.round((0.3 * 1 + 0.3 * 0.986 + 0.2 * 0.9 + 0.2 * 0.7) * 1000) / 1000);
    expect(result.passed).toBe(true);
    expect(result.warnings).toEqual(['times not in order (1 steps back)']);
  });

  it('the impossible-values bad file is quarantined below the threshold, with the counts that explain it', async () => {
    // Prepare
    const records = await loadBad('impossible-values.avro');

    // Act
    const result = validateRecords('BloodGlucoseRecord', records, { now: NOW });

    // Assess
    expect(result.passed).toBe(false);
    expect(result.score).toBeLessThan(0.7);
    expect(result.blocking.join('\n')).toMatch(/^quality_below_threshold: score 0\.\d+ < 0\.70/m);
    expect(result.blocking.join('\n')).toMatch(/^out_of_range: only 0\.0 %/m);
    expect(result.checks.inRangeShare).toBe(0);
    expect(result.checks.temporalOrder).toBe(0.7);
    expect(result.counts).toMatchObject({ records: 40 });
    expect(result.counts.nonFinite).toBeGreaterThan(0);
    expect(result.counts.timeBefore2000).toBeGreaterThan(0);
    expect(result.counts.timeInFuture).toBeGreaterThan(0);
    expect(result.warnings.join('\n')).toMatch(/impossible values/);
    expect(result.warnings.join('\n')).toMatch(/completeness/);
  });

  it('a file whose every value is impossible is blocked although its weighted score passes', () => {
    // Prepare: well-formed, complete, ordered readings, every one at 9999 mg/dL.
    const records = Array.from({ length: 50 }, (_, i) => glucose(i, { levelInMilligramsPerDeciliter: 9999 }));

    // Act
    const result = validateRecords('BloodGlucoseRecord', records, { now: NOW });

    // Assess: 0.3 + 0.3 + 0.2 x 0 + 0.2 = 0.8 >= 0.7, yet blocked by the in-range share.
    expect(result.score).toBe(0.8);
    expect(result.passed).toBe(false);
    expect(result.blocking).toHaveLength(1);
    expect(result.blocking[0]).toMatch(
      /^out_of_range: only 0\.0 % of glucose level values within 20-600 mg\/dL \(minimum 50\.0 %; 0 below, 50 above/,
    );
  });

  it('the in-range share blocks below 0.5 and only warns from 0.5 up', () => {
    // Prepare: 49 % and 50 % of readings in range.
    const mixed = (inRange: number) =>
      Array.from({ length: 100 }, (_, i) =>
        glucose(i, { levelInMilligramsPerDeciliter: i < inRange ? 110 : 9999 }),
      );

    // Act
    const below = validateRecords('BloodGlucoseRecord', mixed(49), { now: NOW });
    const at = validateRecords('BloodGlucoseRecord', mixed(50), { now: NOW });

    // Assess
    expect(below.passed).toBe(false);
    expect(below.blocking.join()).toMatch(/^out_of_range/);
    expect(at.passed).toBe(true);
    expect(at.warnings.join('\n')).toMatch(/only 50\.0 % of glucose level values within 20-600/);
  });

  it('no records is blocking', () => {
    const result = validateRecords('StepsRecord', [], { now: NOW });
    expect(result.passed).toBe(false);
    expect(result.blocking).toEqual(['no_records: the file holds no records']);
    expect(result.score).toBe(0);
  });

  it('completeness below 0.5 is blocking even when the score passes a lowered threshold', () => {
    // Prepare: ids, origins, zones and modification times all missing -> 3/7 present.
    const records = Array.from({ length: 5 }, (_, i) =>
      glucose(i, {
        zoneOffsetId: null,
        metadata: {
          ...glucose(i).metadata,
          id: '',
          dataOriginPackageName: '',
          lastModifiedTimeEpochMillis: 0,
        },
      }),
    );

    // Act
    const result = validateRecords('BloodGlucoseRecord', records, { now: NOW, threshold: 0.1 });

    // Assess
    expect(result.checks.completeness).toBe(0.429);
    expect(result.blocking).toHaveLength(1);
    expect(result.blocking[0]).toMatch(/^incomplete: only 42\.9 %/);
  });

  it('the threshold is configurable', () => {
    const records = [glucose(1), glucose(0)];
    expect(validateRecords('BloodGlucoseRecord', records, { now: NOW }).passed).toBe(true);
    const strict = validateRecords('BloodGlucoseRecord', records, { now: NOW, threshold: 0.95 });
    expect(strict.passed).toBe(false);
    expect(strict.blocking[0]).toMatch(/score 0\.940 < 0\.95/);
  });

  it('warns about more than 100,000 records and files over 100 MB', () => {
    const v = createValidator('BloodGlucoseRecord', { now: NOW, warnRecords: 3 });
    for (let i = 0; i < 4; i++) v.add(glucose(i));
    const result = v.finish({ bytes: 150 * 1024 * 1024 });
    expect(result.passed).toBe(true);
    expect(result.warnings).toEqual(['4 records: more than 3', 'file of 150.0 MB: over 100 MB']);
  });

  it('heart rate checks every sample: range, order and samples outside the record', async () => {
    // Prepare
    const [file] = sampleFiles('HeartRateRecord');
    const records = (await loadSample<'HeartRateRecord'>(file as string)).slice(0, 3);
    const broken: HeartRateRecord = {
      ...(records[0] as HeartRateRecord),
      samples: [
        { timeEpochMillis: (records[0] as HeartRateRecord).startTimeEpochMillis, beatsPerMinute: 250 },
        {
          timeEpochMillis: (records[0] as HeartRateRecord).startTimeEpochMillis - 3_600_000,
          beatsPerMinute: 60,
        },
      ],
    };

    // Act
    const result = validateRecords('HeartRateRecord', [broken, ...records.slice(1)], { now: NOW });

    // Assess
    expect(result.counts.aboveRange).toBe(1);
    expect(result.counts.outsideRecord).toBe(1);
    expect(result.checks.temporalOrder).toBe(0.7);
    expect(result.checks.schemaValidity).toBeCloseTo(2 / 3, 3);
  });
});

describe('quarantine', () => {
  it('maps raw/ keys to quarantine/ and names the sidecar', () => {
    expect(quarantineKey('raw/BloodGlucoseRecord/2025/11/04/BloodGlucoseRecord_1.avro')).toBe(
      'quarantine/BloodGlucoseRecord/2025/11/04/BloodGlucoseRecord_1.avro',
    );
    expect(quarantineKey('uploads/x.avro')).toBe('quarantine/uploads/x.avro');
    expect(sidecarKey('quarantine/a.avro')).toBe('quarantine/a.avro.metadata.json');
  });

  it('builds the sidecar body with reasons, score, warnings, time and per-check scores', () => {
    // Prepare
    const checks = { schemaValidity: 0.2, completeness: 0.8, inRangeShare: 0, temporalOrder: 0.7 };

    // Act
    const plan = planQuarantine({
      source: { bucket: 'b', key: 'raw/BloodGlucoseRecord/2025/11/04/f.avro', etag: 'e' },
      recordType: 'BloodGlucoseRecord',
      reasons: ['quality_below_threshold: score 0.440 < 0.70'],
      qualityScore: 0.44,
      threshold: 0.7,
      checks,
      warnings: ['w'],
      recordsRead: 40,
      now: new Date(NOW),
      processorVersion: 'test',
    });

    // Assess
    expect(plan.key).toBe('quarantine/BloodGlucoseRecord/2025/11/04/f.avro');
    expect(plan.sidecarKey).toBe('quarantine/BloodGlucoseRecord/2025/11/04/f.avro.metadata.json');
    expect(JSON.parse(plan.sidecarBody)).toMatchObject({
      originalKey: 'raw/BloodGlucoseRecord/2025/11/04/f.avro',
      reasons: ['quality_below_threshold: score 0.440 < 0.70'],
      qualityScore: 0.44,
      warnings: ['w'],
      checks,
      quarantinedAt: '2025-11-10T12:00:00.000Z',
      error: null,
    });
  });
});
