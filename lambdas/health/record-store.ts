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
import { newSplices, type RawRecords } from './canonical-body';
import {
  type BlockMerge,
  type BlockRecord,
  blockRecords,
  bucketOf,
  findInBlock,
  hashBytes,
  type IncomingBucket,
  IncomingRecords,
  idLeadsBody,
  incomingIds,
  type LegacyVersion,
  mergeBlock,
} from './record-blocks';
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
   * stores hold them as compact record bytes until then (record-blocks.ts `IncomingRecords`).
   */
  stage(rows: readonly StoredRecordInput[]): Promise<void>;
  /**
   * `stage` for decoded records of the source's type (the pipeline's path): each record is encoded
   * once, straight into the unit's staging arena. Returns how many records had no id (not staged).
   */
  stageRecords(readerVersion: number, records: readonly HealthRecord[], raw?: RawRecords): Promise<number>;
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

export { hashBytes };

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

/** The id a record is stored under; undefined for a record without one (not stored). */
export function storedId(record: HealthRecord): string | undefined {
  const id = record.metadata.id;
  if (typeof id !== 'string') return undefined;
  const clean = noNul(id);
  return clean === '' ? undefined : clean;
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

/** The columns of a stored record that are read from its body (the block keeps only the decision fields). */
function describeStored(
  recordType: RecordType,
  b: BlockRecord,
): Omit<StoredRecord, 'sourceId' | 'readerVersion' | 'contentHash' | 'metadataId' | 'recordType'> {
  const payload = decodeBody({
    recordType,
    readerVersion: b.readerVersion,
    body: b.body,
    fetchMs: b.fetchMs,
  });
  const { start, end, zone } = recordInterval(recordType, payload);
  const m = measured(recordType, payload);
  return {
    dataOrigin: noNul(payload.metadata.dataOriginPackageName ?? ''),
    lastModifiedMs: b.lastModifiedMs,
    clientRecordVersion: payload.metadata.clientRecordVersion,
    startMs: storableTime(start),
    endMs: storableTime(end),
    zoneOffset: zone === null ? null : noNul(zone),
    fetchMs: b.fetchMs,
    value: m.value,
    valueCount: b.valueCount,
    outOfRange: b.outOfRange,
    payload,
  };
}

function fromBlock(recordType: RecordType, b: BlockRecord): StoredRecord {
  return {
    recordType,
    metadataId: b.metadataId,
    readerVersion: b.readerVersion,
    contentHash: b.contentHash,
    sourceId: b.sourceId,
    ...describeStored(recordType, b),
  };
}

/** Adds a block's merge to a unit's counts, and its conflicts (decided by VERSION_RULE) to `conflicts`. */
function countMerge(
  totals: UpsertCounts,
  conflicts: RecordConflict[],
  m: BlockMerge,
  recordType: RecordType,
  incomingSourceId: string,
): void {
  totals.inserted += m.inserted;
  totals.updated += m.updated;
  totals.unchanged += m.unchanged;
  totals.conflicts += m.conflicts.length;
  for (const c of m.conflicts) conflicts.push({ ...c, recordType, incomingSourceId, rule: VERSION_RULE });
}

/** The rows a unit stages, one arena per record type (a unit normally stages one type). */
class StagedRows {
  private readonly byType = new Map<RecordType, IncomingRecords>();
  private arena(recordType: RecordType): IncomingRecords {
    let arena = this.byType.get(recordType);
    if (!arena) {
      arena = new IncomingRecords();
      this.byType.set(recordType, arena);
    }
    return arena;
  }
  add(rows: readonly StoredRecordInput[]): void {
    for (const r of rows) this.arena(r.recordType).add(r);
  }
  /** Decoded records of one type; returns how many had no id (not staged). */
  addRecords(
    recordType: RecordType,
    readerVersion: number,
    records: readonly HealthRecord[],
    raw?: RawRecords,
  ): number {
    const reader = readerSchema(recordType, readerVersion);
    const idLeads = idLeadsBody(reader.type);
    const arena = this.arena(recordType);
    let unkeyed = 0;
    const splices = newSplices();
    for (let i = 0; i < records.length; i++) {
      const record = records[i] as HealthRecord;
      const id = storedId(record);
      if (id === undefined) {
        unkeyed++;
        continue;
      }
      const m = measured(recordType, record);
      // The id is not copied when it is the body's first string (record-blocks.ts ID_IN_BODY).
      const idInBody = idLeads && id === record.metadata.id;
      const start = raw && i > 0 ? (raw.ends[i - 1] as number) : 0;
      if (raw) {
        // The record's own bytes when they are what the encoder would write (canonical-body.ts).
        const at = raw.canonicalBody(raw.bytes, start, raw.ends[i] as number, splices);
        if (at >= 0) {
          arena.addBody(
            reader.version,
            id,
            record,
            raw.bytes,
            start,
            at,
            splices,
            m.count,
            m.outOfRange,
            idInBody,
          );
          continue;
        }
      }
      // Re-encoded: from the whole record when the pipeline decoded only the fields it reads.
      const whole = raw?.decodeFull ? (raw.decodeFull(start) as HealthRecord) : record;
      arena.addRecord(reader.type, reader.version, id, whole, m.count, m.outOfRange, idInBody);
    }
    return unkeyed;
  }
  /** Takes everything staged, per record type. */
  take(): [RecordType, IncomingRecords][] {
    const out = [...this.byType.entries()].filter(([, a]) => a.count > 0);
    this.byType.clear();
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// In memory

/** Single-process store; units run one at a time, which gives the same answers as PostgreSQL. */
export class MemoryRecordStore implements RecordStore {
  /** Record blocks by `${recordType}\0${bucket}` (record-blocks.ts), as PostgreSQL keeps them. */
  private readonly blocks = new Map<string, Buffer>();
  private readonly counts = new Map<RecordType, number>();
  private readonly ingests = new Map<string, IngestOutcome>();
  private readonly conflictLog: RecordConflict[] = [];
  private readonly conflictKeys = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  ingest<T>(source: IngestSource, fn: (unit: IngestUnit) => Promise<UnitResult<T>>): Promise<T> {
    const run = async (): Promise<T> => {
      const merged = new Map<string, Buffer>();
      const added = new Map<RecordType, number>();
      const newConflicts: RecordConflict[] = [];
      const staged = new StagedRows();
      let outcome: IngestOutcome | undefined;
      const existing = this.ingests.get(source.sourceId);
      const claim: IngestClaim = !existing
        ? { state: 'new' }
        : existing.completedAt
          ? { state: 'done', outcome: existing }
          : { state: 'pending', outcome: existing };
      const merge = async (): Promise<UpsertCounts> => {
        const counts: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0, conflicts: 0 };
        for (const [recordType, arena] of staged.take()) {
          const { buckets, rowsOf } = arena.takeByBucket();
          for (const bucket of buckets) {
            const key = `${recordType}\0${bucket}`;
            const m = mergeBlock(
              merged.get(key) ?? this.blocks.get(key),
              rowsOf(bucket),
              source.sourceId,
              compareVersions,
            );
            countMerge(counts, newConflicts, m, recordType, source.sourceId);
            if (m.data) merged.set(key, m.data);
            added.set(recordType, (added.get(recordType) ?? 0) + m.inserted);
          }
        }
        return counts;
      };
      const unit: IngestUnit = {
        claim,
        stage: async (rows) => staged.add(rows),
        stageRecords: async (readerVersion, records, raw) =>
          staged.addRecords(source.recordType, readerVersion, records, raw),
        merge,
        upsert: async (rows) => {
          staged.add(rows);
          return merge();
        },
        recordOutcome: async (o) => {
          if (claim.state !== 'new') throw new Error(`outcome of ${source.sourceId} was already recorded`);
          outcome = { ...o, sourceId: source.sourceId };
        },
      };
      const result = await fn(unit);
      if (result.commit) {
        for (const [k, v] of merged) this.blocks.set(k, v);
        for (const [t, n] of added) this.counts.set(t, (this.counts.get(t) ?? 0) + n);
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
    const block = this.blocks.get(`${recordType}\0${bucketOf(metadataId)}`);
    const found = block ? findInBlock(block, metadataId) : undefined;
    return found ? fromBlock(recordType, found) : undefined;
  }

  async countRecords(recordType?: RecordType): Promise<number> {
    if (recordType) return this.counts.get(recordType) ?? 0;
    let n = 0;
    for (const c of this.counts.values()) n += c;
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

/**
 * Creates the blocks a batch needs and locks them all, in bucket order (one statement): every
 * unit takes its block locks in ascending order, so concurrent units wait for each other instead
 * of deadlocking. A block another unit inserted and has not committed is waited for. Returns the
 * stored bytes (empty for a block created here).
 */
export const LOCK_BLOCKS_SQL = `
INSERT INTO health_record_blocks AS b (record_type, bucket, n, data)
SELECT $1, x, 0, '\\x'::bytea FROM unnest($2::int[]) AS x ORDER BY x
ON CONFLICT (record_type, bucket) DO UPDATE SET n = b.n
RETURNING bucket, data`;

/**
 * Buckets merged between two turns of the event loop. The round in flight is sent and its answer
 * read only when the event loop runs: a round merged in one go (~60 ms) left the server waiting
 * for the rest of its ~9 MB statement (or unable to send the next round's stored blocks) until it
 * was done, so client and server took turns instead of working at the same time.
 */
const IO_SLICE = 64;
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Buckets per lock/merge/write round: ~10 MB of blocks for a large export, a few KB for a daily one. */
const ROUND_BUCKETS = 1024;

interface ChangedBlock {
  readonly bucket: number;
  readonly count: number;
  readonly data: Buffer;
}

/**
 * Blocks as the parameters of a few statements per round, each with at most 256 blocks and ~8 MB:
 * `$1` is the record type, each row's parameters `$k::int, $k+1::int, $k+2::bytea` (bucket,
 * count, data). Buffers go to the server as binary parameters (no hex text, no COPY into a
 * staging table read back by an UPDATE). Blocks keep their order (ascending buckets).
 */
function* blockStatements(
  recordType: RecordType,
  blocks: readonly ChangedBlock[],
): Generator<{ rows: string[]; values: unknown[] }> {
  for (let i = 0; i < blocks.length; ) {
    const values: unknown[] = [recordType];
    const rows: string[] = [];
    let bytes = 0;
    for (; i < blocks.length && rows.length < 256 && bytes < 8 << 20; i++) {
      const b = blocks[i] as ChangedBlock;
      const k = values.length;
      rows.push(`$${k + 1}::int, $${k + 2}::int, $${k + 3}::bytea`);
      values.push(b.bucket, b.count, b.data);
      bytes += b.data.length;
    }
    yield { rows, values };
  }
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
  /** Buckets per lock/merge/write round (default 1024; tests use a few to run many rounds). */
  readonly roundBuckets?: number;
  /** How long a unit waits for another worker holding the same records or object (default 30 s). */
  readonly lockTimeoutMs?: number;
}

export class PostgresRecordStore implements RecordStore {
  private readonly lockTimeoutMs: number;
  private readonly roundBuckets: number;

  constructor(
    private readonly pool: pg.Pool,
    options: PostgresRecordStoreOptions = {},
  ) {
    this.lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
    this.roundBuckets = Math.max(1, options.roundBuckets ?? ROUND_BUCKETS);
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
      // Staged rows wait as record bytes in the client (IncomingRecords) and change nothing until
      // merge(): a file that is then quarantined never reaches the server. The merge runs in
      // rounds of buckets: lock round k+1 is sent before round k is merged, and round k is
      // written while round k+1 is merged, so client and server work at the same time.
      const staged = new StagedRows();
      const legacyKnown = new Map<RecordType, boolean>();
      const mergeType = async (recordType: RecordType, arena: IncomingRecords, totals: UpsertCounts) => {
        if (!legacyKnown.has(recordType)) {
          const { rows } = await client.query<{ any: boolean }>(
            'SELECT EXISTS (SELECT 1 FROM health_records WHERE record_type = $1) AS any',
            [recordType],
          );
          legacyKnown.set(recordType, rows[0]?.any === true);
        }
        const legacyRows = legacyKnown.get(recordType) === true;
        const { buckets, rowsOf } = arena.takeByBucket();
        const rounds: number[][] = [];
        for (let i = 0; i < buckets.length; i += this.roundBuckets)
          rounds.push(buckets.slice(i, i + this.roundBuckets));
        const lock = (round: number[]) =>
          client.query<{ bucket: number; data: Buffer }>(LOCK_BLOCKS_SQL, [recordType, round]);
        const add = (m: BlockMerge, conflicts: RecordConflict[]) =>
          countMerge(totals, conflicts, m, recordType, source.sourceId);
        let locked = rounds[0] ? lock(rounds[0]) : undefined;
        locked?.catch(() => undefined);
        let writing: Promise<void> | undefined;
        // A first load creates nearly every block. Once a round found only blocks it created, the
        // later rounds are built as new blocks and sent with the statement that creates them
        // (createRound): one write per block instead of an empty row then an update, ~40 %
        // of the server's work for a large first load. A block that exists after all is merged
        // and updated as before.
        let k = 0;
        for (; k < rounds.length; k++) {
          const round = rounds[k] as number[];
          const { rows: stored } = await (locked as ReturnType<typeof lock>);
          const next = rounds[k + 1];
          const created = !legacyRows && stored.every((r) => r.data.length === 0);
          locked = next && !created ? lock(next) : undefined;
          locked?.catch(() => undefined);
          const storedOf = new Map<number, Buffer>();
          for (const r of stored) storedOf.set(r.bucket, r.data);
          const incomingOf = new Map<number, ReturnType<typeof rowsOf>>();
          for (const b of round) incomingOf.set(b, rowsOf(b));
          let legacy: Map<string, LegacyVersion> | undefined;
          if (legacyRows)
            legacy = await this.lockLegacy(client, recordType, [...incomingOf.values()].flatMap(incomingIds));
          const changed: ChangedBlock[] = [];
          const conflicts: RecordConflict[] = [];
          const replaced: string[] = [];
          for (let j = 0; j < round.length; j++) {
            if (j % IO_SLICE === IO_SLICE - 1) await yieldToIo();
            const b = round[j] as number;
            const data = storedOf.get(b);
            const m = mergeBlock(
              data && data.length > 0 ? data : undefined,
              incomingOf.get(b) ?? { bufs: [], offsets: [], keys: [] },
              source.sourceId,
              compareVersions,
              legacy,
            );
            add(m, conflicts);
            replaced.push(...m.replacedLegacy);
            if (m.data) changed.push({ bucket: b, count: m.count, data: m.data });
          }
          incomingOf.clear();
          if (writing) await writing;
          writing = this.writeRound(client, recordType, changed, conflicts, replaced);
          writing.catch(() => undefined);
          if (created) break;
        }
        // Round k+1 is built while round k is created.
        for (k++; k < rounds.length; k++) {
          const built = new Map<number, { incoming: IncomingBucket; merge: BlockMerge }>();
          const round = rounds[k] as number[];
          for (let j = 0; j < round.length; j++) {
            if (j % IO_SLICE === IO_SLICE - 1) await yieldToIo();
            const b = round[j] as number;
            const incoming = rowsOf(b);
            built.set(b, {
              incoming,
              merge: mergeBlock(undefined, incoming, source.sourceId, compareVersions),
            });
          }
          if (writing) await writing;
          writing = this.createRound(client, recordType, built, (existing) => {
            // Blocks that existed after all: merged with what is stored, then updated.
            const conflicts: RecordConflict[] = [];
            const changed: ChangedBlock[] = [];
            for (const [b, m] of built) {
              const data = existing.get(b);
              const merged =
                data === undefined
                  ? m.merge
                  : mergeBlock(
                      data.length > 0 ? data : undefined,
                      m.incoming,
                      source.sourceId,
                      compareVersions,
                    );
              add(merged, conflicts);
              if (data !== undefined && merged.data)
                changed.push({ bucket: b, count: merged.count, data: merged.data });
            }
            return this.writeRound(client, recordType, changed, conflicts, []);
          });
          writing.catch(() => undefined);
        }
        if (writing) await writing;
      };
      const merge = async (): Promise<UpsertCounts> => {
        const totals: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0, conflicts: 0 };
        for (const [recordType, arena] of staged.take()) await mergeType(recordType, arena, totals);
        return totals;
      };
      const unit: IngestUnit = {
        claim,
        stage: async (rows) => staged.add(rows),
        stageRecords: async (readerVersion, records, raw) =>
          staged.addRecords(source.recordType, readerVersion, records, raw),
        merge,
        upsert: async (rows) => {
          staged.add(rows);
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

  /** Stored versions of these ids still in health_records (written before 0230), locked. */
  private async lockLegacy(
    client: pg.PoolClient,
    recordType: RecordType,
    ids: readonly string[],
  ): Promise<Map<string, LegacyVersion>> {
    const { rows } = await client.query<{
      metadata_id: string;
      last_modified_ms: string;
      content_hash: string;
      fetch_ms: string;
      value_count: number;
      out_of_range: number;
      source_id: string;
    }>(
      `SELECT metadata_id, last_modified_ms, content_hash, fetch_ms, value_count, out_of_range, source_id
       FROM health_records WHERE record_type = $1 AND metadata_id = ANY($2::text[])
       ORDER BY metadata_id FOR UPDATE`,
      [recordType, ids],
    );
    return new Map(
      rows.map((r) => [
        r.metadata_id,
        {
          metadataId: r.metadata_id,
          lastModifiedMs: Number(r.last_modified_ms),
          contentHash: Number(r.content_hash),
          fetchMs: Number(r.fetch_ms),
          valueCount: r.value_count,
          outOfRange: r.out_of_range,
          sourceId: r.source_id,
        },
      ]),
    );
  }

  /**
   * Creates a round's blocks with their data (ascending buckets, as LOCK_BLOCKS_SQL locks them, so
   * the lock order of concurrent units is the same); a block that exists is locked instead and
   * comes back with its stored bytes. `then` gets those and writes what they need.
   */
  private async createRound(
    client: pg.PoolClient,
    recordType: RecordType,
    blocks: ReadonlyMap<number, { readonly merge: BlockMerge }>,
    then: (existing: ReadonlyMap<number, Buffer>) => Promise<void>,
  ): Promise<void> {
    const existing = new Map<number, Buffer>();
    const created = [...blocks].map(([bucket, { merge }]) => ({
      bucket,
      count: merge.count,
      data: merge.data ?? Buffer.alloc(0),
    }));
    for (const { rows, values } of blockStatements(recordType, created)) {
      const { rows: found } = await client.query<{ bucket: number; data: Buffer }>(
        `INSERT INTO health_record_blocks AS b (record_type, bucket, n, data)
         VALUES ${rows.map((r) => `($1, ${r})`).join(', ')}
         ON CONFLICT (record_type, bucket) DO UPDATE SET n = b.n
         RETURNING bucket, CASE WHEN b.xmax = 0 THEN NULL ELSE b.data END AS data`,
        values,
      );
      for (const r of found) if (r.data !== null) existing.set(r.bucket, r.data);
    }
    await then(existing);
  }

  /** Writes a round: changed blocks (binary parameters, no stage), conflicts, replaced legacy rows. */
  private async writeRound(
    client: pg.PoolClient,
    recordType: RecordType,
    blocks: readonly ChangedBlock[],
    conflicts: readonly RecordConflict[],
    replacedLegacy: readonly string[],
  ): Promise<void> {
    for (const { rows, values } of blockStatements(recordType, blocks)) {
      await client.query(
        `UPDATE health_record_blocks b SET n = v.n, data = v.data, updated_at = now()
         FROM (VALUES ${rows.map((r) => `(${r})`).join(', ')}) AS v (bucket, n, data)
         WHERE b.record_type = $1 AND b.bucket = v.bucket`,
        values,
      );
    }
    if (conflicts.length > 0) {
      await client.query(
        `INSERT INTO health_record_conflicts (record_type, metadata_id, last_modified_ms, stored_hash, incoming_hash,
           stored_source_id, incoming_source_id, kept, rule)
         SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
         ON CONFLICT DO NOTHING`,
        [
          recordType,
          conflicts.map((c) => c.metadataId),
          conflicts.map((c) => c.lastModifiedMs),
          conflicts.map((c) => c.storedHash),
          conflicts.map((c) => c.incomingHash),
          conflicts.map((c) => c.storedSourceId),
          conflicts.map((c) => c.incomingSourceId),
          conflicts.map((c) => c.kept),
          conflicts.map((c) => c.rule),
        ],
      );
    }
    if (replacedLegacy.length > 0) {
      await client.query(
        'DELETE FROM health_records WHERE record_type = $1 AND metadata_id = ANY($2::text[])',
        [recordType, replacedLegacy],
      );
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
    const block = await this.pool.query<{ data: Buffer }>(
      'SELECT data FROM health_record_blocks WHERE record_type = $1 AND bucket = $2',
      [recordType, bucketOf(metadataId)],
    );
    const data = block.rows[0]?.data;
    const found = data ? findInBlock(data, metadataId) : undefined;
    if (found) return fromBlock(recordType, found);
    return this.getLegacyRecord(recordType, metadataId);
  }

  /** A record still in health_records (written before migration 0230 and not updated since). */
  private async getLegacyRecord(
    recordType: RecordType,
    metadataId: string,
  ): Promise<StoredRecord | undefined> {
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
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT (SELECT coalesce(sum(n), 0) FROM health_record_blocks WHERE $1::text IS NULL OR record_type = $1)
            + (SELECT count(*) FROM health_records WHERE $1::text IS NULL OR record_type = $1) AS n`,
      [recordType ?? null],
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Every stored record of a type (blocks, then rows older than 0230): for checks and exports. */
  async listRecords(recordType?: RecordType): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    const { rows } = await this.pool.query<{ record_type: RecordType; data: Buffer }>(
      'SELECT record_type, data FROM health_record_blocks WHERE $1::text IS NULL OR record_type = $1 ORDER BY record_type, bucket',
      [recordType ?? null],
    );
    for (const r of rows) for (const b of blockRecords(r.data)) out.push(fromBlock(r.record_type, b));
    const legacy = await this.pool.query<{ record_type: RecordType; metadata_id: string }>(
      'SELECT record_type, metadata_id FROM health_records WHERE $1::text IS NULL OR record_type = $1',
      [recordType ?? null],
    );
    for (const r of legacy.rows) {
      const s = await this.getLegacyRecord(r.record_type, r.metadata_id);
      if (s) out.push(s);
    }
    return out;
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
