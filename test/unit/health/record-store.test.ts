import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketOf } from '../../../lambdas/health/record-blocks';
import {
  decodeBody,
  type IngestSource,
  MemoryRecordStore,
  PostgresRecordStore,
  type RecordStore,
  type StoredRecordInput,
  toStoredRecord,
  VERSION_RULE,
} from '../../../lambdas/health/record-store';
import { readerSchema } from '../../../lambdas/health/schemas';
import type { BloodGlucoseRecord, HeartRateRecord } from '../../../lambdas/health/types';
import { createPool } from '../../../lambdas/platform/postgres';
import { createTestSchema, type TestSchema } from '../../support/db';
import { loadSample, sampleFiles } from './helpers';

function glucoseRecord(id: string, lastModifiedMs: number, level = 100, fetch = 1): BloodGlucoseRecord {
  return {
    metadata: {
      id,
      dataOriginPackageName: 'com.dexcom.g7',
      lastModifiedTimeEpochMillis: lastModifiedMs,
      clientRecordId: null,
      clientRecordVersion: 0,
      device: null,
    },
    timeEpochMillis: Date.UTC(2025, 10, 3),
    zoneOffsetId: 'Z',
    levelInMilligramsPerDeciliter: level,
    specimenSource: 'INTERSTITIAL_FLUID',
    mealType: 'UNKNOWN',
    relationToMeal: 'UNKNOWN',
    appRecordFetchTimeEpochMillis: fetch,
  };
}

function row(id: string, lastModifiedMs: number, level = 100, fetch = 1): StoredRecordInput {
  return toStoredRecord(
    'BloodGlucoseRecord',
    glucoseRecord(id, lastModifiedMs, level, fetch),
  ) as StoredRecordInput;
}

let n = 0;
function source(): IngestSource {
  n++;
  return {
    bucket: 'b',
    key: `raw/k${n}.avro`,
    etag: `e${n}`,
    sourceId: `src-${n}-${Math.random()}`,
    recordType: 'BloodGlucoseRecord',
  };
}

const outcome = (status: 'processed' | 'duplicate') => ({
  recordType: 'BloodGlucoseRecord' as const,
  status,
  recordsRead: 1,
  inserted: 0,
  updated: 0,
  conflicts: 0,
  correlationId: 'c',
  processedAt: '2025-11-10T12:00:00.000Z',
  completedAt: null,
});

/** Upserts rows in one committed unit and returns the counts. */
async function upsertCommitted(store: RecordStore, rows: StoredRecordInput[]) {
  return store.ingest(source(), async (unit) => {
    const counts = await unit.upsert(rows);
    await unit.recordOutcome(outcome(counts.inserted + counts.updated > 0 ? 'processed' : 'duplicate'));
    return { commit: true, value: counts };
  });
}

function contract(name: string, make: () => Promise<RecordStore>) {
  describe(`${name} record store`, () => {
    let store: RecordStore;
    beforeAll(async () => {
      store = await make();
    });

    it('inserts new records, keeps the newest version, ignores same-or-older versions', async () => {
      // Prepare
      const id = `a-${name}`;

      // Act
      const first = await upsertCommitted(store, [row(id, 100, 90), row(`${id}-2`, 100)]);
      const same = await upsertCommitted(store, [row(id, 100, 90, 2), row(`${id}-2`, 100, 100, 2)]);
      const newer = await upsertCommitted(store, [row(id, 200, 95)]);
      const older = await upsertCommitted(store, [row(id, 150, 80)]);

      // Assess
      expect(first).toEqual({ inserted: 2, updated: 0, unchanged: 0, conflicts: 0 });
      expect(same).toEqual({ inserted: 0, updated: 0, unchanged: 2, conflicts: 0 });
      expect(newer).toEqual({ inserted: 0, updated: 1, unchanged: 0, conflicts: 0 });
      expect(older).toEqual({ inserted: 0, updated: 0, unchanged: 1, conflicts: 0 });
      const stored = await store.getRecord('BloodGlucoseRecord', id);
      expect(stored?.lastModifiedMs).toBe(200);
      expect((stored?.payload as BloodGlucoseRecord | undefined)?.levelInMilligramsPerDeciliter).toBe(95);
    });

    it('decoded records staged by the pipeline path decide like rows (ids without NUL, unkeyed ones counted)', async () => {
      const id = `staged-${name}`;
      const result = await store.ingest(source(), async (unit) => {
        const unkeyed = await unit.stageRecords(readerSchema('BloodGlucoseRecord').version, [
          glucoseRecord(`${id}\0`, 10, 100),
          glucoseRecord(id, 20, 110),
          glucoseRecord('', 1),
        ]);
        const counts = await unit.merge();
        await unit.recordOutcome(outcome('processed'));
        return { commit: true, value: { unkeyed, counts } };
      });
      expect(result).toEqual({ unkeyed: 1, counts: { inserted: 1, updated: 0, unchanged: 1, conflicts: 0 } });
      const stored = await store.getRecord('BloodGlucoseRecord', id);
      expect(stored).toMatchObject({ lastModifiedMs: 20, fetchMs: 1, valueCount: 1, outOfRange: 0 });
      expect((stored?.payload as BloodGlucoseRecord | undefined)?.levelInMilligramsPerDeciliter).toBe(110);
      expect(await upsertCommitted(store, [row(id, 20, 110, 5)])).toEqual({
        inserted: 0,
        updated: 0,
        unchanged: 1,
        conflicts: 0,
      });
    });

    it('the same id twice in one batch counts once, newest wins', async () => {
      const id = `dup-${name}`;
      const counts = await upsertCommitted(store, [row(id, 5, 1), row(id, 9, 2), row(id, 7, 3)]);
      expect(counts.inserted).toBe(1);
      expect((await store.getRecord('BloodGlucoseRecord', id))?.lastModifiedMs).toBe(9);
    });

    it('a unit that does not commit leaves neither records nor an ingest row', async () => {
      const src = source();
      await store.ingest(src, async (unit) => {
        await unit.upsert([row(`rolled-${name}`, 1)]);
        await unit.recordOutcome(outcome('processed'));
        return { commit: false, value: undefined };
      });
      expect(await store.getRecord('BloodGlucoseRecord', `rolled-${name}`)).toBeUndefined();
      expect(await store.getIngest(src.sourceId)).toBeUndefined();
    });

    it('an error inside the unit rolls it back', async () => {
      const src = source();
      await expect(
        store.ingest(src, async (unit) => {
          await unit.upsert([row(`boom-${name}`, 1)]);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await store.getRecord('BloodGlucoseRecord', `boom-${name}`)).toBeUndefined();
    });

    it('claims: new, then pending until completed (a retry), then done', async () => {
      // Prepare
      const src = source();
      const claims: string[] = [];
      const once = () =>
        store.ingest(src, async (unit) => {
          claims.push(unit.claim.state);
          if (unit.claim.state === 'new') await unit.recordOutcome(outcome('processed'));
          return { commit: true, value: unit.claim };
        });

      // Act
      await once();
      const retry = await once();
      await store.completeIngest(src.sourceId, new Date(Date.UTC(2025, 10, 10, 12, 1)));
      const later = await once();

      // Assess
      expect(claims).toEqual(['new', 'pending', 'done']);
      expect(retry).toMatchObject({
        state: 'pending',
        outcome: { status: 'processed', processedAt: '2025-11-10T12:00:00.000Z' },
      });
      expect(later).toMatchObject({ state: 'done', outcome: { completedAt: '2025-11-10T12:01:00.000Z' } });
    });

    it('stores a real overlapping heart-rate re-sync: the updated series replaces the partial one', async () => {
      // Prepare
      const [first, second] = sampleFiles('HeartRateRecord');
      const rowsOf = async (file: string) =>
        (await loadSample<'HeartRateRecord'>(file)).map(
          (r) => toStoredRecord('HeartRateRecord', r) as StoredRecordInput,
        );
      const a = await rowsOf(first as string);
      const b = await rowsOf(second as string);
      const series = b.find((r) => r.valueCount === 60) as StoredRecordInput;

      // Act
      const firstCounts = await upsertCommitted(store, a);
      const secondCounts = await upsertCommitted(store, b);

      // Assess
      expect(firstCounts).toEqual({ inserted: a.length, updated: 0, unchanged: 0, conflicts: 0 });
      expect(secondCounts).toEqual({ inserted: 0, updated: 1, unchanged: b.length - 1, conflicts: 0 });
      expect((decodeBody(series) as HeartRateRecord).samples).toHaveLength(60);
      const stored = await store.getRecord('HeartRateRecord', series.metadataId);
      expect((stored?.payload as HeartRateRecord | undefined)?.samples).toHaveLength(60);
    });

    it('keeps records with NUL characters and impossible times storable', async () => {
      const record = glucoseRecord(`nul\0-${name}`, 1);
      const weird = toStoredRecord('BloodGlucoseRecord', record) as StoredRecordInput;
      const counts = await upsertCommitted(store, [
        { ...weird, zoneOffset: 'Z\0', startMs: null, endMs: null, dataOrigin: 'x' },
      ]);
      expect(counts.inserted).toBe(1);
      expect(
        toStoredRecord('BloodGlucoseRecord', { ...record, metadata: { ...record.metadata, id: '' } }),
      ).toBeUndefined();
    });

    it('keeps the whole record: the stored body decodes to what was read, with its fetch time', async () => {
      // Prepare
      const record = glucoseRecord(`body-${name}`, 7, 123.4, 99);

      // Act
      await upsertCommitted(store, [toStoredRecord('BloodGlucoseRecord', record) as StoredRecordInput]);

      // Assess
      const stored = await store.getRecord('BloodGlucoseRecord', `body-${name}`);
      expect(JSON.parse(JSON.stringify(stored?.payload))).toMatchObject(record);
      expect(stored).toMatchObject({ value: 123.4, valueCount: 1, outOfRange: 0, fetchMs: 99 });
    });

    it('same id, same version, different content: the version without impossible values wins, the conflict is recorded and counted', async () => {
      // Prepare: a damaged copy (9999 mg/dL) was stored first; the intact one arrives with the same version.
      const id = `conflict-a-${name}`;
      await upsertCommitted(store, [row(id, 50, 9999, 10)]);

      // Act
      const counts = await upsertCommitted(store, [row(id, 50, 120, 5)]);

      // Assess
      expect(counts).toEqual({ inserted: 0, updated: 1, unchanged: 0, conflicts: 1 });
      expect((await store.getRecord('BloodGlucoseRecord', id))?.value).toBe(120);
      const log = await store.conflicts('BloodGlucoseRecord', id);
      expect(log).toHaveLength(1);
      expect(log[0]).toMatchObject({ kept: 'incoming', lastModifiedMs: 50, rule: VERSION_RULE });
    });

    it('a conflicting version that is less founded is recorded and counted, and the stored one stays', async () => {
      // Prepare
      const id = `conflict-b-${name}`;
      await upsertCommitted(store, [row(id, 50, 120, 5)]);

      // Act: the same version with an impossible value, from a later export.
      const counts = await upsertCommitted(store, [row(id, 50, 9999, 10)]);
      const again = await upsertCommitted(store, [row(id, 50, 9999, 11)]);

      // Assess
      expect(counts).toEqual({ inserted: 0, updated: 0, unchanged: 1, conflicts: 1 });
      expect(again.conflicts).toBe(1);
      expect((await store.getRecord('BloodGlucoseRecord', id))?.value).toBe(120);
      // Seen twice, recorded once.
      expect(await store.conflicts('BloodGlucoseRecord', id)).toMatchObject([{ kept: 'stored' }]);
    });

    it('between two plausible versions the later export wins, whatever the order they arrive in', async () => {
      // Prepare
      const early = (id: string) => row(id, 50, 120, 5);
      const late = (id: string) => row(id, 50, 130, 9);

      // Act
      await upsertCommitted(store, [early(`order-1-${name}`)]);
      await upsertCommitted(store, [late(`order-1-${name}`)]);
      await upsertCommitted(store, [late(`order-2-${name}`)]);
      await upsertCommitted(store, [early(`order-2-${name}`)]);

      // Assess
      expect((await store.getRecord('BloodGlucoseRecord', `order-1-${name}`))?.value).toBe(130);
      expect((await store.getRecord('BloodGlucoseRecord', `order-2-${name}`))?.value).toBe(130);
    });

    it('the same content re-exported (only the fetch time differs) is no conflict', async () => {
      const id = `same-${name}`;
      await upsertCommitted(store, [row(id, 50, 120, 5)]);
      const counts = await upsertCommitted(store, [row(id, 50, 120, 9)]);
      expect(counts).toEqual({ inserted: 0, updated: 0, unchanged: 1, conflicts: 0 });
      expect(await store.conflicts('BloodGlucoseRecord', id)).toEqual([]);
    });
  });
}

contract('memory', async () => new MemoryRecordStore());

describe('PostgreSQL', () => {
  let db: TestSchema;
  beforeAll(async () => {
    db = await createTestSchema('health_store');
  });
  afterAll(() => db.drop());

  contract('postgres', async () => new PostgresRecordStore(db.pool, { roundBuckets: 3 }));

  it('concurrent workers: every record is inserted exactly once, the database decides', async () => {
    // Prepare: 6 workers upsert the same 40 records (different source objects) at once.
    const store = new PostgresRecordStore(db.pool, { roundBuckets: 7 });
    const rows = Array.from({ length: 40 }, (_, i) => row(`conc-${i}`, 1000));

    // Act
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        store.ingest(source(), async (unit) => {
          const counts = await unit.upsert([...rows].reverse());
          await unit.recordOutcome(outcome(counts.inserted > 0 ? 'processed' : 'duplicate'));
          return { commit: true, value: counts };
        }),
      ),
    );

    // Assess
    expect(results.reduce((a, c) => a + c.inserted, 0)).toBe(40);
    expect(results.reduce((a, c) => a + c.unchanged, 0)).toBe(40 * 5);
    const stored = (await store.listRecords('BloodGlucoseRecord')).filter((r) =>
      r.metadataId.startsWith('conc-'),
    );
    expect(stored).toHaveLength(40);
  });

  it('a worker whose new records another worker holds uncommitted waits for it, then finds them stored', async () => {
    // Prepare: A inserts 30 new records and holds its transaction open; B stages the same records.
    const store = new PostgresRecordStore(db.pool);
    const rows = Array.from({ length: 30 }, (_, i) => row(`race-${i}`, 1000));
    let releaseA: () => void = () => undefined;
    const aHolds = new Promise<void>((r) => {
      releaseA = r;
    });
    let aInserted: () => void = () => undefined;
    const aDone = new Promise<void>((r) => {
      aInserted = r;
    });

    // Act: B's lock of the same blocks waits for A's uncommitted blocks, then reads what A stored.
    const a = store.ingest(source(), async (unit) => {
      const counts = await unit.upsert(rows);
      await unit.recordOutcome(outcome('processed'));
      aInserted();
      await aHolds;
      return { commit: true, value: counts };
    });
    await aDone;
    const b = store.ingest(source(), async (unit) => {
      const counts = await unit.upsert([...rows, row('race-new', 1000)]);
      await unit.recordOutcome(outcome('processed'));
      return { commit: true, value: counts };
    });
    await new Promise((r) => setTimeout(r, 200));
    releaseA();

    // Assess: A inserted all 30, B only its one new record; nothing inserted twice.
    expect(await a).toMatchObject({ inserted: 30, updated: 0 });
    expect(await b).toMatchObject({ inserted: 1, updated: 0, unchanged: 30 });
    const stored = (await store.listRecords('BloodGlucoseRecord')).filter((r) =>
      r.metadataId.startsWith('race-'),
    );
    expect(stored).toHaveLength(31);
  });

  it('concurrent deliveries of the same object: one decides, the other sees its decision', async () => {
    const store = new PostgresRecordStore(db.pool);
    const src = source();
    const states = await Promise.all(
      [0, 1].map(() =>
        store.ingest(src, async (unit) => {
          if (unit.claim.state === 'new') {
            await unit.upsert([row(`same-obj-${src.sourceId}`, 1)]);
            await new Promise((r) => setTimeout(r, 100));
            await unit.recordOutcome(outcome('processed'));
          }
          return { commit: true, value: unit.claim.state };
        }),
      ),
    );
    expect(states.sort()).toEqual(['new', 'pending']);
  });

  it('rows written before the blocks (health_records) stay readable and move into their block when a newer version arrives', async () => {
    // Prepare: two records as rows of the pre-0230 table (typed columns + Avro body).
    const store = new PostgresRecordStore(db.pool);
    const insertLegacy = async (r: StoredRecordInput) =>
      db.pool.query(
        `INSERT INTO health_records (record_type, metadata_id, data_origin, last_modified_ms, client_record_version,
           fetch_ms, value, value_count, out_of_range, content_hash, reader_version, body, source_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'legacy-source')`,
        [
          r.recordType,
          r.metadataId,
          r.dataOrigin,
          r.lastModifiedMs,
          r.clientRecordVersion,
          r.fetchMs,
          r.value,
          r.valueCount,
          r.outOfRange,
          r.contentHash,
          r.readerVersion,
          r.body,
        ],
      );
    await insertLegacy(row('legacy-kept', 500, 101));
    await insertLegacy(row('legacy-moved', 500, 102));
    const before = await store.countRecords('BloodGlucoseRecord');

    // Act: an older version of one, a newer version of the other, the same content of the first.
    const counts = await upsertCommitted(store, [row('legacy-kept', 400, 90), row('legacy-moved', 600, 120)]);
    const again = await upsertCommitted(store, [row('legacy-kept', 500, 101, 7)]);

    // Assess: decided against the legacy rows; the replaced one left health_records, the kept one stayed.
    expect(counts).toEqual({ inserted: 0, updated: 1, unchanged: 1, conflicts: 0 });
    expect(again).toEqual({ inserted: 0, updated: 0, unchanged: 1, conflicts: 0 });
    expect(await store.countRecords('BloodGlucoseRecord')).toBe(before);
    const kept = await store.getRecord('BloodGlucoseRecord', 'legacy-kept');
    expect(kept).toMatchObject({ lastModifiedMs: 500, sourceId: 'legacy-source' });
    expect((kept?.payload as BloodGlucoseRecord | undefined)?.levelInMilligramsPerDeciliter).toBe(101);
    const moved = await store.getRecord('BloodGlucoseRecord', 'legacy-moved');
    expect(moved?.lastModifiedMs).toBe(600);
    expect((moved?.payload as BloodGlucoseRecord | undefined)?.levelInMilligramsPerDeciliter).toBe(120);
    const { rows: left } = await db.pool.query(
      `SELECT metadata_id FROM health_records WHERE metadata_id LIKE 'legacy-%' ORDER BY 1`,
    );
    expect(left.map((r) => r.metadata_id)).toEqual(['legacy-kept']);
  });

  it('after a round of only new blocks, later rounds create blocks with their data; blocks that exist after all are merged as before', async () => {
    // Prepare: ids by bucket. The two lowest buckets are new (round 0 of 2 buckets finds only new
    // blocks); higher buckets hold records stored before, mixed with new ones.
    const ids = Array.from({ length: 400 }, (_, i) => `switch-${i}`).sort(
      (a, b) => bucketOf(a) - bucketOf(b),
    );
    const byBucket = new Map<number, string>();
    for (const id of ids) if (!byBucket.has(bucketOf(id))) byBucket.set(bucketOf(id), id);
    const one = [...byBucket.values()];
    const [low1, low2] = one;
    const stored = one.slice(2, 14);
    const fresh = one.slice(14, 30);
    const before = [...stored.map((id) => row(id, 100, 90))];
    const incoming = [
      row(low1 as string, 100),
      row(low2 as string, 100),
      ...stored.map((id, i) =>
        i % 3 === 0 ? row(id, 200, 95) : i % 3 === 1 ? row(id, 100, 90, 9) : row(id, 100, 91),
      ),
      ...fresh.map((id) => row(id, 100)),
    ];
    const statements: string[] = [];
    // A schema of its own: the other tests' blocks would make some of the new buckets exist.
    const own = await createTestSchema('health_store_rounds');
    const pool = createPool({ connectionString: own.url, schema: own.schema, max: 2 });
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...a: unknown[]) => unknown;
      (client as unknown as { query: unknown }).query = (...a: unknown[]) => {
        if (typeof a[0] === 'string') statements.push(a[0].trim().split(/\s+/).slice(0, 3).join(' '));
        return query(...a);
      };
    });
    try {
      const pg = new PostgresRecordStore(pool, { roundBuckets: 2 });
      const memory = new MemoryRecordStore();

      // Act: the same two units against PostgreSQL and memory.
      const results = [];
      let sent: string[] = [];
      for (const store of [pg, memory]) {
        await upsertCommitted(store, before);
        statements.length = 0;
        results.push(await upsertCommitted(store, incoming));
        if (store === pg) sent = [...statements];
      }

      // Assess: the same decisions: 18 new; of the 12 stored, 4 newer versions, 4 refetched, 4
      // conflicts (same version, another level: VERSION_RULE decides which side is kept).
      expect(results[0]).toEqual(results[1]);
      const r = results[0] as { inserted: number; updated: number; unchanged: number; conflicts: number };
      expect(r).toMatchObject({ inserted: 18, conflicts: 4 });
      expect(r.updated + r.unchanged).toBe(12);
      expect(Math.min(r.updated, r.unchanged)).toBeGreaterThanOrEqual(4);
      for (const id of [low1, low2, ...stored, ...fresh] as string[]) {
        const [a, b] = [
          await pg.getRecord('BloodGlucoseRecord', id),
          await memory.getRecord('BloodGlucoseRecord', id),
        ];
        expect(a?.lastModifiedMs, id).toBe(b?.lastModifiedMs);
        expect(a?.contentHash, id).toBe(b?.contentHash);
      }
      expect(await pg.countRecords('BloodGlucoseRecord')).toBeGreaterThanOrEqual(30);
      // One locking round, then only creating rounds: rounds 1-6 hold the stored blocks (merged,
      // and updated where changed), rounds 7-14 only new ones (no update after their creation).
      const blockInserts = sent.flatMap((q, i) => (q === 'INSERT INTO health_record_blocks' ? [i] : []));
      expect(blockInserts).toHaveLength(1 + 14);
      const updates = sent.flatMap((q, i) => (q === 'UPDATE health_record_blocks b' ? [i] : []));
      expect(updates.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...updates)).toBeLessThan(blockInserts[8] as number);
    } finally {
      await pool.end();
      await own.drop();
    }
  });

  it('uses the migration: blocks keyed by (record_type, bucket) and the ingest table', async () => {
    const { rows } = await db.pool.query(
      `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = 'health_record_blocks'::regclass AND i.indisprimary ORDER BY a.attnum`,
    );
    expect(rows.map((r) => r.attname)).toEqual(['record_type', 'bucket']);
    expect((await db.pool.query(`SELECT to_regclass('health_ingests') AS t`)).rows[0].t).toBe(
      'health_ingests',
    );
  });
});
