import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { canonicalBody, newSplices } from '../../../lambdas/health/canonical-body';
import { openExport } from '../../../lambdas/health/decode';
import { processExport } from '../../../lambdas/health/pipeline';
import { READER_SCHEMA_FILES } from '../../../lambdas/health/reader-schemas.generated';
import {
  BLOCK_BUCKETS,
  blockRecords,
  bucketOf,
  findInBlock,
  IncomingRecords,
  idKey,
  idLeadsBody,
  incomingIds,
  mergeBlock,
} from '../../../lambdas/health/record-blocks';
import {
  compareVersions,
  hashBytes,
  MemoryRecordStore,
  toStoredRecord,
} from '../../../lambdas/health/record-store';
import { avroTypeOptions, readerSchema } from '../../../lambdas/health/schemas';
import type { BloodGlucoseRecord, HealthRecord } from '../../../lambdas/health/types';
import { mulberry32 } from '../../../localstack/scenarios/prng';
import {
  containerBlock,
  containerHeader,
  glucoseDay0,
  SAMPLES_DIR,
  WRITER_SCHEMAS,
  writerType,
} from '../../fixtures/health/generator';
import { NOW, sampleFiles } from './helpers';

/** What the encoder writes for a decoded record: the stored body (fetch time zeroed). */
function encoded(recordType: Parameters<typeof readerSchema>[0], version: number, r: HealthRecord): Buffer {
  const fetch = r.appRecordFetchTimeEpochMillis;
  (r as { appRecordFetchTimeEpochMillis: number }).appRecordFetchTimeEpochMillis = 0;
  try {
    return readerSchema(recordType, version).type.toBuffer(r);
  } finally {
    (r as { appRecordFetchTimeEpochMillis: number }).appRecordFetchTimeEpochMillis = fetch;
  }
}

/** The body canonical-body.ts builds from the file's bytes (as IncomingRecords.addBody does). */
function fromFile(bytes: Buffer, start: number, at: number, s: ReturnType<typeof newSplices>): Buffer {
  const parts: Buffer[] = [];
  let from = start;
  for (let k = 0; k < s.n; k++) {
    parts.push(bytes.subarray(from, s.at[k]), s.bytes[k] as Buffer);
    from = s.at[k] as number;
  }
  parts.push(bytes.subarray(from, at), Buffer.from([0]));
  return Buffer.concat(parts);
}

const T = (schema: unknown) => avro.Type.forSchema(schema as avro.Schema, avroTypeOptions());
const fetchField = { name: 'appRecordFetchTimeEpochMillis', type: 'long' };
const flat = (fields: unknown[]) => T({ type: 'record', name: 'R', fields: [...fields, fetchField] });

describe('stored bodies taken from the export bytes (canonical-body.ts)', () => {
  it('are byte for byte what the encoder writes, for every record of the sample exports', async () => {
    let fromBytes = 0;
    let reencoded = 0;
    for (const name of sampleFiles()) {
      const path = join(SAMPLES_DIR, name);
      const file = await openExport<HealthRecord>(readFileSync(path), { key: name });
      const eligible = !['HeartRateRecord', 'SleepSessionRecord'].includes(file.recordType);
      // The app's schemas have our readers' layout (glucose v2 adds metadata.recordingMethod).
      expect(file.canonicalBody !== undefined, path).toBe(eligible);
      for await (const block of file.blocks()) {
        for (let i = 0; i < block.records.length; i++) {
          const r = block.records[i] as HealthRecord;
          const want = encoded(file.recordType, file.readerVersion, r);
          if (!block.raw || !file.canonicalBody) {
            reencoded++;
            continue;
          }
          const start = i === 0 ? 0 : (block.raw.ends[i - 1] as number);
          const s = newSplices();
          const at = file.canonicalBody(block.raw.bytes, start, block.raw.ends[i] as number, s);
          expect(at).toBeGreaterThan(start);
          expect(fromFile(block.raw.bytes, start, at, s).equals(want)).toBe(true);
          fromBytes++;
        }
      }
    }
    expect(fromBytes).toBeGreaterThan(200);
    expect(reencoded).toBeGreaterThan(100);
  });

  it('refuse bytes that are not what the encoder would write: such records are re-encoded', () => {
    const t = flat([
      { name: 'n', type: 'long' },
      { name: 's', type: 'string' },
      { name: 'd', type: 'double' },
      { name: 'b', type: 'boolean' },
    ]);
    const check = canonicalBody(t, t);
    expect(check).toBeDefined();
    const good = t.toBuffer({ n: 5, s: 'Z', d: 1.5, b: true, appRecordFetchTimeEpochMillis: 1 });
    const at = (b: Buffer) => (check as NonNullable<typeof check>)(b, 0, b.length, newSplices());
    expect(at(good)).toBe(good.length - 1);
    // n = 5 as a two-byte varint (0x8a 0x00): decodes to 5, the encoder writes 0x0a.
    expect(at(Buffer.concat([Buffer.from([0x8a, 0x00]), good.subarray(1)]))).toBe(-1);
    // An invalid UTF-8 byte: decoded as U+FFFD, which the encoder writes as 3 bytes.
    const bad = Buffer.from(good);
    bad[2] = 0xff;
    expect(at(bad)).toBe(-1);
    // Valid non-ASCII UTF-8 is kept.
    const e = t.toBuffer({ n: 5, s: 'é', d: 1.5, b: true, appRecordFetchTimeEpochMillis: 1 });
    expect(at(e)).toBe(e.length - 1);
    // NaN (its payload is not kept through a JS number) and a boolean byte other than 0/1.
    const nan = t.toBuffer({ n: 5, s: 'Z', d: Number.NaN, b: true, appRecordFetchTimeEpochMillis: 1 });
    expect(at(nan)).toBe(-1);
    const two = Buffer.from(good);
    two[good.length - 2] = 2;
    expect(at(two)).toBe(-1);
    // A non-minimal fetch time, and bytes left over after the record.
    expect(at(Buffer.concat([good.subarray(0, -1), Buffer.from([0x82, 0x00])]))).toBe(-1);
    expect(at(Buffer.concat([good, Buffer.from([0])]))).toBe(-1);
  });

  it('refuse ints beyond 32 bits, enum and union indexes out of range, float NaN; walk fixed and bytes', () => {
    const t = flat([
      { name: 'i', type: 'int' },
      { name: 'e', type: { type: 'enum', name: 'E', symbols: ['X', 'Y'] } },
      { name: 'u', type: ['null', 'string', 'long'] },
      { name: 'f', type: 'float' },
      { name: 'x', type: { type: 'fixed', name: 'F', size: 3 } },
      { name: 'y', type: 'bytes' },
    ]);
    const check = canonicalBody(t, t) as NonNullable<ReturnType<typeof canonicalBody>>;
    const value = { i: -7, e: 'Y', u: 12, f: 1.5, x: Buffer.from('abc'), y: Buffer.from([0, 255]) };
    const good = t.toBuffer({ ...value, appRecordFetchTimeEpochMillis: 3 });
    const at = (b: Buffer) => check(b, 0, b.length, newSplices());
    expect(at(good)).toBe(good.length - 1);
    for (const u of [null, 'z']) {
      const other = t.toBuffer({ ...value, u, appRecordFetchTimeEpochMillis: 3 });
      expect(at(other)).toBe(other.length - 1);
    }
    // int 2^31 as a 5-byte varint (zigzag 2^32): the decoder reads it, the encoder refuses it.
    const wide = Buffer.concat([Buffer.from([0x80, 0x80, 0x80, 0x80, 0x10]), good.subarray(1)]);
    expect(at(wide)).toBe(-1);
    const enumAt = 1; // after the one-byte int
    const e = Buffer.from(good);
    e[enumAt] = 4; // index 2 of 2 symbols
    expect(at(e)).toBe(-1);
    const u = Buffer.from(good);
    u[enumAt + 1] = 6; // branch 3 of 3
    expect(at(u)).toBe(-1);
    const nan = t.toBuffer({ ...value, f: Number.NaN, appRecordFetchTimeEpochMillis: 3 });
    expect(at(nan)).toBe(-1);
    // Cut inside the fixed and inside the bytes.
    expect(at(good.subarray(0, good.length - 5))).toBe(-1);
    expect(at(good.subarray(0, good.length - 2))).toBe(-1);
  });

  it('apply only when the writer has the reader layout and the fetch time is the last field', () => {
    const reader = flat([{ name: 'a', type: 'long' }]);
    expect(canonicalBody(flat([{ name: 'b', type: 'long' }]), reader)).toBeUndefined();
    expect(canonicalBody(flat([{ name: 'a', type: 'int' }]), reader)).toBeUndefined();
    const e1 = flat([{ name: 'a', type: { type: 'enum', name: 'E', symbols: ['X', 'Y'] } }]);
    const e2 = flat([{ name: 'a', type: { type: 'enum', name: 'E', symbols: ['Y', 'X'] } }]);
    expect(canonicalBody(e1, e2)).toBeUndefined();
    expect(canonicalBody(e1, e1)).toBeDefined();
    const arr = flat([{ name: 'a', type: { type: 'array', items: 'long' } }]);
    expect(canonicalBody(arr, arr)).toBeUndefined();
    const last = T({ type: 'record', name: 'R', fields: [fetchField, { name: 'a', type: 'long' }] });
    expect(canonicalBody(last, last)).toBeUndefined();
    // A nested record the reader extends: with a default yes (spliced in), without no.
    const nested = (extra: unknown[]) =>
      flat([
        {
          name: 'm',
          type: { type: 'record', name: 'M', fields: [{ name: 'id', type: 'string' }, ...extra] },
        },
      ]);
    const w = nested([]);
    const withDefault = nested([{ name: 'x', type: ['null', 'string'], default: null }]);
    expect(canonicalBody(w, nested([{ name: 'x', type: 'long' }]))).toBeUndefined();
    const check = canonicalBody(w, withDefault);
    expect(check).toBeDefined();
    const bytes = w.toBuffer({ m: { id: 'abc' }, appRecordFetchTimeEpochMillis: 7 });
    const s = newSplices();
    const at = (check as NonNullable<typeof check>)(bytes, 0, bytes.length, s);
    const decoded = withDefault.fromBuffer(bytes, withDefault.createResolver(w)) as Record<string, unknown>;
    decoded.appRecordFetchTimeEpochMillis = 0;
    expect(fromFile(bytes, 0, at, s).equals(withDefault.toBuffer(decoded))).toBe(true);
  });

  it('a record that is not canonical is stored as the encoder writes it (same hash either way)', async () => {
    const records = glucoseDay0().slice(0, 3) as unknown as BloodGlucoseRecord[];
    const wt = writerType('BloodGlucoseRecord');
    const raw = records.map((r) => wt.toBuffer(r));
    // Record 1: its zone "Z" replaced by an invalid UTF-8 byte (decoded as U+FFFD).
    const zone = Buffer.from([0x02, 0x02, 0x5a]); // union branch 1, length 1, "Z"
    const r1 = raw[1] as Buffer;
    const z = r1.indexOf(zone);
    expect(z).toBeGreaterThan(0);
    r1[z + 2] = 0xff;
    const sync = Buffer.alloc(16, 7);
    const bytes = Buffer.concat([
      containerHeader(JSON.stringify(WRITER_SCHEMAS.BloodGlucoseRecord), 'null', sync),
      containerBlock(raw.length, Buffer.concat(raw), 'null', sync),
    ]);
    const store = new MemoryRecordStore();
    const key = 'raw/BloodGlucoseRecord/2025/11/03/BloodGlucoseRecord_1762219812481.avro';
    const result = await processExport({
      bytes,
      source: { bucket: 'b', key, etag: 'e' },
      store,
      now: new Date(NOW),
    });
    expect(result.status).toBe('processed');
    const file = await openExport<HealthRecord>(bytes, { key });
    const decoded: HealthRecord[] = [];
    for await (const block of file.blocks()) decoded.push(...block.records);
    expect((decoded[1] as BloodGlucoseRecord).zoneOffsetId).toBe('\uFFFD');
    for (const r of decoded) {
      const stored = await store.getRecord('BloodGlucoseRecord', r.metadata.id);
      const want = toStoredRecord('BloodGlucoseRecord', r);
      expect(stored?.contentHash).toBe(want?.contentHash);
      expect(stored?.contentHash).toBe(hashBytes(encoded('BloodGlucoseRecord', file.readerVersion, r)));
    }
  });
});

describe('staged records (IncomingRecords)', () => {
  it('come back per bucket whatever range of buckets they were staged in; a range is let go of once passed', () => {
    const arena = new IncomingRecords();
    const ids = Array.from({ length: 5000 }, (_, i) => `id-${i}`);
    const base = glucoseDay0()[0] as unknown as BloodGlucoseRecord;
    for (const [i, id] of ids.entries()) {
      const r = toStoredRecord('BloodGlucoseRecord', {
        ...base,
        metadata: { ...base.metadata, id },
        levelInMilligramsPerDeciliter: 80 + (i % 50),
      });
      if (r) arena.add(r);
    }
    const { buckets, rowsOf } = arena.takeByBucket();
    // Several ranges of 1,024 buckets are used by 5,000 ids.
    expect(new Set(buckets.map((b) => Math.floor(b / 1024))).size).toBeGreaterThan(4);
    const seen: string[] = [];
    for (const b of buckets) {
      const rows = rowsOf(b);
      for (const id of incomingIds(rows)) {
        expect(bucketOf(id)).toBe(b);
        seen.push(id);
      }
    }
    expect(seen.sort()).toEqual([...ids].sort());
    // The first range's slabs were released when the merge moved past it.
    expect(() => rowsOf(buckets[0] as number)).toThrow(/released/);
  });

  it('a bucket of more staged records than BLOCK_BUCKETS (the float sort keys) comes back in (key, id, staging) order and merges to the newest per id', () => {
    // 300 ids of one bucket (found by their keys), each staged 60 times in a seeded random order with
    // distinct lastModified values: 18,000 records in one bucket, past the u32 sort keys' limit.
    const bucket = 4_321;
    const ids: string[] = [];
    for (let n = 0; ids.length < 300; n++) if (bucketOf(`r-${n}`) === bucket) ids.push(`r-${n}`);
    const rng = mulberry32(11);
    const staged: { id: string; lastModified: number }[] = [];
    for (const id of ids) for (let k = 0; k < 60; k++) staged.push({ id, lastModified: 0 });
    for (let i = staged.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [staged[i], staged[j]] = [staged[j] as (typeof staged)[number], staged[i] as (typeof staged)[number]];
    }
    // Distinct versions in no relation to the staging order (a prime times the index, modulo the count).
    for (const [i, s] of staged.entries()) s.lastModified = 1_000 + ((i * 7_919) % staged.length);
    expect(staged.length).toBeGreaterThan(BLOCK_BUCKETS);

    const base = glucoseDay0()[0] as unknown as BloodGlucoseRecord;
    const arena = new IncomingRecords();
    for (const s of staged) {
      const r = toStoredRecord('BloodGlucoseRecord', {
        ...base,
        metadata: { ...base.metadata, id: s.id, lastModifiedTimeEpochMillis: s.lastModified },
      });
      if (r) arena.add(r);
    }
    const { buckets, rowsOf } = arena.takeByBucket();
    expect(buckets).toEqual([bucket]);
    const rows = rowsOf(bucket);

    // What the order must be, computed apart: id key, then id (UTF-8 bytes; ASCII here), then staging.
    const expected = staged
      .map((s, i) => ({ ...s, i, key: idKey(s.id) }))
      .sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) || a.i - b.i);
    expect(Array.from(rows.keys)).toEqual(expected.map((e) => e.key));
    expect(incomingIds(rows)).toEqual(expected.map((e) => e.id));
    // The record layout's lastModified (u32 length, u16 source, u16 version, then f64 lastModified).
    const lastModified = rows.bufs.map((b, j) => b.readDoubleLE((rows.offsets[j] as number) + 8));
    expect(lastModified).toEqual(expected.map((e) => e.lastModified));

    const m = mergeBlock(undefined, rows, 'src', compareVersions);
    expect([m.count, m.inserted, m.unchanged]).toEqual([300, 300, staged.length - 300]);
    const newest = new Map<string, number>();
    for (const s of staged) newest.set(s.id, Math.max(newest.get(s.id) ?? 0, s.lastModified));
    const kept = blockRecords(m.data as Buffer);
    expect(kept.map((r) => [r.metadataId, r.lastModifiedMs]).sort()).toEqual([...newest].sort());
  });
});

describe('record ids read from the body (block format 2)', () => {
  const base = glucoseDay0()[0] as unknown as BloodGlucoseRecord;
  const reader = readerSchema('BloodGlucoseRecord');
  const glucose = (id: string, lastModified: number, level: number): BloodGlucoseRecord => ({
    ...base,
    metadata: { ...base.metadata, id, lastModifiedTimeEpochMillis: lastModified },
    levelInMilligramsPerDeciliter: level,
  });
  /** One staged record merged into `stored` (one bucket: the id's). */
  const merge = (stored: Buffer | undefined, stage: (arena: IncomingRecords) => void) => {
    const arena = new IncomingRecords();
    stage(arena);
    const { buckets, rowsOf } = arena.takeByBucket();
    expect(buckets).toHaveLength(1);
    return mergeBlock(stored, rowsOf(buckets[0] as number), 'src', compareVersions);
  };

  it('every reader schema starts with metadata.id, so staged ids are not copied', () => {
    let n = 0;
    for (const [v, types] of Object.entries(READER_SCHEMA_FILES))
      for (const recordType of Object.keys(types)) {
        const type = readerSchema(recordType as never, Number(v.slice(1))).type;
        expect(idLeadsBody(type), `${recordType} ${v}`).toBe(true);
        n++;
      }
    expect(n).toBeGreaterThan(5);
    expect(idLeadsBody(flat([{ name: 'id', type: 'string' }]))).toBe(false);
  });

  it('a record staged without its id copy is the id shorter and reads back the same', () => {
    const id = 'b5c9a3e0-0000-4000-8000-000000000001';
    const r = glucose(id, 10, 101);
    const copied = merge(undefined, (a) => a.addRecord(reader.type, reader.version, id, r, 1, 0, false));
    const inBody = merge(undefined, (a) => a.addRecord(reader.type, reader.version, id, r, 1, 0, true));
    expect((copied.data as Buffer).length - (inBody.data as Buffer).length).toBe(Buffer.byteLength(id));
    const a = findInBlock(copied.data as Buffer, id);
    const b = findInBlock(inBody.data as Buffer, id);
    expect(b).toEqual(a);
    expect(b?.metadataId).toBe(id);
    expect(b?.contentHash).toBe(hashBytes(encoded('BloodGlucoseRecord', reader.version, r)));
    expect(findInBlock(inBody.data as Buffer, `${id}x`)).toBeUndefined();
  });

  it('format 1 blocks are read and merged: a newer version replaces the copied-id record', () => {
    const id = 'b5c9a3e0-0000-4000-8000-000000000002';
    const old = merge(undefined, (a) =>
      a.add(toStoredRecord('BloodGlucoseRecord', glucose(id, 10, 101)) as never),
    );
    const v1 = Buffer.from(old.data as Buffer);
    v1[0] = 1;
    expect(findInBlock(v1, id)?.lastModifiedMs).toBe(10);
    // Format 1 had no ID_IN_BODY: an id length of 0xffff there is refused, never read as format 2.
    const odd = Buffer.from(v1);
    odd.writeUInt16LE(0xffff, 7 + 2 + Buffer.byteLength('src') + 44);
    expect(() => findInBlock(odd, id)).toThrow(/format 1/);
    const same = merge(v1, (a) =>
      a.addRecord(reader.type, reader.version, id, glucose(id, 10, 101), 1, 0, true),
    );
    expect(same).toMatchObject({ data: undefined, unchanged: 1, conflicts: [] });
    const conflict = merge(v1, (a) =>
      a.addRecord(reader.type, reader.version, id, glucose(id, 10, 99), 1, 0, true),
    );
    expect(conflict.conflicts.map((c) => c.metadataId)).toEqual([id]);
    const newer = merge(v1, (a) =>
      a.addRecord(reader.type, reader.version, id, glucose(id, 20, 120), 1, 0, true),
    );
    expect(newer).toMatchObject({ updated: 1, count: 1 });
    expect((newer.data as Buffer)[0]).toBe(3);
    expect(blockRecords(newer.data as Buffer).map((x) => [x.metadataId, x.lastModifiedMs])).toEqual([
      [id, 20],
    ]);
  });
});

describe('content hashes computed where a decision needs them (block format 3)', () => {
  const base = glucoseDay0()[0] as unknown as BloodGlucoseRecord;
  const reader = readerSchema('BloodGlucoseRecord');
  const glucose = (id: string, lastModified: number, level: number): BloodGlucoseRecord => ({
    ...base,
    metadata: { ...base.metadata, id, lastModifiedTimeEpochMillis: lastModified },
    levelInMilligramsPerDeciliter: level,
  });
  /** Stages a record with its hash computed (as before format 3) or left pending (as staging from an export does). */
  const stage = (arena: IncomingRecords, r: BloodGlucoseRecord, pending: boolean) => {
    const row = toStoredRecord('BloodGlucoseRecord', r);
    if (!row) throw new Error('not storable');
    if (!pending) arena.add(row);
    else arena.addRecord(reader.type, reader.version, r.metadata.id, r, row.valueCount, row.outOfRange, true);
  };
  /** Every bucket of `records` merged into `stored` (bucket -> block). */
  const mergeAll = (stored: Map<number, Buffer>, records: BloodGlucoseRecord[], pending: boolean) => {
    const arena = new IncomingRecords();
    for (const r of records) stage(arena, r, pending);
    const { buckets, rowsOf } = arena.takeByBucket();
    const out = new Map(stored);
    const counts = { inserted: 0, updated: 0, unchanged: 0 };
    const conflicts: unknown[] = [];
    for (const b of buckets) {
      const m = mergeBlock(stored.get(b), rowsOf(b), 'src', compareVersions);
      counts.inserted += m.inserted;
      counts.updated += m.updated;
      counts.unchanged += m.unchanged;
      conflicts.push(...m.conflicts);
      if (m.data) out.set(b, m.data);
    }
    return { out, counts, conflicts };
  };
  const records = (blocks: Map<number, Buffer>) =>
    [...blocks.keys()].sort((a, b) => a - b).flatMap((b) => blockRecords(blocks.get(b) as Buffer));
  const bodyOf = (r: BloodGlucoseRecord) =>
    (toStoredRecord('BloodGlucoseRecord', r) as { body: Buffer }).body;

  it('a format 2 block (hashes of the same function, computed) merged with pending staged records: unchanged, updated, conflict', () => {
    const id = 'c5c9a3e0-0000-4000-8000-000000000001';
    const bucket = bucketOf(id);
    const stored = mergeAll(new Map(), [glucose(id, 10, 101)], false).out;
    const v2 = Buffer.from(stored.get(bucket) as Buffer);
    v2[0] = 2;
    const old = new Map([[bucket, v2]]);
    expect(findInBlock(v2, id)?.contentHash).toBe(hashBytes(bodyOf(glucose(id, 10, 101))));

    const same = mergeAll(old, [glucose(id, 10, 101)], true);
    expect(same.counts).toEqual({ inserted: 0, updated: 0, unchanged: 1 });
    expect(same.conflicts).toEqual([]);
    expect(same.out.get(bucket)).toBe(v2);

    const newer = mergeAll(old, [glucose(id, 20, 120)], true);
    expect(newer.counts).toEqual({ inserted: 0, updated: 1, unchanged: 0 });
    expect(newer.conflicts).toEqual([]);
    const written = newer.out.get(bucket) as Buffer;
    expect(written[0]).toBe(3);
    expect(findInBlock(written, id)).toMatchObject({
      lastModifiedMs: 20,
      contentHash: hashBytes(bodyOf(glucose(id, 20, 120))),
    });

    for (const level of [99, 102, 150]) {
      const conflict = mergeAll(old, [glucose(id, 10, level)], true);
      const storedHash = hashBytes(bodyOf(glucose(id, 10, 101)));
      const incomingHash = hashBytes(bodyOf(glucose(id, 10, level)));
      expect(conflict.conflicts).toEqual([
        {
          metadataId: id,
          lastModifiedMs: 10,
          storedHash,
          incomingHash,
          storedSourceId: 'src',
          kept: incomingHash > storedHash ? 'incoming' : 'stored',
        },
      ]);
      expect(conflict.counts.updated + conflict.counts.unchanged).toBe(1);
      expect(findInBlock(conflict.out.get(bucket) as Buffer, id)?.contentHash).toBe(
        incomingHash > storedHash ? incomingHash : storedHash,
      );
    }
  });

  it('pending hashes decide exactly as computed ones: every mix of stored and staged versions', () => {
    const ids = Array.from({ length: 6 }, (_, i) => `d5c9a3e0-0000-4000-8000-00000000000${i}`);
    // Deterministic pseudo-random scenarios (no clock, no Math.random).
    let seed = 12345;
    const next = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 16) % n;
    };
    let conflictsSeen = 0;
    let updatesSeen = 0;
    for (let scenario = 0; scenario < 40; scenario++) {
      const first: BloodGlucoseRecord[] = [];
      const second: BloodGlucoseRecord[] = [];
      for (const id of ids) {
        if (next(3) > 0) first.push(glucose(id, 10 * (1 + next(2)), 100 + next(3)));
        for (let k = next(3); k > 0; k--) second.push(glucose(id, 10 * (1 + next(2)), 100 + next(3)));
      }
      // Before format 3 every hash was computed: both loads with computed hashes is the reference.
      const reference = mergeAll(mergeAll(new Map(), first, false).out, second, false);
      for (const [firstPending, secondPending] of [
        [true, true],
        [true, false],
        [false, true],
      ] as const) {
        const got = mergeAll(mergeAll(new Map(), first, firstPending).out, second, secondPending);
        expect(got.counts, `scenario ${scenario}`).toEqual(reference.counts);
        expect(got.conflicts, `scenario ${scenario}`).toEqual(reference.conflicts);
        expect(records(got.out), `scenario ${scenario}`).toEqual(records(reference.out));
      }
      conflictsSeen += reference.conflicts.length;
      updatesSeen += reference.counts.updated;
    }
    // The scenarios reach the decisions that read the hash.
    expect(conflictsSeen).toBeGreaterThan(10);
    expect(updatesSeen).toBeGreaterThan(10);
  });
});
