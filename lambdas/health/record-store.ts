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
import type { SourceIdentity } from './source';
import { type HealthRecord, type RecordType, recordInterval } from './types';

export interface StoredRecordInput {
  readonly recordType: RecordType;
  readonly metadataId: string;
  readonly dataOrigin: string;
  readonly lastModifiedMs: number;
  readonly clientRecordVersion: number;
  /** Null when the record's time is outside 1900-3000 (PostgreSQL could not store it). */
  readonly startMs: number | null;
  readonly endMs: number | null;
  readonly zoneOffset: string | null;
  readonly payload: HealthRecord;
}

export interface StoredRecord extends StoredRecordInput {
  readonly sourceId: string;
}

export interface UpsertCounts {
  inserted: number;
  updated: number;
  /** Already known with the same or a newer version. */
  unchanged: number;
}

export type IngestStatus = 'processed' | 'duplicate';

export interface IngestOutcome {
  readonly sourceId: string;
  readonly recordType: RecordType;
  readonly status: IngestStatus;
  readonly recordsRead: number;
  readonly inserted: number;
  readonly updated: number;
  readonly correlationId: string | null;
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
  close(): Promise<void>;
}

const YEAR_1900 = Date.UTC(1900, 0, 1);
const YEAR_3000 = Date.UTC(3000, 0, 1);
const storableTime = (t: number): number | null =>
  Number.isFinite(t) && t >= YEAR_1900 && t < YEAR_3000 ? t : null;
// PostgreSQL text and jsonb cannot hold NUL characters.
const noNul = (s: string): string => (s.includes('\0') ? s.replaceAll('\0', '') : s);

/** The row for a decoded record; undefined for records without an id (they cannot be keyed). */
export function toStoredRecord(recordType: RecordType, record: HealthRecord): StoredRecordInput | undefined {
  const id = record.metadata.id;
  if (typeof id !== 'string' || noNul(id) === '') return undefined;
  const { start, end, zone } = recordInterval(recordType, record);
  return {
    recordType,
    metadataId: noNul(id),
    dataOrigin: noNul(record.metadata.dataOriginPackageName ?? ''),
    lastModifiedMs: record.metadata.lastModifiedTimeEpochMillis,
    clientRecordVersion: record.metadata.clientRecordVersion,
    startMs: storableTime(start),
    endMs: storableTime(end),
    zoneOffset: zone === null ? null : noNul(zone),
    payload: record,
  };
}

/** Within one batch the same id may appear twice: keep the newest (then the later one). */
export function newestPerId(rows: readonly StoredRecordInput[]): StoredRecordInput[] {
  const byId = new Map<string, StoredRecordInput>();
  for (const r of rows) {
    const key = `${r.recordType}\0${r.metadataId}`;
    const prev = byId.get(key);
    if (!prev || r.lastModifiedMs >= prev.lastModifiedMs) byId.set(key, r);
  }
  return [...byId.values()];
}

// ---------------------------------------------------------------------------------------------
// In memory

/** Single-process store; units run one at a time, which gives the same answers as PostgreSQL. */
export class MemoryRecordStore implements RecordStore {
  private readonly records = new Map<string, StoredRecord>();
  private readonly ingests = new Map<string, IngestOutcome>();
  private queue: Promise<unknown> = Promise.resolve();

  ingest<T>(source: IngestSource, fn: (unit: IngestUnit) => Promise<UnitResult<T>>): Promise<T> {
    const run = async (): Promise<T> => {
      const staged = new Map<string, StoredRecord>();
      let outcome: IngestOutcome | undefined;
      const existing = this.ingests.get(source.sourceId);
      const claim: IngestClaim = !existing
        ? { state: 'new' }
        : existing.completedAt
          ? { state: 'done', outcome: existing }
          : { state: 'pending', outcome: existing };
      const unit: IngestUnit = {
        claim,
        upsert: async (rows) => {
          const counts: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0 };
          for (const row of newestPerId(rows)) {
            const key = `${row.recordType}\0${row.metadataId}`;
            const current = staged.get(key) ?? this.records.get(key);
            if (!current) counts.inserted++;
            else if (row.lastModifiedMs > current.lastModifiedMs) counts.updated++;
            else {
              counts.unchanged++;
              continue;
            }
            staged.set(key, { ...row, sourceId: source.sourceId });
          }
          return counts;
        },
        recordOutcome: async (o) => {
          if (claim.state !== 'new') throw new Error(`outcome of ${source.sourceId} was already recorded`);
          outcome = { ...o, sourceId: source.sourceId };
        },
      };
      const result = await fn(unit);
      if (result.commit) {
        for (const [k, v] of staged) this.records.set(k, v);
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
    return this.records.get(`${recordType}\0${metadataId}`);
  }

  async countRecords(recordType?: RecordType): Promise<number> {
    if (!recordType) return this.records.size;
    let n = 0;
    for (const r of this.records.values()) if (r.recordType === recordType) n++;
    return n;
  }

  async close(): Promise<void> {}
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/**
 * One statement per batch: the rows travel as one JSON document, are expanded by
 * jsonb_to_recordset, and ON CONFLICT keeps the newest version. `xmax = 0` is true for rows this
 * statement inserted, false for rows it updated; rows the WHERE clause skipped return nothing.
 */
const UPSERT_SQL = `
INSERT INTO health_records AS r (
  record_type, metadata_id, data_origin, last_modified_ms, client_record_version,
  start_time, end_time, zone_offset, payload, source_id
)
SELECT x.record_type, x.metadata_id, x.data_origin, x.last_modified_ms, x.client_record_version,
       to_timestamp(x.start_ms / 1000.0), to_timestamp(x.end_ms / 1000.0), x.zone_offset, x.payload, $2
FROM jsonb_to_recordset($1::jsonb) AS x(
  record_type text, metadata_id text, data_origin text, last_modified_ms bigint,
  client_record_version bigint, start_ms bigint, end_ms bigint, zone_offset text, payload jsonb
)
ON CONFLICT (record_type, metadata_id) DO UPDATE SET
  data_origin = excluded.data_origin,
  last_modified_ms = excluded.last_modified_ms,
  client_record_version = excluded.client_record_version,
  start_time = excluded.start_time,
  end_time = excluded.end_time,
  zone_offset = excluded.zone_offset,
  payload = excluded.payload,
  source_id = excluded.source_id,
  updated_at = now()
WHERE excluded.last_modified_ms > r.last_modified_ms
RETURNING (xmax = 0) AS inserted`;

function rowsJson(rows: readonly StoredRecordInput[]): string {
  const body = rows.map((r) => ({
    record_type: r.recordType,
    metadata_id: r.metadataId,
    data_origin: r.dataOrigin,
    last_modified_ms: r.lastModifiedMs,
    client_record_version: r.clientRecordVersion,
    start_ms: r.startMs,
    end_ms: r.endMs,
    zone_offset: r.zoneOffset,
    payload: r.payload,
  }));
  const json = JSON.stringify(body);
  // Rare: a NUL inside a string of the payload. Re-serialise without it rather than fail forever.
  return json.includes('\\u0000')
    ? JSON.stringify(body, (_k, v: unknown) => (typeof v === 'string' ? noNul(v) : v))
    : json;
}

interface IngestRow {
  source_id: string;
  record_type: RecordType;
  status: IngestStatus | 'pending';
  records_read: number;
  records_inserted: number;
  records_updated: number;
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
    correlationId: row.correlation_id,
    processedAt: row.processed_at.toISOString(),
    completedAt: row.completed_at ? row.completed_at.toISOString() : null,
  };
}

export interface PostgresRecordStoreOptions {
  /** Rows per upsert statement (default 1000). */
  readonly batchSize?: number;
  /** How long a unit waits for another worker holding the same records or object (default 30 s). */
  readonly lockTimeoutMs?: number;
}

export class PostgresRecordStore implements RecordStore {
  private readonly batchSize: number;
  private readonly lockTimeoutMs: number;

  constructor(
    private readonly pool: pg.Pool,
    options: PostgresRecordStoreOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 1000;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 30_000;
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
      const unit: IngestUnit = {
        claim,
        upsert: async (rows) => {
          const counts: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0 };
          const unique = newestPerId(rows);
          counts.unchanged += rows.length - unique.length;
          for (let i = 0; i < unique.length; i += this.batchSize) {
            // Sorted so two workers touching the same records lock them in the same order.
            const batch = unique
              .slice(i, i + this.batchSize)
              .sort((a, b) => (a.metadataId < b.metadataId ? -1 : a.metadataId > b.metadataId ? 1 : 0));
            const res = await client.query<{ inserted: boolean }>(UPSERT_SQL, [
              rowsJson(batch),
              source.sourceId,
            ]);
            let ins = 0;
            for (const r of res.rows) if (r.inserted) ins++;
            counts.inserted += ins;
            counts.updated += res.rows.length - ins;
            counts.unchanged += batch.length - res.rows.length;
          }
          return counts;
        },
        recordOutcome: async (o) => {
          if (claim.state !== 'new') throw new Error(`outcome of ${source.sourceId} was already recorded`);
          await client.query(
            `UPDATE health_ingests SET record_type = $2, status = $3, records_read = $4, records_inserted = $5,
               records_updated = $6, correlation_id = $7, processed_at = $8, completed_at = $9
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
            ],
          );
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
      payload: HealthRecord;
      source_id: string;
    }>('SELECT * FROM health_records WHERE record_type = $1 AND metadata_id = $2', [recordType, metadataId]);
    const r = rows[0];
    if (!r) return undefined;
    return {
      recordType: r.record_type,
      metadataId: r.metadata_id,
      dataOrigin: r.data_origin,
      lastModifiedMs: Number(r.last_modified_ms),
      clientRecordVersion: Number(r.client_record_version),
      startMs: r.start_time ? r.start_time.getTime() : null,
      endMs: r.end_time ? r.end_time.getTime() : null,
      zoneOffset: r.zone_offset,
      payload: r.payload,
      sourceId: r.source_id,
    };
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

  /** The pool belongs to the caller (one per container); closing the store does not end it. */
  async close(): Promise<void> {}
}
