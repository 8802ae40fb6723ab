/**
 * Instruction-tuning output: one example per processed file, written as its own immutable object.
 *
 * The replaced system appended to one object per domain and month by read-modify-write, so two
 * workers lost each other's lines. Here the key is derived from the source object's identity
 * (bucket, key, version id or ETag): a retry or a parallel worker computes the same key and writes
 * the same bytes, so an example is never lost and never duplicated.
 */
import { createHash } from 'node:crypto';
import { hoursMinutes } from './processors/common';
import { partialDay } from './processors/daily-totals';
import { sessionPeriod } from './processors/sleep';
import type { ManifestSubject } from './record-store';
import { type SourceIdentity, sourceId } from './source';
import { offsetMinutesAt } from './time';
import {
  DOMAINS,
  type Domain,
  type HealthRecord,
  type RecordType,
  recordInterval,
  type SleepSessionRecord,
} from './types';

/**
 * What an example is about: one current example per (domain, data origins, period). A later
 * export of the same subject supersedes the earlier example (record-store.ts `manifestOf`).
 * `SUBJECT_RULE` says how the period is found.
 */
export interface TrainingSubject {
  readonly key: string;
  readonly domain: Domain;
  readonly dataOrigins: string[];
  /**
   * `day`: the local day holding most of the file's records; `night`: sleep, the evening the night
   * began; `nap`: a nap, its own subject beside the night.
   */
  readonly period: SubjectPeriod;
  /** Local date of the period (see `SUBJECT_RULE`). */
  readonly localDay: string;
  /** False when that day had not ended at the export's fetch time (never for sleep sessions). */
  readonly dayComplete: boolean;
  /** Local clock of the export when the day was not complete, "10:27". */
  readonly asOf: string | null;
  readonly percentOfDay: number | null;
}

export type SubjectPeriod = 'day' | 'night' | 'nap';

/**
 * How an example's subject is found (issue 15, point 3). It used to be the local day of the file's
 * LAST record, so a glucose export of 21 h that ran past midnight became "the next day" and was
 * superseded by the real next day's export, and an afternoon nap superseded the night's sleep.
 */
export const SUBJECT_RULE =
  "the local day (each record's own zone) holding most of the file's records, the later day on a tie; sleep: the night the main sleep began (a start before local noon belongs to the previous evening), a file of naps only is a nap subject of its own date";

const DAY_MS = 86_400_000;

/**
 * Records per local day (numeric day index, no Date per record) and the zone seen on each day.
 * Runs once per record of every export (a million for the largest): consecutive records of the
 * same day and zone only bump a counter.
 */
class DayCounter {
  private readonly counts = new Map<number, { n: number; zone: string | null }>();
  private current: { n: number; zone: string | null } | null = null;
  private currentDay = Number.NaN;
  private lastZone: string | null | undefined;
  private lastOffsetMs = 0;
  add(epochMillis: number, zone: string | null): void {
    if (!Number.isFinite(epochMillis)) return;
    // Fixed offsets do not depend on the instant; a region id ("America/New_York") does.
    if (zone !== this.lastZone || zone?.includes('/')) {
      this.lastZone = zone;
      this.lastOffsetMs = offsetMinutesAt(zone, epochMillis) * 60_000;
    }
    const day = Math.floor((epochMillis + this.lastOffsetMs) / DAY_MS);
    if (day !== this.currentDay) {
      this.currentDay = day;
      this.current = this.counts.get(day) ?? null;
      if (!this.current) {
        this.current = { n: 0, zone };
        this.counts.set(day, this.current);
      }
    }
    const c = this.current as { n: number; zone: string | null };
    c.n++;
    c.zone = zone;
  }
  /** The day with the most records, the later one on a tie; null when nothing was counted. */
  top(): { date: string; zone: string | null } | null {
    const day = mostFrequent(Array.from(this.counts, ([d, c]) => [d, c.n] as const));
    if (day === null) return null;
    return {
      date: new Date(day * DAY_MS).toISOString().slice(0, 10),
      zone: this.counts.get(day)?.zone ?? null,
    };
  }
}

export function createSubjectTracker(recordType: RecordType): {
  add(record: HealthRecord): void;
  finish(fetchTime: number): TrainingSubject;
  /** Earliest start and latest end of the records (null without any): what the export covers. */
  range(): { start: number; end: number } | null;
} {
  const origins = new Set<string>();
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  const days = new DayCounter();
  // Sleep: nights (main sleep) and naps counted apart, by the date sessionPeriod gives them.
  const nights = new Map<string, number>();
  const naps = new Map<string, number>();
  const isSleep = recordType === 'SleepSessionRecord';
  return {
    add(record) {
      origins.add(record.metadata.dataOriginPackageName);
      const { start, end, zone } = recordInterval(recordType, record);
      if (start < first) first = start;
      if (end > last) last = end;
      if (isSleep) {
        const { kind, nightOf } = sessionPeriod(record as SleepSessionRecord);
        const m = kind === 'main' ? nights : naps;
        m.set(nightOf, (m.get(nightOf) ?? 0) + 1);
        return;
      }
      days.add(start, zone);
    },
    range: () => (first <= last ? { start: first, end: last } : null),
    finish(fetchTime) {
      const domain = DOMAINS[recordType];
      const dataOrigins = [...origins].sort();
      const base = `${domain}|${dataOrigins.join('+')}`;
      if (isSleep) {
        // A session is written once it has ended, so a sleep subject is never a partial day; a
        // file with a night is about that night (a nap beside it is described, not a subject).
        const period: SubjectPeriod = nights.size > 0 || naps.size === 0 ? 'night' : 'nap';
        const localDay = mostFrequent(period === 'night' ? nights : naps) ?? '1970-01-01';
        return {
          key: period === 'nap' ? `${base}|${localDay}|nap` : `${base}|${localDay}`,
          domain,
          dataOrigins,
          period,
          localDay,
          dayComplete: true,
          asOf: null,
          percentOfDay: null,
        };
      }
      const top = days.top();
      const localDay = top?.date ?? '1970-01-01';
      const partial = top ? partialDay(localDay, fetchTime, top.zone) : null;
      return {
        key: `${base}|${localDay}`,
        domain,
        dataOrigins,
        period: 'day',
        localDay,
        dayComplete: partial === null,
        asOf: partial?.asOf ?? null,
        percentOfDay: partial?.percentOfDay ?? null,
      };
    },
  };
}

/** The key with the highest count, the later (greater) one on a tie. */
function mostFrequent<K extends number | string>(counts: Iterable<readonly [K, number]>): K | null {
  let best: K | null = null;
  let n = 0;
  for (const [k, c] of counts) if (best === null || c > n || (c === n && k > best)) [best, n] = [k, c];
  return best;
}

export type TrainingCategory = 'summary' | 'question' | 'coaching' | 'partial_day' | 'insufficient_data';
export type ComplexityLevel = 'basic' | 'intermediate' | 'advanced';
export type ClinicalRelevance = 'low' | 'medium' | 'high';

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
  /** What a trainer filters on (see `classifyExample`). */
  readonly training_category: TrainingCategory;
  readonly complexity_level: ComplexityLevel;
  readonly clinical_relevance: ClinicalRelevance;
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

/** Instructions a person would write, by category; one is picked per example from its source id. */
const QUESTIONS: Record<RecordType, string> = {
  BloodGlucoseRecord: 'How was my blood sugar in this recording, and is there anything I should watch?',
  HeartRateRecord: 'What does my heart rate in this export say about my resting rate and my exercise?',
  HeartRateVariabilityRmssdRecord:
    'Is my heart-rate variability in this export low, normal or high, and what does it mean for recovery?',
  SleepSessionRecord: 'How well did I sleep according to this export?',
  StepsRecord: 'How active was I according to these step counts?',
  ActiveCaloriesBurnedRecord: 'Did I burn enough active calories according to this export?',
};
const COACHING: Record<RecordType, string> = {
  BloodGlucoseRecord:
    'Act as a diabetes educator: go through these glucose readings with me and give me one or two concrete things to try.',
  HeartRateRecord:
    'Act as a fitness coach: use this heart-rate export to tell me how my training and recovery look and what to change.',
  HeartRateVariabilityRmssdRecord:
    'Act as a recovery coach: read this overnight HRV export and tell me how to plan my training today.',
  SleepSessionRecord:
    'Act as a sleep coach: review this sleep export and suggest what I could change tonight.',
  StepsRecord: 'Act as a walking coach: look at these step counts and help me plan tomorrow.',
  ActiveCaloriesBurnedRecord:
    'Act as a fitness coach: look at my active calories and suggest how to reach my target.',
};
const PARTIAL: Record<RecordType, string> = {
  BloodGlucoseRecord: INSTRUCTIONS_PARTIAL('glucose'),
  HeartRateRecord: INSTRUCTIONS_PARTIAL('heart rate'),
  HeartRateVariabilityRmssdRecord: INSTRUCTIONS_PARTIAL('heart-rate variability'),
  SleepSessionRecord: INSTRUCTIONS_PARTIAL('sleep'),
  StepsRecord: 'How am I doing on steps so far today?',
  ActiveCaloriesBurnedRecord: 'How many active calories have I burned so far today?',
};
function INSTRUCTIONS_PARTIAL(what: string): string {
  return `The day is not over yet: what does my ${what} data so far show?`;
}
const INSUFFICIENT =
  'Summarise this export, and say plainly if it holds too little data to draw conclusions.';

/** Minimum readings for a summary to be meaningful; below it the example teaches "not enough data". */
const MIN_READINGS: Partial<Record<RecordType, number>> = {
  BloodGlucoseRecord: 36, // 3 hours of 5-minute CGM readings
  HeartRateVariabilityRmssdRecord: 7, // the HRV trend rule's own minimum
};

/**
 * Category, complexity and clinical relevance of an example, from what the pipeline computed:
 * - category: insufficient_data (fewer readings than MIN_READINGS), partial_day (the day had not
 *   ended at the export), else summary / question / coaching, picked from the source id so a
 *   retry writes the same example and the set holds all three in about equal shares;
 * - complexity: advanced with several data origins, excluded out-of-range values or warnings;
 *   intermediate with more than 50 records; else basic;
 * - clinical relevance: high when the narrative refers the person to a clinician, medium when it
 *   recommends a change, low when it says to keep the routine.
 */
export function classifyExample(t: {
  recordType: RecordType;
  sourceId: string;
  recordsProcessed: number;
  subject: TrainingSubject;
  warnings: readonly string[];
  insights: Record<string, unknown>;
  narrative: string;
}): {
  training_category: TrainingCategory;
  complexity_level: ComplexityLevel;
  clinical_relevance: ClinicalRelevance;
  instruction: string;
} {
  let category: TrainingCategory;
  let instruction: string;
  if (t.recordsProcessed < (MIN_READINGS[t.recordType] ?? 1)) {
    category = 'insufficient_data';
    instruction = INSUFFICIENT;
  } else if (!t.subject.dayComplete) {
    category = 'partial_day';
    instruction = PARTIAL[t.recordType];
  } else {
    let h = 0;
    for (let i = 0; i < t.sourceId.length; i++) h = (h * 31 + t.sourceId.charCodeAt(i)) >>> 0;
    const pick = h % 3;
    category = pick === 0 ? 'summary' : pick === 1 ? 'question' : 'coaching';
    instruction =
      pick === 0 ? INSTRUCTIONS[t.recordType] : pick === 1 ? QUESTIONS[t.recordType] : COACHING[t.recordType];
  }
  const complexity: ComplexityLevel =
    t.subject.dataOrigins.length > 1 || t.insights.excludedOutOfRange !== undefined || t.warnings.length > 0
      ? 'advanced'
      : t.recordsProcessed > 50
        ? 'intermediate'
        : 'basic';
  const relevance: ClinicalRelevance = /clinician/i.test(t.narrative)
    ? 'high'
    : /Recommendation: keep/.test(t.narrative) && !/Recommendation: keep[^.]*;/.test(t.narrative)
      ? 'low'
      : 'medium';
  return {
    training_category: category,
    complexity_level: complexity,
    clinical_relevance: relevance,
    instruction,
  };
}

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

/**
 * A number as the narratives print it: integers as they are, others with one decimal and rounded;
 * durations in hours or minutes also as hours and minutes (processors/common.ts `hoursMinutes`).
 */
function factNumber(n: number, key: string): string {
  const shown = Number.isInteger(n) ? String(n) : `${n.toFixed(1)} (about ${Math.round(n)})`;
  if (/hours$/i.test(key)) return `${shown} h (${hoursMinutes(n * 60)})`;
  return /minutes$/i.test(key) && n >= 60 ? `${shown} min (${hoursMinutes(n)})` : shown;
}

/** The computed insights as `path: value` lines (objects and arrays flattened, nulls left out). */
export function factLines(value: unknown, path = ''): string[] {
  if (value === null || value === undefined) return [];
  if (typeof value === 'number')
    return Number.isFinite(value)
      ? [`${path}: ${factNumber(value, path.slice(path.lastIndexOf('.') + 1))}`]
      : [];
  if (typeof value === 'string' || typeof value === 'boolean') return [`${path}: ${value}`];
  if (Array.isArray(value)) return value.flatMap((v, i) => factLines(v, `${path}[${i}]`));
  if (typeof value === 'object')
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
      factLines(v, path ? `${path}.${k}` : k),
    );
  return [];
}

/**
 * The example's input: the data as read, then every figure the narrative states, computed from it
 * (the processor's insights) and the reference values the narrative compares with, so that every
 * number of the output can be found in the input (test/unit/health/training-grounding.test.ts).
 */
export function groundedInput(
  t: Pick<TrainingInput, 'dataInput' | 'insights' | 'recordType' | 'subject'>,
): string {
  const facts = factLines(t.insights);
  return [
    t.dataInput,
    subjectLine(t.subject),
    `Computed facts:\n${facts.join('\n')}`,
    `Reference values: ${REFERENCE_VALUES[t.recordType]}`,
  ].join('\n\n');
}

/** What the example is about, as its input states it. */
function subjectLine(s: TrainingSubject): string {
  if (s.period === 'night') return `Night of ${s.localDay} (the evening the sleep began).`;
  if (s.period === 'nap') return `Nap on ${s.localDay}.`;
  return `Local day ${s.localDay}${s.asOf ? `, as of ${s.asOf} (${s.percentOfDay} % of the day)` : ', complete'}.`;
}

/** The ranges, bands and targets each narrative compares with (fact sheet, processors/). */
export const REFERENCE_VALUES: Record<RecordType, string> = {
  BloodGlucoseRecord:
    'target range 70-180 mg/dL; below 54 and 54-69 (low), 70-100, 101-140, 141-180, above 180 mg/dL; control excellent if CV < 36 % and time in range >= 70 %, good if >= 50 %; estimated A1c and GMI need at least 14 days; trend threshold 5 %; fasting window 06:00-09:59, overnight 22:00-05:59 local.',
  HeartRateRecord:
    'maximum heart rate 180 bpm (default); zones <60, 60-70, 70-80, 80-90, >=90 % of maximum; classes <40, 40-59, 60-99, 100-119, 120-149, >=150 bpm; exercise: at least 10 minutes at >= 100 bpm; resting: lowest 20 % of the samples during sleep sessions (sleep records), or of overnight (22:00-05:59) samples on a night no sleep record covers; normal resting 50-100 bpm; a sleeping heart rate of 80 bpm or more is high.',
  HeartRateVariabilityRmssdRecord:
    'RMSSD bands <20, 20-40, 40-60, 60-80, >=80 ms; a trend needs at least 7 readings and a 10 % change.',
  SleepSessionRecord:
    'duration bands <6, 6-7, 7-9 (optimal), 9-10, >10 h; targets deep 15-25 %, REM 20-25 %, awake <= 5 %; efficiency = asleep / staged time; naps are counted apart, and naps longer than about 90 minutes can disturb the night.',
  StepsRecord:
    'target 10000 steps a day; bands <5000, 5000-7499, 7500-9999, 10000-12499, >=12500; brisk walking is about 100 steps a minute.',
  ActiveCaloriesBurnedRecord:
    'target 500 kcal a day; bands <200, 200-399, 400-599, 600-799, >=800 kcal; moderate activity burns roughly 7 kcal a minute.',
};

export function buildTrainingExample(t: TrainingInput): TrainingExample {
  const sid = sourceId(t.source);
  const c = classifyExample({ ...t, sourceId: sid });
  const output =
    c.training_category === 'insufficient_data'
      ? `There is not enough data here for a reliable summary: only ${t.recordsProcessed} reading${t.recordsProcessed === 1 ? '' : 's'}. What the data shows: ${t.narrative}`
      : t.narrative;
  return {
    instruction: c.instruction,
    input: groundedInput(t),
    output,
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
      training_category: c.training_category,
      complexity_level: c.complexity_level,
      clinical_relevance: c.clinical_relevance,
    },
  };
}

/** Where the manifest of current training examples is written (beside the examples). */
export const TRAINING_MANIFEST_KEY = 'training/manifest.json';

/**
 * The manifest: per subject (domain, data origins, local day) the current example's key and the
 * superseded ones; a current example that nearly duplicates a more informative one names it in
 * `nearDuplicateOf` (suppressNearDuplicates). A trainer reads `trainingSet` (the current examples
 * less the near-duplicates); the superseded and suppressed objects stay as versions.
 */
export function trainingManifest(
  subjects: readonly ManifestSubject[],
  generatedAt: Date,
): { body: string; counts: TrainingSetCounts; curated: CuratedSubject[] } {
  const curated = suppressNearDuplicates(subjects);
  const counts = trainingSetCounts(curated);
  const entry = (e: ManifestSubject['current']) => ({
    key: e.trainingKey,
    sourceId: e.sourceId,
    fetchedAt: new Date(e.fetchMs).toISOString(),
    dayComplete: e.dayComplete,
    asOf: e.asOf,
  });
  const body = `${JSON.stringify(
    {
      generatedAt: generatedAt.toISOString(),
      counts,
      nearDuplicateRule: NEAR_DUPLICATE_RULE,
      trainingSet: curated.filter((s) => !s.nearDuplicateOf).map((s) => s.current.trainingKey),
      subjects: curated.map((s) => ({
        subject: s.subjectKey,
        domain: s.current.domain,
        dataOrigins: s.current.dataOrigins,
        localDay: s.current.localDay,
        current: entry(s.current),
        nearDuplicateOf: s.nearDuplicateOf ? entry(s.nearDuplicateOf) : null,
        superseded: s.superseded.map(entry),
      })),
    },
    null,
    2,
  )}\n`;
  return { body, counts, curated };
}

/** The manifest's JSON (see `trainingManifest`). */
export function serializeTrainingManifest(subjects: readonly ManifestSubject[], generatedAt: Date): string {
  return trainingManifest(subjects, generatedAt).body;
}

/** One JSON object per line (JSONL), newline-terminated. */
export function serializeTrainingExample(example: TrainingExample): string {
  return `${JSON.stringify(example)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Near-duplicate suppression (issue 15, point 5)

/**
 * What two examples are compared on. Narratives are templates filled with figures, so two
 * examples teach a model the same thing when they are the same template filled with (almost) the
 * same figures: the same person, domain and instruction, the same output once dates, clock times
 * and numbers are masked, and every measured number within NEAR_DUPLICATE_TOLERANCE of the other's.
 * Dates and clock times are left out of the comparison: "the same night on another date" teaches
 * nothing new. Different figures (another step band, 2 exercise bouts instead of 3) or different
 * wording keep both.
 */
export interface NearDuplicateFingerprint {
  /** sha-256 (hex, 32 chars) of user, domain, instruction and the masked output. */
  readonly template: string;
  /** The measured numbers of the output in order (dates and clock times excluded). */
  readonly numbers: readonly number[];
  /** Readings the example summarises: the more informative of two near-duplicates has more. */
  readonly records: number;
}

/** Two numbers are "the same figure" within 5 % of the larger, or 0.5 (rounding of one decimal). */
export const NEAR_DUPLICATE_TOLERANCE = { relative: 0.05, absolute: 0.5 } as const;

export const NEAR_DUPLICATE_RULE =
  'same user, domain and instruction; output identical with dates, clock times and numbers masked; every number within 5 % (or 0.5)';

const DATE_RE = /\b\d{4}-\d{2}-\d{2}\b/g;
const CLOCK_RE = /\b\d{1,2}:\d{2}(?::\d{2})?\b/g;
const NUMBER_RE = /(?<![\w.])-?\d[\d,]*(?:\.\d+)?/g;

/** The output with dates, clock times and numbers masked, and the numbers it held. */
export function maskOutput(output: string): { masked: string; numbers: number[] } {
  const numbers: number[] = [];
  const masked = output
    .replace(DATE_RE, '<date>')
    .replace(CLOCK_RE, '<time>')
    .replace(NUMBER_RE, (m) => {
      numbers.push(Number(m.replaceAll(',', '')));
      return '#';
    })
    .replace(/\s+/g, ' ')
    .trim();
  return { masked, numbers };
}

export function nearDuplicateFingerprint(example: TrainingExample): NearDuplicateFingerprint {
  const { masked, numbers } = maskOutput(example.output);
  const m = example.metadata;
  const template = createHash('sha256')
    .update([m.userId, m.domain, example.instruction, masked].join('\u0000'))
    .digest('hex')
    .slice(0, 32);
  return { template, numbers, records: m.recordsProcessed };
}

function sameFigure(a: number, b: number): boolean {
  const tol = Math.max(
    NEAR_DUPLICATE_TOLERANCE.absolute,
    NEAR_DUPLICATE_TOLERANCE.relative * Math.max(Math.abs(a), Math.abs(b)),
  );
  return Math.abs(a - b) <= tol;
}

export function isNearDuplicate(a: NearDuplicateFingerprint, b: NearDuplicateFingerprint): boolean {
  return (
    a.template === b.template &&
    a.numbers.length === b.numbers.length &&
    a.numbers.every((n, i) => sameFigure(n, b.numbers[i] as number))
  );
}

type Entry = ManifestSubject['current'];

/**
 * Of near-duplicate current examples, the most informative is kept: more readings, then a
 * complete day over a running total, then more data origins, then the later export, then the
 * higher source id (every worker and replay order agree).
 */
function moreInformative(a: Entry, b: Entry): number {
  const ra = a.nearDuplicate?.records ?? 0;
  const rb = b.nearDuplicate?.records ?? 0;
  if (ra !== rb) return rb - ra;
  if (a.dayComplete !== b.dayComplete) return a.dayComplete ? -1 : 1;
  if (a.dataOrigins.length !== b.dataOrigins.length) return b.dataOrigins.length - a.dataOrigins.length;
  if (a.fetchMs !== b.fetchMs) return b.fetchMs - a.fetchMs;
  return a.sourceId < b.sourceId ? 1 : a.sourceId > b.sourceId ? -1 : 0;
}

export interface CuratedSubject extends ManifestSubject {
  /** The kept example this subject's current example nearly duplicates; null when it is kept. */
  readonly nearDuplicateOf: Entry | null;
}

/**
 * Marks the current examples that nearly duplicate a more informative current example. A pure
 * function of the recorded examples (like supersession), so it does not depend on the order files
 * arrived in, and an example suppressed today comes back if the one it duplicated is superseded.
 * Examples recorded without a fingerprint (before migration 0240) are never suppressed.
 */
export function suppressNearDuplicates(subjects: readonly ManifestSubject[]): CuratedSubject[] {
  const byTemplate = new Map<string, Entry[]>();
  for (const s of subjects) {
    const fp = s.current.nearDuplicate;
    if (!fp) continue;
    const list = byTemplate.get(fp.template) ?? [];
    list.push(s.current);
    byTemplate.set(fp.template, list);
  }
  const duplicateOf = new Map<string, Entry>();
  for (const list of byTemplate.values()) {
    if (list.length < 2) continue;
    const kept: Entry[] = [];
    for (const e of [...list].sort(moreInformative)) {
      const fp = e.nearDuplicate as NearDuplicateFingerprint;
      const twin = kept.find((k) => isNearDuplicate(fp, k.nearDuplicate as NearDuplicateFingerprint));
      if (twin) duplicateOf.set(e.sourceId, twin);
      else kept.push(e);
    }
  }
  return subjects.map((s) => ({ ...s, nearDuplicateOf: duplicateOf.get(s.current.sourceId) ?? null }));
}

/** What the manifest says about the training set (also in the ETL summary and metrics). */
export interface TrainingSetCounts {
  readonly subjects: number;
  /** Current examples a trainer should use: one per subject, near-duplicates left out. */
  readonly examples: number;
  readonly superseded: number;
  readonly suppressedNearDuplicates: number;
}

export function trainingSetCounts(subjects: readonly CuratedSubject[]): TrainingSetCounts {
  const suppressed = subjects.filter((s) => s.nearDuplicateOf).length;
  return {
    subjects: subjects.length,
    examples: subjects.length - suppressed,
    superseded: subjects.reduce((a, s) => a + s.superseded.length, 0),
    suppressedNearDuplicates: suppressed,
  };
}
