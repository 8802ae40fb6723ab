/**
 * Instruction-tuning output: one example per processed file, written as its own immutable object.
 *
 * The replaced system appended to one object per domain and month by read-modify-write, so two
 * workers lost each other's lines. Here the key is derived from the source object's identity
 * (bucket, key, version id or ETag): a retry or a parallel worker computes the same key and writes
 * the same bytes, so an example is never lost and never duplicated.
 */
import { partialDay } from './processors/daily-totals';
import { type SourceIdentity, sourceId } from './source';
import { localTime } from './time';
import { DOMAINS, type Domain, type HealthRecord, type RecordType, recordInterval } from './types';

/**
 * What an example is about: one current example per (domain, data origins, local day). A later
 * export of the same subject supersedes the earlier example (record-store.ts `manifestOf`).
 */
export interface TrainingSubject {
  readonly key: string;
  readonly domain: Domain;
  readonly dataOrigins: string[];
  /** Local date (record zone) of the latest record start in the file. */
  readonly localDay: string;
  /** False when that day had not ended at the export's fetch time. */
  readonly dayComplete: boolean;
  /** Local clock of the export when the day was not complete, "10:27". */
  readonly asOf: string | null;
  readonly percentOfDay: number | null;
}

export function createSubjectTracker(recordType: RecordType): {
  add(record: HealthRecord): void;
  finish(fetchTime: number): TrainingSubject;
} {
  const origins = new Set<string>();
  let lastStart = Number.NEGATIVE_INFINITY;
  let lastZone: string | null = null;
  return {
    add(record) {
      origins.add(record.metadata.dataOriginPackageName);
      const { start, zone } = recordInterval(recordType, record);
      if (Number.isFinite(start) && start > lastStart) {
        lastStart = start;
        lastZone = zone;
      }
    },
    finish(fetchTime) {
      const domain = DOMAINS[recordType];
      const dataOrigins = [...origins].sort();
      const localDay = Number.isFinite(lastStart) ? localTime(lastStart, lastZone).date : '1970-01-01';
      const partial = partialDay(localDay, fetchTime, lastZone);
      return {
        key: `${domain}|${dataOrigins.join('+')}|${localDay}`,
        domain,
        dataOrigins,
        localDay,
        dayComplete: partial === null,
        asOf: partial?.asOf ?? null,
        percentOfDay: partial?.percentOfDay ?? null,
      };
    },
  };
}

export interface TrainingMetadata {
  readonly recordType: RecordType;
  readonly domain: Domain;
  readonly source: { bucket: string; key: string; versionId: string | null; etag: string | null };
  readonly sourceId: string;
  readonly userId: string;
  readonly correlationId: string | null;
  readonly processedAt: string;
  readonly qualityScore: number;
  readonly recordsProcessed: number;
  readonly recordsNew: number;
  readonly recordsUpdated: number;
  readonly warnings: string[];
  readonly insights: Record<string, unknown>;
  readonly processorVersion: string;
  readonly readerSchemaVersion: number;
  readonly subject: TrainingSubject;
}

export interface TrainingExample {
  readonly instruction: string;
  readonly input: string;
  readonly output: string;
  readonly metadata: TrainingMetadata;
}

export const INSTRUCTIONS: Record<RecordType, string> = {
  BloodGlucoseRecord:
    'Summarise this continuous glucose monitoring export in plain English for the person who wore the sensor: when it was recorded, average level and variability, time in range, lows and highs, fasting and overnight levels, and practical recommendations.',
  HeartRateRecord:
    'Summarise this heart-rate export in plain English: the recording period and sources, typical and resting heart rate, exercise bouts, anything unusual at rest, and practical recommendations.',
  HeartRateVariabilityRmssdRecord:
    'Summarise this overnight heart-rate variability (RMSSD) export in plain English: the period, typical values and what they suggest about recovery, the trend, and practical recommendations.',
  SleepSessionRecord:
    'Summarise this sleep export in plain English: each night or nap, time in bed and asleep, efficiency and sleep stages against the usual targets, how different apps reporting the same night were reconciled, and practical recommendations.',
  StepsRecord:
    'Summarise this step-count export in plain English: the daily total, how reports from different apps were reconciled, progress towards 10,000 steps, and practical recommendations.',
  ActiveCaloriesBurnedRecord:
    'Summarise this active-energy export in plain English: the daily active calories, how they compare with a 500 kcal target, and practical recommendations.',
};

function datePath(epochMillis: number): string {
  const d = new Date(epochMillis).toISOString();
  return `${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}`;
}

/**
 * `training/<domain>/YYYY/MM/DD/<file stem>.<source id>.jsonl`: the date is the export's fetch
 * time (UTC), the id is derived from the source object's identity only.
 */
export function trainingKey(recordType: RecordType, source: SourceIdentity, dateMillis: number): string {
  const file = source.key.slice(source.key.lastIndexOf('/') + 1).replace(/\.avro$/i, '');
  const stem = file.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80);
  return `training/${DOMAINS[recordType]}/${datePath(dateMillis)}/${stem}.${sourceId(source)}.jsonl`;
}

export interface TrainingInput {
  readonly recordType: RecordType;
  readonly source: SourceIdentity;
  readonly userId: string;
  readonly correlationId: string | null;
  readonly processedAt: string;
  readonly qualityScore: number;
  readonly recordsProcessed: number;
  readonly recordsNew: number;
  readonly recordsUpdated: number;
  readonly warnings: string[];
  readonly insights: Record<string, unknown>;
  readonly narrative: string;
  readonly dataInput: string;
  readonly processorVersion: string;
  readonly readerSchemaVersion: number;
  readonly subject: TrainingSubject;
}

export function buildTrainingExample(t: TrainingInput): TrainingExample {
  return {
    instruction: INSTRUCTIONS[t.recordType],
    input: t.dataInput,
    output: t.narrative,
    metadata: {
      recordType: t.recordType,
      domain: DOMAINS[t.recordType],
      source: {
        bucket: t.source.bucket,
        key: t.source.key,
        versionId: t.source.versionId ?? null,
        etag: t.source.etag ?? null,
      },
      sourceId: sourceId(t.source),
      userId: t.userId,
      correlationId: t.correlationId,
      processedAt: t.processedAt,
      qualityScore: t.qualityScore,
      recordsProcessed: t.recordsProcessed,
      recordsNew: t.recordsNew,
      recordsUpdated: t.recordsUpdated,
      warnings: t.warnings,
      insights: t.insights,
      processorVersion: t.processorVersion,
      readerSchemaVersion: t.readerSchemaVersion,
      subject: t.subject,
    },
  };
}

/** One JSON object per line (JSONL), newline-terminated. */
export function serializeTrainingExample(example: TrainingExample): string {
  return `${JSON.stringify(example)}\n`;
}
