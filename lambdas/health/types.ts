/**
 * Record shapes as our reader schemas (schemas/avro/v<N>/<Type>.avsc) decode them: FLAT fields,
 * exactly the exporting app's names. Decoded values are used as-is (no copy into another shape),
 * which keeps decoding of large exports cheap.
 */

export const RECORD_TYPES = [
  'BloodGlucoseRecord',
  'HeartRateRecord',
  'HeartRateVariabilityRmssdRecord',
  'SleepSessionRecord',
  'StepsRecord',
  'ActiveCaloriesBurnedRecord',
] as const;

export type RecordType = (typeof RECORD_TYPES)[number];

export function isRecordType(name: string): name is RecordType {
  return (RECORD_TYPES as readonly string[]).includes(name);
}

/**
 * Base record type for a schema or file-name type: accepts `BloodGlucoseRecord`,
 * `AvroBloodGlucoseRecord` and fully qualified names; undefined when unknown.
 */
export function toRecordType(name: string): RecordType | undefined {
  const short = name.slice(name.lastIndexOf('.') + 1);
  if (isRecordType(short)) return short;
  const base = short.startsWith('Avro') ? short.slice(4) : short;
  return isRecordType(base) ? base : undefined;
}

export const DOMAINS = {
  BloodGlucoseRecord: 'metabolic_diabetes',
  HeartRateRecord: 'cardiovascular_fitness',
  SleepSessionRecord: 'sleep_recovery',
  StepsRecord: 'physical_activity',
  ActiveCaloriesBurnedRecord: 'energy_metabolism',
  HeartRateVariabilityRmssdRecord: 'autonomic_health',
} as const satisfies Record<RecordType, string>;

export type Domain = (typeof DOMAINS)[RecordType];

export interface Device {
  readonly manufacturer: string | null;
  readonly model: string | null;
  readonly type: string | null;
}

export interface Metadata {
  readonly id: string;
  readonly dataOriginPackageName: string;
  readonly lastModifiedTimeEpochMillis: number;
  /** Absent from records decoded for the pipeline's analysis (schemas.ts UNREAD_FIELDS). */
  readonly clientRecordId?: string | null;
  readonly clientRecordVersion: number;
  /** Absent from records decoded for the pipeline's analysis (schemas.ts UNREAD_FIELDS). */
  readonly device?: Device | null;
  /** Reader v2 of BloodGlucoseRecord only; UNKNOWN for data written without it. */
  readonly recordingMethod?: 'UNKNOWN' | 'ACTIVELY_RECORDED' | 'AUTOMATICALLY_RECORDED' | 'MANUAL_ENTRY';
}

interface Base {
  readonly metadata: Metadata;
  readonly appRecordFetchTimeEpochMillis: number;
}

export interface BloodGlucoseRecord extends Base {
  readonly timeEpochMillis: number;
  readonly zoneOffsetId: string | null;
  readonly levelInMilligramsPerDeciliter: number;
  readonly specimenSource: string;
  readonly mealType: string;
  readonly relationToMeal: string;
}

export interface HeartRateSample {
  readonly timeEpochMillis: number;
  readonly beatsPerMinute: number;
}

export interface HeartRateRecord extends Base {
  readonly startTimeEpochMillis: number;
  readonly endTimeEpochMillis: number;
  readonly startZoneOffsetId: string | null;
  readonly endZoneOffsetId: string | null;
  readonly samples: readonly HeartRateSample[];
}

export interface HeartRateVariabilityRmssdRecord extends Base {
  readonly timeEpochMillis: number;
  readonly zoneOffsetId: string | null;
  readonly heartRateVariabilityRmssd: number;
}

export type SleepStageType = 'UNKNOWN' | 'AWAKE' | 'SLEEPING' | 'OUT_OF_BED' | 'LIGHT' | 'DEEP' | 'REM';

export interface SleepStage {
  readonly startTimeEpochMillis: number;
  readonly endTimeEpochMillis: number;
  readonly stage: SleepStageType;
}

export interface SleepSessionRecord extends Base {
  readonly title: string | null;
  readonly notes: string | null;
  readonly startTimeEpochMillis: number;
  readonly endTimeEpochMillis: number;
  readonly startZoneOffsetId: string | null;
  readonly endZoneOffsetId: string | null;
  readonly durationMillis: number | null;
  readonly stages: readonly SleepStage[];
}

export interface StepsRecord extends Base {
  readonly startTimeEpochMillis: number;
  readonly endTimeEpochMillis: number;
  readonly startZoneOffsetId: string | null;
  readonly endZoneOffsetId: string | null;
  readonly count: number;
}

export interface ActiveCaloriesBurnedRecord extends Base {
  readonly startTimeEpochMillis: number;
  readonly endTimeEpochMillis: number;
  readonly startZoneOffsetId: string | null;
  readonly endZoneOffsetId: string | null;
  readonly energyInKilocalories: number;
}

export interface RecordOf {
  BloodGlucoseRecord: BloodGlucoseRecord;
  HeartRateRecord: HeartRateRecord;
  HeartRateVariabilityRmssdRecord: HeartRateVariabilityRmssdRecord;
  SleepSessionRecord: SleepSessionRecord;
  StepsRecord: StepsRecord;
  ActiveCaloriesBurnedRecord: ActiveCaloriesBurnedRecord;
}

export type HealthRecord = RecordOf[RecordType];

/** Start and end of any record (instant records have start = end). */
export function recordInterval(
  type: RecordType,
  r: HealthRecord,
): { start: number; end: number; zone: string | null } {
  if (type === 'BloodGlucoseRecord' || type === 'HeartRateVariabilityRmssdRecord') {
    const x = r as BloodGlucoseRecord | HeartRateVariabilityRmssdRecord;
    return { start: x.timeEpochMillis, end: x.timeEpochMillis, zone: x.zoneOffsetId };
  }
  const x = r as StepsRecord;
  return { start: x.startTimeEpochMillis, end: x.endTimeEpochMillis, zone: x.startZoneOffsetId };
}
