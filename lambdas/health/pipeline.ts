/**
 * The health ETL for one export file, without any AWS I/O: decode -> validate -> process -> record
 * state -> what to write. The Lambda handler and `pipeline etl run` both call `processExport` and
 * then write what it returns.
 *
 * Contract for callers:
 * - processed: put `trainingBody` at `trainingKey`, THEN `store.completeIngest(result.sourceId)`.
 *   If the put fails, throw (retry): the retry finds the recorded decision and returns the same
 *   key and bytes, so it is never mistaken for a duplicate.
 * - quarantined: copy the raw object to `quarantine.key`, put `quarantine.sidecarBody` at
 *   `quarantine.sidecarKey`. Terminal.
 * - duplicate: nothing to write. Terminal.
 * - failed: `disposition` says what to do (retry -> let the message return to the queue; alarm;
 *   drop). Nothing was stored (the unit of work rolled back).
 */
import { randomUUID } from 'node:crypto';
import { isTransientFault } from '../platform/faults';
import { BudgetExceededError, type ExportBudget, TOO_LARGE_FOR_BUDGET } from './budget';
import type { RawRecords } from './canonical-body';
import { type AvroExport, type AvroInput, type DecodeLimits, openExport } from './decode';
import { classifyError, type ErrorDisposition, HealthDataError } from './errors';
import {
  createProcessor,
  DEFAULT_PROCESSOR_CONFIG,
  PROCESSOR_VERSION,
  type ProcessorConfig,
  type ProcessorContext,
  type ProcessorResult,
} from './processors';
import { planQuarantine, type QuarantinePlan } from './quarantine';
import type { IngestUnit, RecordStore, UpsertCounts } from './record-store';
import { defaultSleepSpans, type SleepSpan, type SleepSpanStore } from './sleep-spans';
import { parseExportName, type SourceIdentity, sourceId } from './source';
import {
  buildTrainingExample,
  createSubjectTracker,
  nearDuplicateFingerprint,
  serializeTrainingExample,
  type TrainingExample,
  type TrainingSubject,
  trainingKey,
} from './training';
import type { HealthRecord, RecordType } from './types';
import { type CheckScores, createValidator, DEFAULT_VALIDATION, type ValidationResult } from './validate';

export type ExportStatus = 'processed' | 'quarantined' | 'duplicate' | 'failed';

export interface PipelineConfig {
  /** Minimum quality score (default 0.7). */
  readonly threshold: number;
  readonly limits: Partial<DecodeLimits>;
  readonly processor: ProcessorConfig;
  /** Whose data this is (one user per bucket/stage today). */
  readonly userId: string;
}

export const DEFAULT_PIPELINE_CONFIG: PipelineConfig = {
  threshold: DEFAULT_VALIDATION.threshold,
  limits: {},
  processor: DEFAULT_PROCESSOR_CONFIG,
  userId: 'default',
};

export interface ProcessExportInput {
  /** The object's bytes, or its body as a stream (S3 GetObject Body, fs.createReadStream). */
  readonly bytes?: Uint8Array;
  readonly stream?: AsyncIterable<Uint8Array>;
  readonly source: SourceIdentity;
  readonly store: RecordStore;
  readonly now: Date;
  readonly correlationId?: string;
  readonly config?: Partial<PipelineConfig>;
  /** The time this object may take (the handler's; budget.ts). None: no limit (CLI, tests). */
  readonly budget?: ExportBudget;
  /** The person's sleep sessions (sleep-spans.ts); default: in memory, one per record store. */
  readonly sleepSpans?: SleepSpanStore;
}

interface ExportResultBase {
  readonly sourceId: string;
  readonly recordType: RecordType | null;
  readonly recordsRead: number;
  readonly qualityScore: number | null;
  readonly checks: CheckScores | null;
  /** Why the file got its status (blocking errors, duplicate reason, failure). */
  readonly reasons: string[];
  readonly warnings: string[];
  readonly insights: Record<string, unknown> | null;
  readonly narrative?: string;
  readonly records?: UpsertCounts & { unkeyed: number };
}

interface TrainingOutput {
  readonly trainingExample: TrainingExample;
  readonly trainingKey: string;
  /** The JSONL body to write at trainingKey (identical on every attempt). */
  readonly trainingBody: string;
}
interface QuarantineOutput {
  readonly quarantine: QuarantinePlan;
}
interface Failure {
  readonly error: { name: string; message: string };
  readonly disposition: ErrorDisposition;
  /** A failure a prompt retry can fix (a dependency dropped the connection), not the data. */
  readonly transient: boolean;
}
/** The other outcomes' fields, absent: readable on any result, set only on their own status. */
type Absent<T> = { readonly [K in keyof T]?: undefined };

/** What processExport decided, a union on `status` (like IngestClaim on `state`). */
export type ProcessExportResult =
  | (ExportResultBase & { readonly status: 'processed' } & TrainingOutput &
      Absent<QuarantineOutput & Failure>)
  | (ExportResultBase & { readonly status: 'duplicate' } & Absent<
        TrainingOutput & QuarantineOutput & Failure
      >)
  | (ExportResultBase & { readonly status: 'quarantined' } & QuarantineOutput &
      Absent<TrainingOutput & Failure>)
  | (ExportResultBase & { readonly status: 'failed' } & Failure & Absent<TrainingOutput & QuarantineOutput>);

export interface Analysis {
  readonly recordType: RecordType;
  readonly readerVersion: number;
  readonly recordsRead: number;
  readonly bytesRead: number;
  readonly validation: ValidationResult;
  /** Latest appRecordFetchTimeEpochMillis of the records (0 when none). */
  readonly fetchTime: number;
  readonly unkeyed: number;
  /** What a training example of this file is about (domain, origins, local day, partial or not). */
  readonly subject: TrainingSubject;
  /** Earliest start and latest end of the records (null without any). */
  readonly timeRange: { start: number; end: number } | null;
  finishProcessing(context?: ProcessorContext): ProcessorResult;
}

/**
 * One streaming pass: every record goes to the validator and the processor; when `onRecords` is
 * given, each decoded block's records are handed over as they are read (the record store stages
 * them in its own compact form, so memory holds one decoded block at a time) and it returns how
 * many of them had no id.
 */
export async function analyseExport(
  file: AvroExport<HealthRecord>,
  options: {
    now: number;
    config?: Partial<PipelineConfig>;
    onRecords?: (
      readerVersion: number,
      records: readonly HealthRecord[],
      raw?: RawRecords,
    ) => Promise<number>;
    /** Stop with BudgetExceededError once this deadline has passed (checked between blocks). */
    budget?: ExportBudget;
  },
): Promise<Analysis> {
  const config = { ...DEFAULT_PIPELINE_CONFIG, ...options.config };
  const recordType = file.recordType;
  const validator = createValidator(recordType, { now: options.now, threshold: config.threshold });
  const processor = createProcessor(recordType, config.processor);
  let fetchTime = 0;
  let unkeyed = 0;
  const subject = createSubjectTracker(recordType);
  const budget = options.budget;
  for await (const block of file.blocks()) {
    if (budget && Date.now() > budget.deadline) throw new BudgetExceededError(budget, file.stats.recordsRead);
    for (const record of block.records) {
      validator.add(record);
      processor.add(record);
      subject.add(record);
      if (record.appRecordFetchTimeEpochMillis > fetchTime) fetchTime = record.appRecordFetchTimeEpochMillis;
    }
    if (options.onRecords) unkeyed += await options.onRecords(file.readerVersion, block.records, block.raw);
  }
  const validation = validator.finish({ bytes: file.stats.bytesRead });
  let processed: ReturnType<Analysis['finishProcessing']> | undefined;
  return {
    recordType,
    readerVersion: file.readerVersion,
    recordsRead: file.stats.recordsRead,
    bytesRead: file.stats.bytesRead,
    validation,
    fetchTime,
    unkeyed,
    subject: subject.finish(fetchTime),
    timeRange: subject.range(),
    finishProcessing(context) {
      processed ??= processor.finish(context);
      return processed;
    },
  };
}

function errorInfo(error: unknown): { name: string; message: string } {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: 'Error', message: String(error) };
}

/** Sleep sessions this far around a heart-rate export are read: a night whose session starts after the export's last sample still covers it. */
const SLEEP_MARGIN_MS = 18 * 3_600_000;

export async function processExport(input: ProcessExportInput): Promise<ProcessExportResult> {
  const config: PipelineConfig = { ...DEFAULT_PIPELINE_CONFIG, ...input.config };
  const source = input.source;
  const sid = sourceId(source);
  const data: AvroInput | undefined = input.bytes ?? input.stream;
  let recordType: RecordType | null = null;
  let recordsRead = 0;
  let opened: AvroExport<HealthRecord> | undefined;

  const quarantined = (
    reasons: string[],
    extra: { error?: { name: string; message: string }; validation?: ValidationResult } = {},
  ): ProcessExportResult => {
    const v = extra.validation;
    const plan = planQuarantine({
      source,
      recordType,
      reasons,
      error: extra.error ?? null,
      qualityScore: v ? v.score : null,
      threshold: config.threshold,
      checks: v ? v.checks : null,
      counts: v ? v.counts : null,
      warnings: v ? v.warnings : [],
      recordsRead,
      now: input.now,
      processorVersion: PROCESSOR_VERSION,
    });
    return {
      status: 'quarantined',
      sourceId: sid,
      recordType,
      recordsRead,
      qualityScore: v ? v.score : null,
      checks: v ? v.checks : null,
      reasons,
      warnings: v ? v.warnings : [],
      insights: null,
      quarantine: plan,
    };
  };

  try {
    if (!data) throw new Error('processExport needs bytes or a stream');
    // Fields no analysis reads are skipped; stored records keep them (decode.ts `analysis`).
    const file = await openExport<HealthRecord>(data, {
      key: source.key,
      limits: config.limits,
      analysis: true,
    });
    opened = file;
    recordType = file.recordType;
    const type = file.recordType;
    // Sleep sessions: kept by a sleep export, read by a heart-rate export (sleep-spans.ts).
    const sleepStore = input.sleepSpans ?? defaultSleepSpans(input.store);
    let sleepSpans: readonly SleepSpan[] = [];
    const result: ProcessExportResult = await input.store.ingest(
      { ...source, sourceId: sid, recordType: type },
      async (unit: IngestUnit) => {
        if (unit.claim.state === 'done') {
          const o = unit.claim.outcome;
          return {
            commit: false,
            value: {
              status: 'duplicate',
              sourceId: sid,
              recordType: type,
              recordsRead: 0,
              qualityScore: null,
              checks: null,
              reasons: [
                `already_ingested: this object was ${o.status} at ${o.processedAt} and completed at ${o.completedAt}; nothing new`,
              ],
              warnings: [],
              insights: null,
            },
          };
        }
        const analysis = await analyseExport(file, {
          now: input.now.getTime(),
          config,
          // Rows are staged while the file is read; a retry of a decided object does not need them.
          onRecords:
            unit.claim.state === 'new'
              ? (readerVersion, records, raw) => unit.stageRecords(readerVersion, records, raw)
              : undefined,
          budget: input.budget,
        });
        recordsRead = analysis.recordsRead;
        const v = analysis.validation;
        // Quarantined: the staged rows are never merged and the unit rolls back, so a damaged export
        // cannot change a stored record (nor make the valid re-export of the same records a duplicate).
        if (!v.passed) return { commit: false, value: quarantined(v.blocking, { validation: v }) };
        // The merge of the last staged rows is the other long step: not started past the deadline.
        if (input.budget && Date.now() > input.budget.deadline)
          throw new BudgetExceededError(input.budget, recordsRead);
        const counts: UpsertCounts =
          unit.claim.state === 'new'
            ? await unit.merge()
            : { inserted: 0, updated: 0, unchanged: 0, conflicts: 0 };

        let status: 'processed' | 'duplicate';
        let processedAt: string;
        let correlationId: string | null;
        let inserted = counts.inserted;
        let updated = counts.updated;
        let conflicts = counts.conflicts;
        const keyDate =
          analysis.fetchTime ||
          parseExportName(source.key.slice(source.key.lastIndexOf('/') + 1))?.fetchTimeMillis ||
          input.now.getTime();
        const exampleKey = trainingKey(type, source, keyDate);
        const range = analysis.timeRange;
        const context =
          type === 'HeartRateRecord' && range
            ? {
                sleepSpans: await sleepStore.overlapping(
                  config.userId,
                  range.start - SLEEP_MARGIN_MS,
                  range.end + SLEEP_MARGIN_MS,
                ),
              }
            : undefined;
        const processed = analysis.finishProcessing(context);
        const { insights, narrative, input: dataInput } = processed;
        sleepSpans = processed.sleepSpans ?? [];
        const exampleOf = (at: string, correlation: string | null, ins: number, upd: number) =>
          buildTrainingExample({
            recordType: type,
            source,
            userId: config.userId,
            correlationId: correlation,
            processedAt: at,
            qualityScore: v.score,
            recordsProcessed: recordsRead,
            recordsNew: ins,
            recordsUpdated: upd,
            warnings: v.warnings,
            insights,
            narrative,
            dataInput,
            processorVersion: PROCESSOR_VERSION,
            readerSchemaVersion: analysis.readerVersion,
            subject: analysis.subject,
          });
        let example: TrainingExample | undefined;
        if (unit.claim.state === 'new') {
          status = counts.inserted + counts.updated > 0 ? 'processed' : 'duplicate';
          processedAt = input.now.toISOString();
          correlationId = input.correlationId ?? null;
          const sub = analysis.subject;
          // Built before the decision is recorded: its fingerprint is recorded with it (near-duplicates).
          if (status === 'processed') example = exampleOf(processedAt, correlationId, inserted, updated);
          await unit.recordOutcome({
            example: example
              ? {
                  subjectKey: sub.key,
                  domain: sub.domain,
                  dataOrigins: sub.dataOrigins,
                  localDay: sub.localDay,
                  trainingKey: exampleKey,
                  fetchMs: analysis.fetchTime,
                  dayComplete: sub.dayComplete,
                  asOf: sub.asOf,
                  nearDuplicate: nearDuplicateFingerprint(example),
                }
              : undefined,
            recordType: type,
            status,
            recordsRead,
            inserted,
            updated,
            conflicts,
            correlationId,
            processedAt,
            // A duplicate has nothing to write: it is complete as soon as it is decided.
            completedAt: status === 'duplicate' ? processedAt : null,
          });
        } else {
          // A retry: the decision and its time were recorded by the first attempt.
          const o = unit.claim.outcome;
          status = o.status;
          processedAt = o.processedAt;
          correlationId = o.correlationId;
          inserted = o.inserted;
          updated = o.updated;
          conflicts = o.conflicts;
          if (status === 'processed') example = exampleOf(processedAt, correlationId, inserted, updated);
        }
        const base = {
          sourceId: sid,
          recordType: type,
          recordsRead,
          qualityScore: v.score,
          checks: v.checks,
          warnings: v.warnings,
          insights,
          records: { inserted, updated, unchanged: counts.unchanged, conflicts, unkeyed: analysis.unkeyed },
        };
        if (status === 'duplicate') {
          return {
            commit: true,
            value: {
              ...base,
              status,
              reasons: [
                `no_new_records: all ${recordsRead - analysis.unkeyed} records are already stored with the same or a newer version`,
              ],
            },
          };
        }
        if (!example) throw new Error(`no training example for processed ${sid}`);
        return {
          commit: true,
          value: {
            ...base,
            status,
            reasons: [`new_data: ${inserted} new and ${updated} updated records`],
            narrative,
            trainingExample: example,
            trainingKey: exampleKey,
            trainingBody: serializeTrainingExample(example),
          },
        };
      },
    );
    // After the unit committed (a quarantined export never gets here with spans); a retry writes
    // them again, and an older version of a session never replaces a newer one.
    if (sleepSpans.length > 0 && (result.status === 'processed' || result.status === 'duplicate'))
      await sleepStore.save(config.userId, sid, sleepSpans);
    return result;
  } catch (error) {
    if (opened) recordsRead = opened.stats.recordsRead;
    const disposition = classifyError(error);
    if (error instanceof HealthDataError) {
      return quarantined([`${error.reason}: ${error.message}`], { error: errorInfo(error) });
    }
    // With a whole invocation to itself and still out of time, it can never finish: a terminal,
    // recorded outcome at once, not a timeout on every attempt until the dead-letter queue.
    if (error instanceof BudgetExceededError && error.budget.terminal) {
      return quarantined([`${TOO_LARGE_FOR_BUDGET}: ${error.message}`], { error: errorInfo(error) });
    }
    return {
      status: 'failed',
      sourceId: sid,
      recordType,
      recordsRead,
      qualityScore: null,
      checks: null,
      reasons: [`${disposition}: ${errorInfo(error).name}: ${errorInfo(error).message}`],
      warnings: [],
      insights: null,
      error: errorInfo(error),
      disposition,
      transient: isTransientFault(error),
    };
  }
}

/** A correlation id for callers that have none (CLI runs). */
export function newCorrelationId(): string {
  return randomUUID();
}
