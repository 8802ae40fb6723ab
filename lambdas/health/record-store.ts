/**
 * Record state of the health ETL: every record keyed by (record type, metadata.id), newest
 * lastModifiedTimeEpochMillis wins, plus one ingest row per source object.
 *
 * One file = one unit of work (`ingest`): claim the source object, upsert its records in chunks,
 * record the decision, commit; or roll everything back (quarantine, error). Two implementations
 * with the same semantics: PostgreSQL (production, concurrent workers: the database decides) and
 * in-memory (tests, `etl run --memory`).
 */
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { BinaryCopyEncoder } from '../platform/pg-binary-copy';
import { readerSchema } from './schemas';
import type { SourceIdentity } from './source';
import {
  type HealthRecord,
  type HeartRateRecord,
  type RecordType,
  recordInterval,
  type SleepSessionRecord,
} from './types';
import { inPhysiologicalRange, singleValue } from './validate';

export interface StoredRecordInput {
  readonly recordType: RecordType;
  readonly metadataId: string;
  readonly dataOrigin: string;
  readonly lastModifiedMs: number;
  readonly clientRecordVersion: number;
  /** Null when the record's time is outside 1900-2200 (PostgreSQL could not store it exactly). */
  readonly startMs: number | null;
  readonly endMs: number | null;
  readonly zoneOffset: string | null;
  /** appRecordFetchTimeEpochMillis of the export this version came from. */
  readonly fetchMs: number;
  /** The measured value: glucose mg/dL, RMSSD ms, steps, kcal, sleep hours, mean bpm of the samples. */
  readonly value: number | null;
  /** How many measured values the record holds (samples of a series, stages of a session, else 1). */
  readonly valueCount: number;
  /** How many of them are outside the physiological range (validate.ts RANGES). */
  readonly outOfRange: number;
  /** Reader schema version the body is encoded with. */
  readonly readerVersion: number;
  /** The record as Avro binary under that reader schema, appRecordFetchTimeEpochMillis set to 0. */
  readonly body: Buffer;
  /** 53-bit hash of body: equal content, equal hash, whatever export it came from. */
  readonly contentHash: number;
}

export interface StoredRecord extends Omit<StoredRecordInput, 'body'> {
  readonly sourceId: string;
  /** The record as decoded, with the fetch time of the export that wrote this version. */
  readonly payload: HealthRecord;
}

export interface UpsertCounts {
  inserted: number;
  updated: number;
  /** Already known with the same or a newer version. */
  unchanged: number;
  /**
   * Same id and lastModifiedTimeEpochMillis as the stored version but different content. Each is
   * decided by VERSION_RULE and recorded; when the incoming version wins it is also `updated`.
   */
  conflicts: number;
}

/**
 * Which of two versions of a record is kept: the newer lastModifiedTimeEpochMillis; on a tie with
 * different content (a conflict), the better-founded one:
 *   1. fewer values outside the physiological range (a version with impossible values is damaged),
 *   2. more values (a series or session read later holds more samples or stages),
 *   3. the later export (appRecordFetchTimeEpochMillis: the more recent read of Health Connect),
 *   4. the higher content hash, so every worker and every replay order decides the same way.
 */
export const VERSION_RULE =
  'newest lastModified; on a tie: fewest out-of-range values, then most values, then latest export fetch time, then highest content hash';

type Versioned = Pick<
  StoredRecordInput,
  'lastModifiedMs' | 'outOfRange' | 'valueCount' | 'fetchMs' | 'contentHash'
>;

/** > 0 when a is preferred over b, 0 when they are the same content of the same version. */
export function compareVersions(a: Versioned, b: Versioned): number {
  if (a.lastModifiedMs !== b.lastModifiedMs) return a.lastModifiedMs - b.lastModifiedMs;
  if (a.contentHash === b.contentHash) return 0;
  if (a.outOfRange !== b.outOfRange) return b.outOfRange - a.outOfRange;
  if (a.valueCount !== b.valueCount) return a.valueCount - b.valueCount;
  if (a.fetchMs !== b.fetchMs) return a.fetchMs - b.fetchMs;
  return a.contentHash - b.contentHash;
}

export interface RecordConflict {
  readonly recordType: RecordType;
  readonly metadataId: string;
  readonly lastModifiedMs: number;
  readonly storedHash: number;
  readonly incomingHash: number;
  readonly storedSourceId: string;
  readonly incomingSourceId: string;
  readonly kept: 'stored' | 'incoming';
  readonly rule: string;
}

export type IngestStatus = 'processed' | 'duplicate';

/** A written training example and what it is about (see training.ts `trainingSubject`). */
export interface TrainingEntry {
  readonly subjectKey: string;
  readonly domain: string;
  readonly dataOrigins: readonly string[];
  /** YYYY-MM-DD, local day of the data. */
  readonly localDay: string;
  readonly trainingKey: string;
  readonly fetchMs: number;
  readonly dayComplete: boolean;
  readonly asOf: string | null;
  /** What near-duplicate suppression compares (training.ts `NearDuplicateFingerprint`). */
  readonly nearDuplicate?: {
    readonly template: string;
    readonly numbers: readonly number[];
    readonly records: number;
  };
}

export interface ManifestSubject {
  readonly subjectKey: string;
  readonly current: TrainingEntry & { readonly sourceId: string };
  /** Older versions of the same subject, newest first. */
  readonly superseded: readonly (TrainingEntry & { readonly sourceId: string })[];
}

/** Groups entries by subject: the latest fetch time (then highest source id) is current. */
export function manifestOf(entries: readonly (TrainingEntry & { sourceId: string })[]): ManifestSubject[] {
  const bySubject = new Map<string, (TrainingEntry & { sourceId: string })[]>();
  for (const e of entries) {
    const list = bySubject.get(e.subjectKey) ?? [];
    list.push(e);
    bySubject.set(e.subjectKey, list);
  }
  return [...bySubject.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([subjectKey, list]) => {
      const sorted = [...list].sort(
        (a, b) => b.fetchMs - a.fetchMs || (a.sourceId < b.sourceId ? 1 : a.sourceId > b.sourceId ? -1 : 0),
      );
      return {
        subjectKey,
        current: sorted[0] as TrainingEntry & { sourceId: string },
        superseded: sorted.slice(1),
      };
    });
}

export interface IngestOutcome {
  readonly sourceId: string;
  readonly recordType: RecordType;
  readonly status: IngestStatus;
  readonly recordsRead: number;
  readonly inserted: number;
  readonly updated: number;
  readonly conflicts: number;
  readonly correlationId: string | null;
  /** The training example a processed export writes (recorded with the decision). */
  readonly example?: TrainingEntry;
  /** ISO time of the attempt that decided. */
  readonly processedAt: string;
  /** ISO time all outputs were confirmed written; null until then. */
  readonly completedAt: string | null;
}

/**
 * What the store knew about the source object when the unit started:
 * - new: first time; this unit decides.
 * - pending: decided earlier (outcome), outputs not confirmed: a retry, reproduce the outcome.
 * - done: decided and completed earlier: nothing left to do.
 */
export type IngestClaim =
  | { readonly state: 'new' }
  | { readonly state: 'pending'; readonly outcome: IngestOutcome }
  | { readonly state: 'done'; readonly outcome: IngestOutcome };

export interface IngestUnit {
  readonly claim: IngestClaim;
  /**
   * Hands rows over while the file is still being read. They change nothing until `merge()`: a
   * file that turns out to be quarantined is never merged, so it cannot touch stored records. The
   * PostgreSQL store streams them to the server at once (binary COPY into a session-local stage),
   * so decoding and loading overlap.
   */
  stage(rows: readonly StoredRecordInput[]): Promise<void>;
  /** Applies the staged rows: newest version wins, conflicts are decided (VERSION_RULE) and recorded. */
  merge(): Promise<UpsertCounts>;
  /** `stage` then `merge`. */
  upsert(rows: readonly StoredRecordInput[]): Promise<UpsertCounts>;
  /**
   * The decision for a `new` claim; kept only if the unit commits. `completedAt` is set when the
   * decision needs no output (a duplicate), null when outputs must be written first.
   */
  recordOutcome(outcome: Omit<IngestOutcome, 'sourceId'>): Promise<void>;
}

export interface IngestSource extends SourceIdentity {
  readonly sourceId: string;
  readonly recordType: RecordType;
}

export interface UnitResult<T> {
  readonly commit: boolean;
  readonly value: T;
}

export interface RecordStore {
  /** Runs one file's unit of work; its changes persist only when fn resolves with commit true. */
  ingest<T>(source: IngestSource, fn: (unit: IngestUnit) => Promise<UnitResult<T>>): Promise<T>;
  /** Marks the object's outputs as written: later deliveries of it are duplicates. */
  completeIngest(sourceId: string, at?: Date): Promise<void>;
  getIngest(sourceId: string): Promise<IngestOutcome | undefined>;
  getRecord(recordType: RecordType, metadataId: string): Promise<StoredRecord | undefined>;
  countRecords(recordType?: RecordType): Promise<number>;
  /** Conflicts recorded for a record (oldest first). */
  conflicts(recordType: RecordType, metadataId: string): Promise<RecordConflict[]>;
  /** Every written (completed) training example by subject: the current one and the superseded ones. */
  trainingManifest(): Promise<ManifestSubject[]>;
  close(): Promise<void>;
}

const YEAR_1900 = Date.UTC(1900, 0, 1);
const YEAR_2200 = Date.UTC(2200, 0, 1);
const storableTime = (t: number): number | null =>
  Number.isFinite(t) && t >= YEAR_1900 && t < YEAR_2200 ? t : null;
// PostgreSQL text cannot hold NUL characters.
const noNul = (s: string): string => (s.includes('\0') ? s.replaceAll('\0', '') : s);

/** 53-bit FNV-1a-style hash of bytes (two 32-bit lanes): a content fingerprint, not a MAC. */
export function hashBytes(bytes: Uint8Array): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return (h1 >>> 0) * 2_097_152 + ((h2 >>> 0) >>> 11);
}

function measured(
  recordType: RecordType,
  record: HealthRecord,
): { value: number | null; count: number; outOfRange: number } {
  if (recordType !== 'HeartRateRecord') {
    const v = singleValue(recordType, record);
    const value = {
      value: Number.isFinite(v) ? v : null,
      count: 1,
      outOfRange: inPhysiologicalRange(recordType, v) ? 0 : 1,
    };
    // A sleep session counts its stages.
    return recordType === 'SleepSessionRecord'
      ? { ...value, count: Math.max(1, (record as SleepSessionRecord).stages.length) }
      : value;
  }
  // A heart-rate record: its samples' mean, each sample counted and range-checked.
  const h = record as HeartRateRecord;
  let sum = 0;
  let bad = 0;
  for (const x of h.samples) {
    sum += x.beatsPerMinute;
    if (!inPhysiologicalRange(recordType, x.beatsPerMinute)) bad++;
  }
  const mean = h.samples.length ? sum / h.samples.length : Number.NaN;
  return { value: Number.isFinite(mean) ? mean : null, count: h.samples.length, outOfRange: bad };
}

/** Turns decoded records of one file into store rows (one reader schema per file). */
export function createRowEncoder(
  recordType: RecordType,
  readerVersion?: number,
): (record: HealthRecord) => StoredRecordInput | undefined {
  const reader = readerSchema(recordType, readerVersion);
  const type = reader.type;
  return (record) => {
    const id = record.metadata.id;
    if (typeof id !== 'string' || noNul(id) === '') return undefined;
    const { start, end, zone } = recordInterval(recordType, record);
    const fetchMs = record.appRecordFetchTimeEpochMillis;
    // The fetch time differs in every export of the same record: left out of the content.
    const mutable = record as { appRecordFetchTimeEpochMillis: number };
    mutable.appRecordFetchTimeEpochMillis = 0;
    let body: Buffer;
    try {
      body = type.toBuffer(record);
    } finally {
      mutable.appRecordFetchTimeEpochMillis = fetchMs;
    }
    const m = measured(recordType, record);
    return {
      recordType,
      metadataId: noNul(id),
      dataOrigin: noNul(record.metadata.dataOriginPackageName ?? ''),
      lastModifiedMs: record.metadata.lastModifiedTimeEpochMillis,
      clientRecordVersion: record.metadata.clientRecordVersion,
      startMs: storableTime(start),
      endMs: storableTime(end),
      zoneOffset: zone === null ? null : noNul(zone),
      fetchMs,
      value: m.value,
      valueCount: m.count,
      outOfRange: m.outOfRange,
      readerVersion: reader.version,
      body,
      contentHash: hashBytes(body),
    };
  };
}

/** The row for a decoded record (latest reader schema); undefined for records without an id. */
export function toStoredRecord(recordType: RecordType, record: HealthRecord): StoredRecordInput | undefined {
  return createRowEncoder(recordType)(record);
}

/** The decoded record a row holds, with its fetch time restored. */
export function decodeBody(
  row: Pick<StoredRecordInput, 'recordType' | 'readerVersion' | 'body' | 'fetchMs'>,
): HealthRecord {
  const record = readerSchema(row.recordType, row.readerVersion).type.fromBuffer(row.body) as HealthRecord;
  (record as { appRecordFetchTimeEpochMillis: number }).appRecordFetchTimeEpochMillis = row.fetchMs;
  return record;
}

/** Order of (record type, metadata id), as the merge expects its staged rows. */
export const byKey = (a: StoredRecordInput, b: StoredRecordInput): number =>
  a.recordType < b.recordType
    ? -1
    : a.recordType > b.recordType
      ? 1
      : a.metadataId < b.metadataId
        ? -1
        : a.metadataId > b.metadataId
          ? 1
          : 0;

/** Within one batch the same id may appear twice: keep the preferred version (VERSION_RULE). */
export function newestPerId(rows: readonly StoredRecordInput[]): StoredRecordInput[] {
  const byId = new Map<string, StoredRecordInput>();
  for (const r of rows) {
    const key = `${r.recordType}\0${r.metadataId}`;
    const prev = byId.get(key);
    if (!prev || compareVersions(r, prev) >= 0) byId.set(key, r);
  }
  return [...byId.values()];
}

// ---------------------------------------------------------------------------------------------
// In memory

interface MemoryRow extends StoredRecordInput {
  readonly sourceId: string;
}

function toStored(row: MemoryRow): StoredRecord {
  const { body: _body, ...rest } = row;
  return { ...rest, payload: decodeBody(row) };
}

/** Single-process store; units run one at a time, which gives the same answers as PostgreSQL. */
export class MemoryRecordStore implements RecordStore {
  private readonly records = new Map<string, MemoryRow>();
  private readonly ingests = new Map<string, IngestOutcome>();
  private readonly conflictLog: RecordConflict[] = [];
  private readonly conflictKeys = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  ingest<T>(source: IngestSource, fn: (unit: IngestUnit) => Promise<UnitResult<T>>): Promise<T> {
    const run = async (): Promise<T> => {
      const merged = new Map<string, MemoryRow>();
      const newConflicts: RecordConflict[] = [];
      let staged: StoredRecordInput[] = [];
      let outcome: IngestOutcome | undefined;
      const existing = this.ingests.get(source.sourceId);
      const claim: IngestClaim = !existing
        ? { state: 'new' }
        : existing.completedAt
          ? { state: 'done', outcome: existing }
          : { state: 'pending', outcome: existing };
      const merge = async (): Promise<UpsertCounts> => {
        const counts: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0, conflicts: 0 };
        const unique = newestPerId(staged);
        counts.unchanged += staged.length - unique.length;
        staged = [];
        for (const row of unique) {
          const key = `${row.recordType}\0${row.metadataId}`;
          const current = merged.get(key) ?? this.records.get(key);
          if (
            current &&
            current.lastModifiedMs === row.lastModifiedMs &&
            current.contentHash !== row.contentHash
          ) {
            counts.conflicts++;
            newConflicts.push({
              recordType: row.recordType,
              metadataId: row.metadataId,
              lastModifiedMs: row.lastModifiedMs,
              storedHash: current.contentHash,
              incomingHash: row.contentHash,
              storedSourceId: current.sourceId,
              incomingSourceId: source.sourceId,
              kept: compareVersions(row, current) > 0 ? 'incoming' : 'stored',
              rule: VERSION_RULE,
            });
          }
          if (!current) counts.inserted++;
          else if (compareVersions(row, current) > 0) counts.updated++;
          else {
            counts.unchanged++;
            continue;
          }
          merged.set(key, { ...row, sourceId: source.sourceId });
        }
        return counts;
      };
      const unit: IngestUnit = {
        claim,
        stage: async (rows) => {
          for (const r of rows) staged.push(r);
        },
        merge,
        upsert: async (rows) => {
          for (const r of rows) staged.push(r);
          return merge();
        },
        recordOutcome: async (o) => {
          if (claim.state !== 'new') throw new Error(`outcome of ${source.sourceId} was already recorded`);
          outcome = { ...o, sourceId: source.sourceId };
        },
      };
      const result = await fn(unit);
      if (result.commit) {
        for (const [k, v] of merged) this.records.set(k, v);
        for (const c of newConflicts) {
          const key = `${c.recordType}\0${c.metadataId}\0${c.storedHash}\0${c.incomingHash}`;
          if (this.conflictKeys.has(key)) continue;
          this.conflictKeys.add(key);
          this.conflictLog.push(c);
        }
        if (outcome) this.ingests.set(source.sourceId, outcome);
      }
      return result.value;
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  async completeIngest(sourceId: string, at = new Date()): Promise<void> {
    const o = this.ingests.get(sourceId);
    if (o && !o.completedAt) this.ingests.set(sourceId, { ...o, completedAt: at.toISOString() });
  }

  async getIngest(sourceId: string): Promise<IngestOutcome | undefined> {
    return this.ingests.get(sourceId);
  }

  async getRecord(recordType: RecordType, metadataId: string): Promise<StoredRecord | undefined> {
    const row = this.records.get(`${recordType}\0${metadataId}`);
    return row ? toStored(row) : undefined;
  }

  async countRecords(recordType?: RecordType): Promise<number> {
    if (!recordType) return this.records.size;
    let n = 0;
    for (const r of this.records.values()) if (r.recordType === recordType) n++;
    return n;
  }

  async conflicts(recordType: RecordType, metadataId: string): Promise<RecordConflict[]> {
    return this.conflictLog.filter((c) => c.recordType === recordType && c.metadataId === metadataId);
  }

  async trainingManifest(): Promise<ManifestSubject[]> {
    const entries: (TrainingEntry & { sourceId: string })[] = [];
    for (const o of this.ingests.values()) {
      if (o.example && o.completedAt) entries.push({ ...o.example, sourceId: o.sourceId });
    }
    return manifestOf(entries);
  }

  async close(): Promise<void> {}
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const STAGE_COLUMNS = [
  'record_type',
  'metadata_id',
  'data_origin',
  'last_modified_ms',
  'client_record_version',
  'start_time',
  'end_time',
  'zone_offset',
  'fetch_ms',
  'value',
  'value_count',
  'out_of_range',
  'content_hash',
  'reader_version',
  'body',
] as const;

/** Session-local, gone at the end of the transaction (commit or rollback). */
export const CREATE_STAGE_SQL = `
CREATE TEMP TABLE IF NOT EXISTS health_records_stage (
  record_type text COLLATE "C", metadata_id text COLLATE "C", data_origin text COLLATE "C", last_modified_ms bigint,
  client_record_version bigint, start_time timestamptz, end_time timestamptz, zone_offset text,
  fetch_ms bigint, value double precision, value_count integer, out_of_range integer,
  content_hash bigint, reader_version smallint, body bytea
) ON COMMIT DROP`;

const UNIQUE_VIOLATION = '23505';

const COPY_SQL = `COPY pg_temp.health_records_stage (${STAGE_COLUMNS.join(', ')}) FROM STDIN (FORMAT binary)`;

/** The VERSION_RULE tie-break as a row comparison: (a) preferred over (b). */
const preferred = (a: string, b: string) =>
  `(-${a}.out_of_range, ${a}.value_count, ${a}.fetch_ms, ${a}.content_hash) > (-${b}.out_of_range, ${b}.value_count, ${b}.fetch_ms, ${b}.content_hash)`;

const RECORD_COLUMNS = `record_type, metadata_id, data_origin, last_modified_ms, client_record_version, start_time,
    end_time, zone_offset, fetch_ms, value, value_count, out_of_range, content_hash, reader_version, body, source_id`;

/** The stored version is replaced by the incoming one (r = stored, x = incoming). */
const replaces = (x: string, r: string) =>
  `(${x}.last_modified_ms > ${r}.last_modified_ms
     OR (${x}.last_modified_ms = ${r}.last_modified_ms AND ${x}.content_hash <> ${r}.content_hash AND ${preferred(x, r)}))`;

const UPSERT_SET = `
    data_origin = excluded.data_origin,
    last_modified_ms = excluded.last_modified_ms,
    client_record_version = excluded.client_record_version,
    start_time = excluded.start_time,
    end_time = excluded.end_time,
    zone_offset = excluded.zone_offset,
    fetch_ms = excluded.fetch_ms,
    value = excluded.value,
    value_count = excluded.value_count,
    out_of_range = excluded.out_of_range,
    content_hash = excluded.content_hash,
    reader_version = excluded.reader_version,
    body = excluded.body,
    payload = NULL,
    source_id = excluded.source_id,
    updated_at = now()`;

/** The preferred version per id within the stage (the same id twice in one file). */
const STAGED_SQL = `
  SELECT DISTINCT ON (record_type, metadata_id) *
  FROM pg_temp.health_records_stage
  ORDER BY record_type, metadata_id, last_modified_ms DESC, out_of_range ASC, value_count DESC,
           fetch_ms DESC, content_hash DESC`;

/**
 * One statement merges a staged chunk, touching only what changes. The client stages one version
 * per id, sorted by id (`flush`), so the statement sorts nothing; the stage is read in that order.
 * - `j`: each staged record beside its stored version (one index probe each, no lock).
 * - records not stored yet: a plain INSERT, in id order. No speculative insertion: it made a first
 *   load of a million readings about twice as slow. A concurrent worker that inserted one of them
 *   first makes this statement fail with unique_violation; the caller then rolls back to its
 *   savepoint and runs CONTENDED_MERGE_SQL, so the database still decides.
 * - records whose stored version is older (or loses the VERSION_RULE tie-break):
 *   INSERT ... ON CONFLICT DO UPDATE, with the rule re-checked against the locked row.
 * - records already stored with the same or a newer version: nothing (no row lock, no write). A
 *   re-sync of known records costs one index probe per record.
 * - same version, different content: a conflict, recorded in health_record_conflicts.
 */
export const MERGE_SQL = `
WITH j AS MATERIALIZED (
  SELECT s.*, r.metadata_id IS NULL AS is_new,
         r.content_hash AS stored_hash, r.source_id AS stored_source_id,
         r.metadata_id IS NOT NULL AND ${replaces('s', 'r')} AS wins,
         r.metadata_id IS NOT NULL AND r.last_modified_ms = s.last_modified_ms AND r.content_hash <> s.content_hash AS conflict
  FROM pg_temp.health_records_stage s
  LEFT JOIN health_records r ON r.record_type = s.record_type AND r.metadata_id = s.metadata_id
),
logged AS (
  INSERT INTO health_record_conflicts (record_type, metadata_id, last_modified_ms, stored_hash, incoming_hash,
    stored_source_id, incoming_source_id, kept, rule)
  SELECT record_type, metadata_id, last_modified_ms, stored_hash, content_hash, stored_source_id, $1,
         CASE WHEN wins THEN 'incoming' ELSE 'stored' END, $2
  FROM j WHERE conflict
  ON CONFLICT DO NOTHING
  RETURNING 1
),
ins AS (
  INSERT INTO health_records (${RECORD_COLUMNS})
  SELECT record_type, metadata_id, data_origin, last_modified_ms, client_record_version, start_time, end_time,
         zone_offset, fetch_ms, value, value_count, out_of_range, content_hash, reader_version, body, $1
  FROM j WHERE is_new
  RETURNING 1
),
up AS (
  INSERT INTO health_records AS r (${RECORD_COLUMNS})
  SELECT record_type, metadata_id, data_origin, last_modified_ms, client_record_version, start_time, end_time,
         zone_offset, fetch_ms, value, value_count, out_of_range, content_hash, reader_version, body, $1
  FROM j WHERE wins
  ON CONFLICT (record_type, metadata_id) DO UPDATE SET ${UPSERT_SET}
  WHERE ${replaces('excluded', 'r')}
  RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT count(*) FROM j)::int AS staged,
       ((SELECT count(*) FROM ins) + (SELECT count(*) FROM up WHERE inserted))::int AS inserted,
       (SELECT count(*) FROM up WHERE NOT inserted)::int AS updated,
       (SELECT count(*) FROM j WHERE conflict)::int AS conflicts,
       (SELECT count(*) FROM logged)::int AS logged`;

/**
 * The merge when another worker inserted some of the same new records at the same time: every
 * staged record goes through INSERT ... ON CONFLICT (slower, never fails on a duplicate key).
 */
export const CONTENDED_MERGE_SQL = `
WITH s AS MATERIALIZED (${STAGED_SQL}),
c AS MATERIALIZED (
  SELECT s.record_type, s.metadata_id, s.last_modified_ms, r.content_hash AS stored_hash,
         s.content_hash AS incoming_hash, r.source_id AS stored_source_id, ${preferred('s', 'r')} AS incoming_wins
  FROM s JOIN health_records r ON r.record_type = s.record_type AND r.metadata_id = s.metadata_id
  WHERE r.last_modified_ms = s.last_modified_ms AND r.content_hash <> s.content_hash
),
logged AS (
  INSERT INTO health_record_conflicts (record_type, metadata_id, last_modified_ms, stored_hash, incoming_hash,
    stored_source_id, incoming_source_id, kept, rule)
  SELECT record_type, metadata_id, last_modified_ms, stored_hash, incoming_hash, stored_source_id, $1,
         CASE WHEN incoming_wins THEN 'incoming' ELSE 'stored' END, $2
  FROM c
  ON CONFLICT DO NOTHING
  RETURNING 1
),
up AS (
  INSERT INTO health_records AS r (${RECORD_COLUMNS})
  SELECT record_type, metadata_id, data_origin, last_modified_ms, client_record_version, start_time, end_time,
         zone_offset, fetch_ms, value, value_count, out_of_range, content_hash, reader_version, body, $1
  FROM s
  ORDER BY record_type, metadata_id
  ON CONFLICT (record_type, metadata_id) DO UPDATE SET ${UPSERT_SET}
  WHERE ${replaces('excluded', 'r')}
  RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT count(*) FROM s)::int AS staged,
       (SELECT count(*) FROM up WHERE inserted)::int AS inserted,
       (SELECT count(*) FROM up WHERE NOT inserted)::int AS updated,
       (SELECT count(*) FROM c)::int AS conflicts,
       (SELECT count(*) FROM logged)::int AS logged`;

/**
 * Bytes a row's fields other than id, origin and body may take: field count and lengths, numbers,
 * and the room `text` reserves for the record type and the zone (3 bytes per character).
 */
const ROW_FIXED_BYTES = 2 + 15 * 4 + 9 * 8 + 2 * 4 + 2 + 3 * 32 + 3 * 16;

function encodeRow(enc: BinaryCopyEncoder, r: StoredRecordInput): void {
  enc
    .row(STAGE_COLUMNS.length)
    .text(r.recordType)
    // Rows built by toStoredRecord are clean already; this guards rows built elsewhere.
    .text(noNul(r.metadataId))
    .text(noNul(r.dataOrigin))
    .int8(r.lastModifiedMs)
    .int8(r.clientRecordVersion)
    .timestamptz(r.startMs)
    .timestamptz(r.endMs)
    .text(r.zoneOffset === null ? null : noNul(r.zoneOffset))
    .int8(r.fetchMs)
    .float8(r.value)
    .int4(r.valueCount)
    .int4(r.outOfRange)
    .int8(r.contentHash)
    .int2(r.readerVersion)
    .bytea(r.body);
}

interface IngestRow {
  source_id: string;
  record_type: RecordType;
  status: IngestStatus | 'pending';
  records_read: number;
  records_inserted: number;
  records_updated: number;
  records_conflicts: number;
  correlation_id: string | null;
  processed_at: Date;
  completed_at: Date | null;
}

function toOutcome(row: IngestRow): IngestOutcome {
  return {
    sourceId: row.source_id,
    recordType: row.record_type,
    status: row.status === 'pending' ? 'processed' : row.status,
    recordsRead: row.records_read,
    inserted: row.records_inserted,
    updated: row.records_updated,
    conflicts: row.records_conflicts,
    correlationId: row.correlation_id,
    processedAt: row.processed_at.toISOString(),
    completedAt: row.completed_at ? row.completed_at.toISOString() : null,
  };
}

export interface PostgresRecordStoreOptions {
  /**
   * Rows per staged chunk (default 25,000): each full chunk is copied and merged while the next
   * one is being decoded, so the client and the server work at the same time. Small enough that
   * the stage of a chunk (~7 MB for glucose) fits the server's default temp_buffers (8 MB) and
   * that the wait for the last chunk's merge is short; large enough that per-statement costs
   * do not count.
   */
  readonly stageChunkRows?: number;
  /** How long a unit waits for another worker holding the same records or object (default 30 s). */
  readonly lockTimeoutMs?: number;
  /** work_mem of the merge (sorting a million staged rows in memory instead of on disk). */
  readonly mergeWorkMem?: string;
}

/** One COPY of a finished chunk into the stage, written in slices with back-pressure. */
async function copyIntoStage(client: pg.PoolClient, data: Buffer, sliceBytes: number): Promise<void> {
  const stream = client.query(copyFrom(COPY_SQL));
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('finish', resolve);
    let offset = 0;
    const pump = () => {
      while (offset < data.length) {
        const end = Math.min(data.length, offset + sliceBytes);
        const more = stream.write(data.subarray(offset, end));
        offset = end;
        if (!more) {
          stream.once('drain', pump);
          return;
        }
      }
      stream.end();
    };
    pump();
  });
}

interface MergeRow {
  staged: number;
  inserted: number;
  updated: number;
  conflicts: number;
}

export class PostgresRecordStore implements RecordStore {
  /** Chunks merged by CONTENDED_MERGE_SQL because another worker inserted the same new records. */
  contendedMerges = 0;
  private readonly stageChunkRows: number;
  private readonly lockTimeoutMs: number;
  private readonly mergeWorkMem: string;

  constructor(
    private readonly pool: pg.Pool,
    options: PostgresRecordStoreOptions = {},
  ) {
    this.stageChunkRows = Math.max(1, options.stageChunkRows ?? 25_000);
    this.lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.mergeWorkMem = options.mergeWorkMem ?? '128MB';
    if (!/^\d+(kB|MB|GB)$/.test(this.mergeWorkMem)) throw new Error(`invalid work_mem ${this.mergeWorkMem}`);
  }

  async ingest<T>(source: IngestSource, fn: (unit: IngestUnit) => Promise<UnitResult<T>>): Promise<T> {
    const client = await this.pool.connect();
    let began = false;
    try {
      await client.query('BEGIN');
      began = true;
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(this.lockTimeoutMs))}`);
      // Claim the object. A concurrent unit on the same object waits here until the first one
      // commits (then sees its row) or rolls back (then claims it itself).
      const inserted = await client.query(
        `INSERT INTO health_ingests (source_id, bucket, object_key, version_id, etag, record_type, status, processed_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', now())
         ON CONFLICT (source_id) DO NOTHING RETURNING source_id`,
        [
          source.sourceId,
          source.bucket,
          source.key,
          source.versionId ?? null,
          source.etag ?? null,
          source.recordType,
        ],
      );
      let claim: IngestClaim = { state: 'new' };
      if (inserted.rowCount === 0) {
        const { rows } = await client.query<IngestRow>('SELECT * FROM health_ingests WHERE source_id = $1', [
          source.sourceId,
        ]);
        const row = rows[0];
        if (!row) throw new Error(`ingest row ${source.sourceId} vanished`);
        claim = row.completed_at
          ? { state: 'done', outcome: toOutcome(row) }
          : { state: 'pending', outcome: toOutcome(row) };
      }
      let recorded = false;
      // Staged rows are encoded into one binary COPY chunk; a full chunk is copied into the
      // session's stage table and merged without waiting, and decoding goes on meanwhile. The
      // next chunk waits only for the previous merge (the stage table is reused). Everything is
      // inside the unit's transaction: a file that is then quarantined rolls all of it back.
      let pending: StoredRecordInput[] = [];
      let inFlight: Promise<void> | undefined;
      let stageReady = false;
      const totals: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0, conflicts: 0 };
      const copyAndMerge = async (data: Buffer) => {
        await copyIntoStage(client, data, 1 << 20);
        const args = [source.sourceId, VERSION_RULE];
        await client.query('SAVEPOINT health_merge');
        let rows: MergeRow[];
        try {
          ({ rows } = await client.query<MergeRow>(MERGE_SQL, args));
        } catch (error) {
          // Another worker inserted some of the same new records first (see MERGE_SQL).
          if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
          await client.query('ROLLBACK TO SAVEPOINT health_merge');
          this.contendedMerges++;
          ({ rows } = await client.query<MergeRow>(CONTENDED_MERGE_SQL, args));
        }
        await client.query('RELEASE SAVEPOINT health_merge');
        await client.query('TRUNCATE pg_temp.health_records_stage');
        const r = rows[0];
        if (!r) throw new Error('merge returned no counts');
        totals.inserted += r.inserted;
        totals.updated += r.updated;
        totals.unchanged += r.staged - r.inserted - r.updated;
        totals.conflicts += r.conflicts;
      };
      const flush = async () => {
        if (pending.length === 0) return;
        // One version per id and sorted by id: the merge needs no sort of its own, and two
        // workers writing the same records take their row locks in the same order.
        const unique = newestPerId(pending).sort(byKey);
        totals.unchanged += pending.length - unique.length;
        pending = [];
        // Sized up front (fixed fields, ids, bodies): no growing and copying of a large buffer.
        let size = 64;
        for (const r of unique)
          size += ROW_FIXED_BYTES + 3 * (r.metadataId.length + r.dataOrigin.length) + r.body.length;
        const enc = new BinaryCopyEncoder(size);
        for (const r of unique) encodeRow(enc, r);
        const data = enc.finish();
        if (inFlight) await inFlight;
        if (!stageReady) {
          await client.query(CREATE_STAGE_SQL);
          await client.query(`SET LOCAL work_mem = '${this.mergeWorkMem}'`);
          // The merge reads one index entry per staged record. Without statistics on the fresh
          // stage (and with stale ones on a table a large export is still filling) the planner
          // chose hash or merge joins that scan every stored record once per chunk: a re-sync of
          // a million known readings took longer than loading them.
          await client.query('SET LOCAL enable_hashjoin = off');
          await client.query('SET LOCAL enable_mergejoin = off');
          stageReady = true;
        }
        const started = copyAndMerge(data);
        // Observed here so a failure is never unhandled; it is rethrown by the next await of it.
        started.catch(() => undefined);
        inFlight = started;
      };
      const stage = async (rows: readonly StoredRecordInput[]) => {
        for (const r of rows) pending.push(r);
        if (pending.length >= this.stageChunkRows) await flush();
      };
      const merge = async (): Promise<UpsertCounts> => {
        await flush();
        if (inFlight) {
          const last = inFlight;
          inFlight = undefined;
          await last;
        }
        const out = { ...totals };
        totals.inserted = 0;
        totals.updated = 0;
        totals.unchanged = 0;
        totals.conflicts = 0;
        return out;
      };
      const unit: IngestUnit = {
        claim,
        stage,
        merge,
        upsert: async (rows) => {
          await stage(rows);
          return merge();
        },
        recordOutcome: async (o) => {
          if (claim.state !== 'new') throw new Error(`outcome of ${source.sourceId} was already recorded`);
          await client.query(
            `UPDATE health_ingests SET record_type = $2, status = $3, records_read = $4, records_inserted = $5,
               records_updated = $6, correlation_id = $7, processed_at = $8, completed_at = $9, records_conflicts = $10
             WHERE source_id = $1`,
            [
              source.sourceId,
              o.recordType,
              o.status,
              o.recordsRead,
              o.inserted,
              o.updated,
              o.correlationId,
              o.processedAt,
              o.completedAt,
              o.conflicts,
            ],
          );
          if (o.example) {
            const e = o.example;
            await client.query(
              `INSERT INTO health_training_examples (source_id, subject_key, domain, data_origins, local_day,
                 training_key, fetch_ms, day_complete, as_of, dedup_template, dedup_numbers, records_processed)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
              [
                source.sourceId,
                e.subjectKey,
                e.domain,
                e.dataOrigins,
                e.localDay,
                e.trainingKey,
                e.fetchMs,
                e.dayComplete,
                e.asOf,
                e.nearDuplicate?.template ?? null,
                e.nearDuplicate?.numbers ?? null,
                e.nearDuplicate?.records ?? null,
              ],
            );
          }
          recorded = true;
        },
      };
      const result = await fn(unit);
      if (result.commit && (claim.state !== 'new' || recorded)) await client.query('COMMIT');
      else await client.query('ROLLBACK');
      began = false;
      return result.value;
    } catch (error) {
      if (began) await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async completeIngest(sourceId: string, at = new Date()): Promise<void> {
    await this.pool.query(
      'UPDATE health_ingests SET completed_at = $2 WHERE source_id = $1 AND completed_at IS NULL',
      [sourceId, at],
    );
  }

  async getIngest(sourceId: string): Promise<IngestOutcome | undefined> {
    const { rows } = await this.pool.query<IngestRow>(
      "SELECT * FROM health_ingests WHERE source_id = $1 AND status <> 'pending'",
      [sourceId],
    );
    return rows[0] ? toOutcome(rows[0]) : undefined;
  }

  async getRecord(recordType: RecordType, metadataId: string): Promise<StoredRecord | undefined> {
    const { rows } = await this.pool.query<{
      record_type: RecordType;
      metadata_id: string;
      data_origin: string;
      last_modified_ms: string;
      client_record_version: string;
      start_time: Date | null;
      end_time: Date | null;
      zone_offset: string | null;
      fetch_ms: string;
      value: number | null;
      value_count: number;
      out_of_range: number;
      content_hash: string;
      reader_version: number | null;
      body: Buffer | null;
      payload: HealthRecord | null;
      source_id: string;
    }>('SELECT * FROM health_records WHERE record_type = $1 AND metadata_id = $2', [recordType, metadataId]);
    const r = rows[0];
    if (!r) return undefined;
    const base = {
      recordType: r.record_type,
      metadataId: r.metadata_id,
      dataOrigin: r.data_origin,
      lastModifiedMs: Number(r.last_modified_ms),
      clientRecordVersion: Number(r.client_record_version),
      startMs: r.start_time ? r.start_time.getTime() : null,
      endMs: r.end_time ? r.end_time.getTime() : null,
      zoneOffset: r.zone_offset,
      fetchMs: Number(r.fetch_ms),
      value: r.value,
      valueCount: r.value_count,
      outOfRange: r.out_of_range,
      readerVersion: r.reader_version ?? 0,
      contentHash: Number(r.content_hash),
      sourceId: r.source_id,
    };
    const payload =
      r.body && r.reader_version !== null
        ? decodeBody({ ...base, readerVersion: r.reader_version, body: r.body })
        : (r.payload as HealthRecord);
    return { ...base, payload };
  }

  async countRecords(recordType?: RecordType): Promise<number> {
    const { rows } = recordType
      ? await this.pool.query<{ n: string }>(
          'SELECT count(*) AS n FROM health_records WHERE record_type = $1',
          [recordType],
        )
      : await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM health_records');
    return Number(rows[0]?.n ?? 0);
  }

  async conflicts(recordType: RecordType, metadataId: string): Promise<RecordConflict[]> {
    const { rows } = await this.pool.query<{
      record_type: RecordType;
      metadata_id: string;
      last_modified_ms: string;
      stored_hash: string;
      incoming_hash: string;
      stored_source_id: string;
      incoming_source_id: string;
      kept: 'stored' | 'incoming';
      rule: string;
    }>('SELECT * FROM health_record_conflicts WHERE record_type = $1 AND metadata_id = $2 ORDER BY id', [
      recordType,
      metadataId,
    ]);
    return rows.map((r) => ({
      recordType: r.record_type,
      metadataId: r.metadata_id,
      lastModifiedMs: Number(r.last_modified_ms),
      storedHash: Number(r.stored_hash),
      incomingHash: Number(r.incoming_hash),
      storedSourceId: r.stored_source_id,
      incomingSourceId: r.incoming_source_id,
      kept: r.kept,
      rule: r.rule,
    }));
  }

  async trainingManifest(): Promise<ManifestSubject[]> {
    const { rows } = await this.pool.query<{
      source_id: string;
      subject_key: string;
      domain: string;
      data_origins: string[];
      local_day: string;
      training_key: string;
      fetch_ms: string;
      day_complete: boolean;
      as_of: string | null;
      dedup_template: string | null;
      dedup_numbers: number[] | null;
      records_processed: number | null;
    }>(
      `SELECT e.source_id, e.subject_key, e.domain, e.data_origins, to_char(e.local_day, 'YYYY-MM-DD') AS local_day,
              e.training_key, e.fetch_ms, e.day_complete, e.as_of, e.dedup_template, e.dedup_numbers, e.records_processed
       FROM health_training_examples e JOIN health_ingests i USING (source_id)
       WHERE i.completed_at IS NOT NULL`,
    );
    return manifestOf(
      rows.map((r) => ({
        sourceId: r.source_id,
        subjectKey: r.subject_key,
        domain: r.domain,
        dataOrigins: r.data_origins,
        localDay: r.local_day,
        trainingKey: r.training_key,
        fetchMs: Number(r.fetch_ms),
        dayComplete: r.day_complete,
        asOf: r.as_of,
        ...(r.dedup_template !== null && r.dedup_numbers !== null && r.records_processed !== null
          ? {
              nearDuplicate: {
                template: r.dedup_template,
                numbers: r.dedup_numbers.map(Number),
                records: r.records_processed,
              },
            }
          : {}),
      })),
    );
  }

  /** The pool belongs to the caller (one per container); closing the store does not end it. */
  async close(): Promise<void> {}
}
