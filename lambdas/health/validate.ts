/**
 * File-level data quality: the fact sheet's score, computed in one streaming pass.
 *
 *   score = 0.3 x schema validity + 0.3 x completeness + 0.2 x in-range share + 0.2 x temporal order
 *
 * - schema validity: share of records whose values are possible at all for their declared type:
 *   finite numbers, no negative levels/counts, end >= start, timestamps between 2000-01-01 and one
 *   day after processing, samples/stages inside their record, known enum symbols. (Avro already
 *   guarantees the types; this is the part of "valid for the schema" Avro cannot express.)
 * - completeness: share of required fields present, over all records (id, origin, lastModified,
 *   fetch time, the record's time(s), a usable zone offset, the value / samples / stages).
 * - in-range share: share of measured values inside the physiological ranges.
 * - temporal order: 1.0 when records (and samples/stages inside records) are in time order, else 0.7.
 *
 * Blocking: no records, completeness < 0.5, in-range share < 0.5, score < threshold (unreadable
 * containers and unknown or unresolvable schemas never get here: decode throws). Warnings:
 * completeness < 0.8, in-range share < 0.9, unordered times, more than 100,000 records, file over
 * 100 MB.
 *
 * Why the in-range share blocks on its own: its weight is 0.2, so a file whose every value is
 * impossible (9999 mg/dL) still scores 0.3 + 0.3 + 0 + 0.2 = 0.8 and would pass the 0.7 threshold.
 * A file where most measured values are physiologically impossible is a broken export, not a sick
 * person; 0.5 is the point where impossible values are the majority. Files between 0.5 and 0.9 pass
 * with a warning, and their out-of-range values are left out of every clinical figure
 * (processors/index.ts).
 */
import { isKnownZone } from './time';
import type {
  ActiveCaloriesBurnedRecord,
  BloodGlucoseRecord,
  HealthRecord,
  HeartRateRecord,
  HeartRateVariabilityRmssdRecord,
  RecordType,
  SleepSessionRecord,
  StepsRecord,
} from './types';

export const WEIGHTS = {
  schemaValidity: 0.3,
  completeness: 0.3,
  inRangeShare: 0.2,
  temporalOrder: 0.2,
} as const;

/** Physiological ranges of the measured value, per record type. */
export const RANGES: Record<RecordType, { min: number; max: number; unit: string; what: string }> = {
  BloodGlucoseRecord: { min: 20, max: 600, unit: 'mg/dL', what: 'glucose level' },
  HeartRateRecord: { min: 30, max: 220, unit: 'bpm', what: 'heart rate sample' },
  HeartRateVariabilityRmssdRecord: { min: 1, max: 300, unit: 'ms', what: 'RMSSD' },
  SleepSessionRecord: { min: 0.5, max: 16, unit: 'h', what: 'sleep session length' },
  StepsRecord: { min: 0, max: 100_000, unit: 'steps', what: 'step count per record' },
  ActiveCaloriesBurnedRecord: { min: 0, max: 10_000, unit: 'kcal', what: 'active energy per record' },
};

/** Whether a measured value is inside the physiological range of its record type. */
export function inPhysiologicalRange(recordType: RecordType, value: number): boolean {
  const r = RANGES[recordType];
  return Number.isFinite(value) && value >= r.min && value <= r.max;
}

/**
 * The one value a record is range-checked on (a sleep session: its length in hours). A heart-rate
 * record has none: each of its samples is a value of its own.
 */
export function singleValue(
  recordType: Exclude<RecordType, 'HeartRateRecord'>,
  record: HealthRecord,
): number {
  switch (recordType) {
    case 'BloodGlucoseRecord':
      return (record as BloodGlucoseRecord).levelInMilligramsPerDeciliter;
    case 'HeartRateVariabilityRmssdRecord':
      return (record as HeartRateVariabilityRmssdRecord).heartRateVariabilityRmssd;
    case 'StepsRecord':
      return (record as StepsRecord).count;
    case 'ActiveCaloriesBurnedRecord':
      return (record as ActiveCaloriesBurnedRecord).energyInKilocalories;
    case 'SleepSessionRecord': {
      const s = record as SleepSessionRecord;
      return (s.endTimeEpochMillis - s.startTimeEpochMillis) / 3_600_000;
    }
  }
}

export interface ValidationConfig {
  /** Minimum quality score to accept a file (default 0.7). */
  readonly threshold: number;
  readonly blockingCompleteness: number;
  /** Share of measured values inside the physiological range below which the file is quarantined. */
  readonly blockingInRangeShare: number;
  readonly warnCompleteness: number;
  readonly warnInRangeShare: number;
  readonly warnRecords: number;
  readonly warnFileBytes: number;
  /** Processing time; timestamps later than now + 1 day are impossible. */
  readonly now: number;
}

export const DEFAULT_VALIDATION: Omit<ValidationConfig, 'now'> = {
  threshold: 0.7,
  blockingCompleteness: 0.5,
  blockingInRangeShare: 0.5,
  warnCompleteness: 0.8,
  warnInRangeShare: 0.9,
  warnRecords: 100_000,
  warnFileBytes: 100 * 1024 * 1024,
};

export interface CheckScores {
  readonly schemaValidity: number;
  readonly completeness: number;
  readonly inRangeShare: number;
  readonly temporalOrder: number;
}

/** Counts behind the scores, so a sidecar says what exactly was wrong. */
export interface ValidationCounts {
  records: number;
  invalidRecords: number;
  requiredFields: number;
  missingFields: number;
  values: number;
  valuesInRange: number;
  outOfOrder: number;
  nonFinite: number;
  negative: number;
  endBeforeStart: number;
  timeBefore2000: number;
  timeInFuture: number;
  outsideRecord: number;
  unknownEnum: number;
  missingZone: number;
  belowRange: number;
  aboveRange: number;
}

export interface ValidationResult {
  readonly recordType: RecordType;
  /** Rounded to 3 decimals. */
  readonly score: number;
  readonly threshold: number;
  /** No blocking error. */
  readonly passed: boolean;
  readonly checks: CheckScores;
  /** Blocking errors: any one quarantines the file. */
  readonly blocking: string[];
  readonly warnings: string[];
  readonly counts: ValidationCounts;
}

export interface Validator {
  add(record: HealthRecord): void;
  finish(file?: { bytes?: number }): ValidationResult;
}

const YEAR_2000 = Date.UTC(2000, 0, 1);
const DAY = 86_400_000;
const SLACK = 60_000;
const SLEEP_STAGES = new Set(['UNKNOWN', 'AWAKE', 'SLEEPING', 'OUT_OF_BED', 'LIGHT', 'DEEP', 'REM']);

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export function createValidator(
  recordType: RecordType,
  config: Partial<ValidationConfig> & { now: number },
): Validator {
  const cfg: ValidationConfig = { ...DEFAULT_VALIDATION, ...config };
  const range = RANGES[recordType];
  const latest = cfg.now + DAY;
  const c: ValidationCounts = {
    records: 0,
    invalidRecords: 0,
    requiredFields: 0,
    missingFields: 0,
    values: 0,
    valuesInRange: 0,
    outOfOrder: 0,
    nonFinite: 0,
    negative: 0,
    endBeforeStart: 0,
    timeBefore2000: 0,
    timeInFuture: 0,
    outsideRecord: 0,
    unknownEnum: 0,
    missingZone: 0,
    belowRange: 0,
    aboveRange: 0,
  };
  let lastStart = Number.NEGATIVE_INFINITY;
  // Per record: true while everything seen is possible.
  let ok = true;

  const need = (present: boolean) => {
    c.requiredFields++;
    if (!present) c.missingFields++;
  };
  const time = (t: number) => {
    if (!Number.isFinite(t)) {
      c.nonFinite++;
      ok = false;
    } else if (t < YEAR_2000) {
      c.timeBefore2000++;
      ok = false;
    } else if (t > latest) {
      c.timeInFuture++;
      ok = false;
    }
  };
  const value = (v: number, allowZero: boolean) => {
    c.values++;
    if (!Number.isFinite(v)) {
      c.nonFinite++;
      ok = false;
      return;
    }
    if (v < 0 || (!allowZero && v === 0)) {
      c.negative++;
      ok = false;
    }
    if (v < range.min) c.belowRange++;
    else if (v > range.max) c.aboveRange++;
    else c.valuesInRange++;
  };
  const interval = (start: number, end: number) => {
    time(start);
    time(end);
    if (end < start) {
      c.endBeforeStart++;
      ok = false;
    }
  };
  const zone = (z: string | null) => {
    const known = isKnownZone(z);
    if (!known) c.missingZone++;
    need(known);
  };
  const order = (start: number) => {
    if (start < lastStart) c.outOfOrder++;
    lastStart = start;
  };
  const common = (r: HealthRecord) => {
    const m = r.metadata;
    need(typeof m.id === 'string' && m.id.length > 0);
    need(typeof m.dataOriginPackageName === 'string' && m.dataOriginPackageName.length > 0);
    need(m.lastModifiedTimeEpochMillis > 0);
    need(r.appRecordFetchTimeEpochMillis > 0);
  };

  const perType: Record<RecordType, (r: never) => void> = {
    BloodGlucoseRecord: (r: BloodGlucoseRecord) => {
      need(r.timeEpochMillis > 0);
      zone(r.zoneOffsetId);
      need(r.levelInMilligramsPerDeciliter !== null && r.levelInMilligramsPerDeciliter !== undefined);
      time(r.timeEpochMillis);
      value(r.levelInMilligramsPerDeciliter, false);
      if (r.specimenSource === undefined || r.mealType === undefined || r.relationToMeal === undefined) {
        c.unknownEnum++;
        ok = false;
      }
      order(r.timeEpochMillis);
    },
    HeartRateVariabilityRmssdRecord: (r: HeartRateVariabilityRmssdRecord) => {
      need(r.timeEpochMillis > 0);
      zone(r.zoneOffsetId);
      need(r.heartRateVariabilityRmssd !== null && r.heartRateVariabilityRmssd !== undefined);
      time(r.timeEpochMillis);
      value(r.heartRateVariabilityRmssd, false);
      order(r.timeEpochMillis);
    },
    HeartRateRecord: (r: HeartRateRecord) => {
      need(r.startTimeEpochMillis > 0);
      need(r.endTimeEpochMillis > 0);
      zone(r.startZoneOffsetId);
      need(r.samples.length > 0);
      interval(r.startTimeEpochMillis, r.endTimeEpochMillis);
      let prev = Number.NEGATIVE_INFINITY;
      for (const s of r.samples) {
        value(s.beatsPerMinute, false);
        if (
          s.timeEpochMillis < r.startTimeEpochMillis - SLACK ||
          s.timeEpochMillis > r.endTimeEpochMillis + SLACK
        ) {
          c.outsideRecord++;
          ok = false;
        }
        if (s.timeEpochMillis < prev) c.outOfOrder++;
        prev = s.timeEpochMillis;
      }
      order(r.startTimeEpochMillis);
    },
    SleepSessionRecord: (r: SleepSessionRecord) => {
      need(r.startTimeEpochMillis > 0);
      need(r.endTimeEpochMillis > 0);
      zone(r.startZoneOffsetId);
      need(r.stages.length > 0);
      interval(r.startTimeEpochMillis, r.endTimeEpochMillis);
      value((r.endTimeEpochMillis - r.startTimeEpochMillis) / 3_600_000, false);
      let prev = Number.NEGATIVE_INFINITY;
      for (const s of r.stages) {
        if (!SLEEP_STAGES.has(s.stage)) {
          c.unknownEnum++;
          ok = false;
        }
        if (s.endTimeEpochMillis < s.startTimeEpochMillis) {
          c.endBeforeStart++;
          ok = false;
        }
        if (
          s.startTimeEpochMillis < r.startTimeEpochMillis - SLACK ||
          s.endTimeEpochMillis > r.endTimeEpochMillis + SLACK
        ) {
          c.outsideRecord++;
          ok = false;
        }
        if (s.startTimeEpochMillis < prev) c.outOfOrder++;
        prev = s.startTimeEpochMillis;
      }
      order(r.startTimeEpochMillis);
    },
    StepsRecord: (r: StepsRecord) => {
      need(r.startTimeEpochMillis > 0);
      need(r.endTimeEpochMillis > 0);
      zone(r.startZoneOffsetId);
      need(r.count !== null && r.count !== undefined);
      interval(r.startTimeEpochMillis, r.endTimeEpochMillis);
      value(r.count, true);
      order(r.startTimeEpochMillis);
    },
    ActiveCaloriesBurnedRecord: (r: ActiveCaloriesBurnedRecord) => {
      need(r.startTimeEpochMillis > 0);
      need(r.endTimeEpochMillis > 0);
      zone(r.startZoneOffsetId);
      need(r.energyInKilocalories !== null && r.energyInKilocalories !== undefined);
      interval(r.startTimeEpochMillis, r.endTimeEpochMillis);
      value(r.energyInKilocalories, true);
      order(r.startTimeEpochMillis);
    },
  };
  const check = perType[recordType] as (r: HealthRecord) => void;

  return {
    add(record: HealthRecord) {
      ok = true;
      c.records++;
      common(record);
      check(record);
      if (!ok) c.invalidRecords++;
    },

    finish(file: { bytes?: number } = {}): ValidationResult {
      const n = c.records;
      const checks: CheckScores = {
        schemaValidity: n ? round3((n - c.invalidRecords) / n) : 0,
        completeness: c.requiredFields ? round3((c.requiredFields - c.missingFields) / c.requiredFields) : 0,
        inRangeShare: c.values ? round3(c.valuesInRange / c.values) : 0,
        temporalOrder: c.outOfOrder === 0 ? 1 : 0.7,
      };
      const score = n
        ? round3(
            WEIGHTS.schemaValidity * checks.schemaValidity +
              WEIGHTS.completeness * checks.completeness +
              WEIGHTS.inRangeShare * checks.inRangeShare +
              WEIGHTS.temporalOrder * checks.temporalOrder,
          )
        : 0;
      const blocking: string[] = [];
      const warnings: string[] = [];
      if (n === 0) blocking.push('no_records: the file holds no records');
      else {
        if (checks.completeness < cfg.blockingCompleteness) {
          blocking.push(
            `incomplete: only ${pct(checks.completeness)} of required fields present (minimum ${pct(cfg.blockingCompleteness)})`,
          );
        }
        if (checks.inRangeShare < cfg.blockingInRangeShare) {
          blocking.push(
            `out_of_range: only ${pct(checks.inRangeShare)} of ${range.what} values within ${range.min}-${range.max} ${range.unit} (minimum ${pct(cfg.blockingInRangeShare)}; ${c.belowRange} below, ${c.aboveRange} above, ${c.values - c.valuesInRange - c.belowRange - c.aboveRange} not a number)`,
          );
        }
        if (score < cfg.threshold) {
          blocking.push(
            `quality_below_threshold: score ${score.toFixed(3)} < ${cfg.threshold.toFixed(2)} (schema validity ${checks.schemaValidity}, completeness ${checks.completeness}, in range ${checks.inRangeShare}, temporal order ${checks.temporalOrder})`,
          );
        }
      }
      if (n > 0 && checks.schemaValidity < 1) {
        const what = [
          c.nonFinite && `${c.nonFinite} non-finite numbers`,
          c.negative && `${c.negative} negative or zero values`,
          c.endBeforeStart && `${c.endBeforeStart} end-before-start intervals`,
          c.timeBefore2000 && `${c.timeBefore2000} timestamps before 2000`,
          c.timeInFuture && `${c.timeInFuture} timestamps in the future`,
          c.outsideRecord && `${c.outsideRecord} samples/stages outside their record`,
          c.unknownEnum && `${c.unknownEnum} unknown enum values`,
        ].filter(Boolean);
        warnings.push(`${c.invalidRecords} of ${n} records hold impossible values (${what.join(', ')})`);
      }
      if (n > 0 && checks.completeness < cfg.warnCompleteness) {
        warnings.push(
          `completeness ${pct(checks.completeness)} below ${pct(cfg.warnCompleteness)} (${c.missingFields} of ${c.requiredFields} required fields missing${c.missingZone ? `, ${c.missingZone} without a usable zone offset` : ''})`,
        );
      }
      if (n > 0 && checks.inRangeShare < cfg.warnInRangeShare) {
        warnings.push(
          `only ${pct(checks.inRangeShare)} of ${range.what} values within ${range.min}-${range.max} ${range.unit} (${c.belowRange} below, ${c.aboveRange} above)`,
        );
      }
      if (c.outOfOrder > 0) warnings.push(`times not in order (${c.outOfOrder} steps back)`);
      if (n > cfg.warnRecords) warnings.push(`${n} records: more than ${cfg.warnRecords}`);
      if (file.bytes !== undefined && file.bytes > cfg.warnFileBytes) {
        warnings.push(
          `file of ${(file.bytes / 1048576).toFixed(1)} MB: over ${(cfg.warnFileBytes / 1048576).toFixed(0)} MB`,
        );
      }
      return {
        recordType,
        score,
        threshold: cfg.threshold,
        passed: blocking.length === 0,
        checks,
        blocking,
        warnings,
        counts: { ...c },
      };
    },
  };
}

/** Whole-array convenience. */
export function validateRecords(
  recordType: RecordType,
  records: Iterable<HealthRecord>,
  config: Partial<ValidationConfig> & { now: number },
  file?: { bytes?: number },
): ValidationResult {
  const v = createValidator(recordType, config);
  for (const r of records) v.add(r);
  return v.finish(file);
}
