/**
 * Record blocks: the stored form of health records, many records per block.
 *
 * Why blocks: one row (and one primary-key entry) per reading made the server insert a million
 * rows for a million-reading export, ~8 s of server time alone on a 2-core machine however the
 * rows were sent. A block holds every record of one (record type, id bucket) as one bytea, so such
 * an export writes BLOCK_BUCKETS rows instead.
 *
 * Why an id bucket and not a time bucket: the record store decides per id (newest
 * lastModifiedTimeEpochMillis wins, same version + different content is a conflict). With the
 * bucket a function of the id alone, the stored version of a record is always in the one block
 * its id names, even when a later version moved the record in time; no id index is needed. A
 * daily export of a few hundred records touches a few hundred small blocks (a block holds
 * stored records / BLOCK_BUCKETS records).
 *
 * Block format (little endian), records sorted by (id key, id bytes):
 *   u8 format (3; 1 and 2 are read too) | u32 record count | u16 source count | per source: u16 length + UTF-8 source id
 *   | records
 * Record: u32 length (whole record) | u16 source index | u16 reader version | f64 lastModified |
 *   f64 content hash | f64 fetch ms | u32 value count | u32 out of range | u32 id key | u16 id length
 *   | UTF-8 id | Avro body (the rest; appRecordFetchTimeEpochMillis zeroed, restored from fetch ms).
 *   Format 2: an id length of 0xFFFF (ID_IN_BODY) means no copy of the id: it is the body's first
 *   string (metadata.id). Format 1 blocks have none and are read as they are; a merged block is
 *   written as format 3.
 *   Format 3: a content hash may be NaN (HASH_PENDING): not computed yet; it is `hashBytes` of the
 *   record's body, computed from the stored body where a decision needs it. Formats 1 and 2 hold
 *   only computed hashes; code that predates format 3 refuses such a block instead of comparing
 *   NaN hashes (which it would judge a conflict every time).
 * The other columns of the old row (origin, times, zone, measured value) are read from the body.
 *
 * The decision (`mergeBlock`) is the one both stores run: memory and PostgreSQL cannot disagree.
 */
import type avro from 'avsc';
import type { Splices } from './canonical-body';
import type { StoredRecordInput } from './record-store';
import type { HealthRecord } from './types';

/** Buckets per record type. Changing it re-homes every record: a migration must rewrite blocks. */
export const BLOCK_BUCKETS = 16_384;
// A power of two: `rowsOf` takes a key's multiple of BLOCK_BUCKETS with a mask.
if ((BLOCK_BUCKETS & (BLOCK_BUCKETS - 1)) !== 0) throw new Error('BLOCK_BUCKETS must be a power of two');
/**
 * Written: 3. Read: 1, 2 and 3 (format 2 adds records whose id is read from their body, format 3
 * records whose content hash is not computed yet).
 */
const FORMAT = 3;
/** Fixed part of a record; the id (or, for ID_IN_BODY, the body) starts here. */
const HEADER = 46;
/**
 * The id length field's value for a record that holds no copy of its id: the id is the first
 * string of its Avro body (metadata.id, the first field of every reader schema's first field),
 * written when the stored id is that string (no NUL removed). Saves the id's bytes (36 of a
 * glucose reading's ~189) in the arena, in what is sent to the server and in what it compresses.
 * A copied id is shorter than this (longer ones are refused when staged).
 */
const ID_IN_BODY = 0xffff;

/** End of the id found by the last `idStart` (no allocation per call). */
let idEndAt = 0;

/** Where the id of the record at `o` starts; its end is then `idEndAt`. */
function idStart(b: Buffer, o: number): number {
  const n = b.readUInt16LE(o + 44);
  if (n !== ID_IN_BODY) {
    idEndAt = o + HEADER + n;
    return o + HEADER;
  }
  // The Avro string's length: a zigzag varint (the body's first bytes).
  let pos = o + HEADER;
  let shift = 0;
  let v = 0;
  for (;;) {
    const x = b[pos++] as number;
    v += (x & 0x7f) * 2 ** shift;
    if (x < 0x80) break;
    shift += 7;
  }
  idEndAt = pos + v / 2;
  return pos;
}

/**
 * Whether a reader schema's encoding starts with metadata.id (a string): then a record whose
 * stored id is its metadata.id can be staged with ID_IN_BODY.
 */
export function idLeadsBody(type: avro.Type): boolean {
  const first = (type as unknown as { fields?: { name: string; type: avro.Type }[] }).fields?.[0];
  if (first?.name !== 'metadata') return false;
  const id = (first.type as unknown as { fields?: { name: string; type: avro.Type }[] }).fields?.[0];
  return id?.name === 'id' && id.type.typeName === 'string';
}

/** Where the record's Avro body starts. */
function bodyStart(b: Buffer, o: number): number {
  const n = b.readUInt16LE(o + 44);
  return o + HEADER + (n === ID_IN_BODY ? 0 : n);
}

/** 53-bit FNV-1a-style hash of bytes[start, end) (two 32-bit lanes): a content fingerprint, not a MAC. */
export function hashBytes(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ (end - start);
  for (let i = start; i < end; i++) {
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

/** FNV-1a (32 bits) of the id's UTF-16 code units: the id's key; its bucket is key mod BLOCK_BUCKETS. */
export function idKey(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The block an id lives in: the id alone decides. */
export function bucketOf(id: string): number {
  return idKey(id) % BLOCK_BUCKETS;
}

/**
 * Record layout (little endian): u32 length | u16 source index | u16 reader version |
 * f64 lastModified | f64 content hash | f64 fetch ms | u32 value count | u32 out of range |
 * u32 id key | u16 id length | UTF-8 id (none for ID_IN_BODY) | Avro body. Records of a block are ordered by (id key,
 * id bytes): numbers are compared, never strings, and equal ids are neighbours.
 */
const keyAt = (b: Buffer, o: number) => b.readUInt32LE(o + 40);

/** Orders two records by (id key, id bytes). */
function compareIds(a: Buffer, ao: number, b: Buffer, bo: number): number {
  const ka = keyAt(a, ao);
  const kb = keyAt(b, bo);
  if (ka !== kb) return ka < kb ? -1 : 1;
  const bs = idStart(b, bo);
  const be = idEndAt;
  const as = idStart(a, ao);
  return a.compare(b, bs, be, as, idEndAt);
}

function readId(buf: Buffer, offset: number): string {
  const start = idStart(buf, offset);
  return buf.toString('utf8', start, idEndAt);
}

/** Decision fields of one record, read from its bytes. */
export interface RecordHead {
  readonly lastModifiedMs: number;
  readonly contentHash: number;
  readonly fetchMs: number;
  readonly valueCount: number;
  readonly outOfRange: number;
}

const headAt = (b: Buffer, o: number): RecordHead => ({
  lastModifiedMs: b.readDoubleLE(o + 8),
  contentHash: b.readDoubleLE(o + 16),
  fetchMs: b.readDoubleLE(o + 24),
  valueCount: b.readUInt32LE(o + 32),
  outOfRange: b.readUInt32LE(o + 36),
});

/** A stored record as read from a block. */
export interface BlockRecord extends RecordHead {
  readonly metadataId: string;
  readonly sourceId: string;
  readonly readerVersion: number;
  readonly body: Buffer;
}

/** Sources and record offsets of a block (an empty buffer is an empty block). */
function readBlock(data: Buffer): { sources: string[]; offsets: number[] } {
  if (data.length === 0) return { sources: [], offsets: [] };
  if (data[0] !== FORMAT && data[0] !== 2 && data[0] !== 1)
    throw new Error(`unknown record block format ${data[0]}`);
  const count = data.readUInt32LE(1);
  const nSources = data.readUInt16LE(5);
  let pos = 7;
  const sources: string[] = [];
  for (let i = 0; i < nSources; i++) {
    const n = data.readUInt16LE(pos);
    sources.push(data.toString('utf8', pos + 2, pos + 2 + n));
    pos += 2 + n;
  }
  const offsets: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    offsets[i] = pos;
    // Format 1 allowed an id of exactly ID_IN_BODY bytes: refused rather than read as format 2.
    if (data[0] === 1 && data.readUInt16LE(pos + 44) === ID_IN_BODY)
      throw new Error('record block format 1 with an id of 65,535 bytes');
    pos += data.readUInt32LE(pos);
  }
  return { sources, offsets };
}

function toBlockRecord(data: Buffer, o: number, sources: readonly string[]): BlockRecord {
  return {
    ...headAt(data, o),
    contentHash: hashAt(data, o),
    metadataId: readId(data, o),
    sourceId: sources[data.readUInt16LE(o + 4)] ?? '',
    readerVersion: data.readUInt16LE(o + 6),
    body: Buffer.from(data.subarray(bodyStart(data, o), o + data.readUInt32LE(o))),
  };
}

/** The record with this id in a block, if any. */
export function findInBlock(data: Buffer, id: string): BlockRecord | undefined {
  const { sources, offsets } = readBlock(data);
  const key = idKey(id);
  const idBytes = Buffer.from(id, 'utf8');
  for (const o of offsets) {
    if (keyAt(data, o) !== key) continue;
    const start = idStart(data, o);
    if (idBytes.equals(data.subarray(start, idEndAt))) return toBlockRecord(data, o, sources);
  }
  return undefined;
}

/** Every record of a block (readers, tests, the fault suite's version listing). */
export function blockRecords(data: Buffer): BlockRecord[] {
  const { sources, offsets } = readBlock(data);
  return offsets.map((o) => toBlockRecord(data, o, sources));
}

const SLAB = 8 << 20;
/** A partition's first slab; each next one doubles, up to SLAB (a daily export stays small). */
const FIRST_SLAB = 64 << 10;
/**
 * Staged records are kept in one set of slabs per range of PARTITION_BUCKETS buckets, so that the
 * merge, which runs in ascending bucket order, can let go of a range's slabs once it is past it:
 * the staged bytes and the merged blocks are not both held whole at the end of a large merge.
 */
const PARTITION_BUCKETS = 1024;
const PARTITIONS = BLOCK_BUCKETS / PARTITION_BUCKETS;
const TWO_21 = 2_097_152;
/**
 * The content hash of a record staged from a decoded export is not computed when it is staged nor
 * when it is stored (format 3): only where a decision reads it, from the record's body (`hashAt`,
 * `decide`). A first load compares nothing, and a re-sync of the same records compares bodies
 * byte for byte (equal bodies have equal hashes): hashing was ~0.7 us per glucose reading (a
 * serial multiply chain per byte), the largest single item of the client's CPU in `rowsOf`. The
 * hash function stays the one every stored hash was computed with, so a stored record's hash and a
 * staged one's are always comparable and VERSION_RULE's tie-break on it decides as before. A
 * computed hash is an integer below 2^53, never NaN.
 */
const HASH_PENDING = Number.NaN;

/** The content hash of the record at `o`: the stored one, or computed from its body when pending. */
function hashAt(b: Buffer, o: number): number {
  const h = b.readDoubleLE(o + 16);
  return Number.isNaN(h) ? hashBytes(b, bodyStart(b, o), o + b.readUInt32LE(o)) : h;
}

/** Whether two records have the same body bytes. */
function sameBody(a: Buffer, ao: number, b: Buffer, bo: number): boolean {
  const al = a.readUInt32LE(ao) - (bodyStart(a, ao) - ao);
  const bl = b.readUInt32LE(bo) - (bodyStart(b, bo) - bo);
  if (al !== bl) return false;
  const as = bodyStart(a, ao);
  const bs = bodyStart(b, bo);
  return a.compare(b, bs, bs + bl, as, as + al) === 0;
}

/**
 * The heads of two records of one id as `compare` and the conflict check see them: pending hashes
 * are computed, except when both are pending and the bodies are the same bytes: then both are given
 * one value (0), since their hashes are equal and only their equality can matter.
 */
function decidingHeads(a: Buffer, ao: number, b: Buffer, bo: number): [RecordHead, RecordHead] {
  const ha = headAt(a, ao);
  const hb = headAt(b, bo);
  const pa = Number.isNaN(ha.contentHash);
  const pb = Number.isNaN(hb.contentHash);
  if (!pa && !pb) return [ha, hb];
  if (pa && pb && sameBody(a, ao, b, bo))
    return [
      { ...ha, contentHash: 0 },
      { ...hb, contentHash: 0 },
    ];
  return [pa ? { ...ha, contentHash: hashAt(a, ao) } : ha, pb ? { ...hb, contentHash: hashAt(b, bo) } : hb];
}

/** The staged records of one bucket, in (id key, id bytes, staging) order. */
export interface IncomingBucket {
  readonly bufs: Buffer[];
  readonly offsets: number[];
  /** The id key of each record (ids are compared only where keys are equal). */
  readonly keys: ArrayLike<number>;
}

/**
 * Copies `src[from, end)` into `dst` at `at`; returns where it ended. Short runs (a splice's few
 * bytes, the fields after it) byte by byte: below ~48 bytes `Buffer.copy`'s per-call cost (node 20
 * allocates a view for every partial copy) is larger than the copy (three copies per glucose
 * reading staged: 210 -> 140 ms a million in a micro-benchmark).
 */
function copyInto(src: Buffer, from: number, end: number, dst: Buffer, at: number): number {
  const n = end - from;
  if (n > 48) {
    src.copy(dst, at, from, end);
    return at + n;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i] as number;
  return at + n;
}

/**
 * The rows a file stages, held as record bytes in a few large slabs (no object per row): a
 * million glucose readings take ~180 MB here instead of ~1.5 GB of row objects.
 */
export class IncomingRecords {
  /** Every slab, by index (`meta`); a partition's current slab is `slab` while it is written. */
  private slabs: Buffer[] = [];
  /** Per partition: its slab indexes, its current slab and the write position in it. */
  private partSlabs: number[][] = Array.from({ length: PARTITIONS }, () => []);
  private partSlab: Buffer[] = Array.from({ length: PARTITIONS }, () => Buffer.alloc(0));
  private partPos = new Uint32Array(PARTITIONS);
  /** The partition being written and its slab/position (loaded by `room`). */
  private part = 0;
  private slab: Buffer = Buffer.alloc(0);
  private pos = 0;
  /**
   * Per staged record i: its key, slab and offset at [3i, 3i + 1, 3i + 2]. One array, not three:
   * the merge reads them in bucket order, at random places of staging order, and the three values
   * of a record then come in one cache line instead of three.
   */
  private meta = new Uint32Array(3 * 1024);
  count = 0;

  /** Selects the partition of `key` and makes room for `length` bytes in its current slab. */
  private room(length: number, key: number): void {
    const part = Math.floor((key % BLOCK_BUCKETS) / PARTITION_BUCKETS);
    if (part !== this.part) {
      this.partSlab[this.part] = this.slab;
      this.partPos[this.part] = this.pos;
      this.part = part;
      this.slab = this.partSlab[part] as Buffer;
      this.pos = this.partPos[part] as number;
    }
    if (this.pos + length <= this.slab.length) return;
    const own = this.partSlabs[part] as number[];
    const size = Math.min(SLAB, FIRST_SLAB * 2 ** Math.min(own.length, 8));
    this.slab = Buffer.allocUnsafe(Math.max(size, length));
    if (this.slabs.length >= 0xffff) throw new Error('too many staging slabs');
    own.push(this.slabs.length);
    this.slabs.push(this.slab);
    this.pos = 0;
  }

  private head(
    o: number,
    readerVersion: number,
    lastModifiedMs: number,
    contentHash: number,
    fetchMs: number,
    valueCount: number,
    outOfRange: number,
    id: string,
    idBytes: number,
    key: number,
  ): void {
    const b = this.slab;
    b.writeUInt16LE(0, o + 4);
    b.writeUInt16LE(readerVersion, o + 6);
    b.writeDoubleLE(lastModifiedMs, o + 8);
    b.writeDoubleLE(contentHash, o + 16);
    b.writeDoubleLE(fetchMs, o + 24);
    b.writeUInt32LE(valueCount >>> 0, o + 32);
    b.writeUInt32LE(outOfRange >>> 0, o + 36);
    b.writeUInt32LE(key, o + 40);
    if (idBytes === ID_IN_BODY) b.writeUInt16LE(ID_IN_BODY, o + 44);
    else {
      if (idBytes >= ID_IN_BODY) throw new Error(`record id of ${idBytes} bytes: too long to store`);
      b.writeUInt16LE(idBytes, o + 44);
      b.write(id, o + HEADER, idBytes, 'utf8');
    }
    if (3 * this.count === this.meta.length) this.grow();
    const own = this.partSlabs[this.part] as number[];
    const m = 3 * this.count;
    this.meta[m] = key;
    this.meta[m + 1] = own[own.length - 1] as number;
    this.meta[m + 2] = o;
    this.count++;
  }

  /** A row built by `toStoredRecord` (tests, callers outside the pipeline). */
  add(row: StoredRecordInput): void {
    const idBytes = Buffer.byteLength(row.metadataId, 'utf8');
    const length = HEADER + idBytes + row.body.length;
    const key = idKey(row.metadataId);
    this.room(length, key);
    const o = this.pos;
    this.slab.writeUInt32LE(length, o);
    this.slab.set(row.body, o + HEADER + idBytes);
    this.pos += length;
    this.head(
      o,
      row.readerVersion,
      row.lastModifiedMs,
      row.contentHash,
      row.fetchMs,
      row.valueCount,
      row.outOfRange,
      row.metadataId,
      idBytes,
      key,
    );
  }

  /**
   * A decoded record, encoded straight into the arena under `type` (the reader schema of
   * `readerVersion`) with appRecordFetchTimeEpochMillis zeroed: no body buffer and no row object
   * per record. `id` is the record's id as stored (NUL characters removed).
   */
  addRecord(
    type: avro.Type,
    readerVersion: number,
    id: string,
    record: HealthRecord,
    valueCount: number,
    outOfRange: number,
    idInBody = false,
  ): void {
    const idField = idInBody ? ID_IN_BODY : Buffer.byteLength(id, 'utf8');
    const idBytes = idInBody ? 0 : idField;
    const key = idKey(id);
    // The record's partition (its slab); the body's size is known only once encoded.
    this.room(0, key);
    const fetchMs = record.appRecordFetchTimeEpochMillis;
    const mutable = record as { appRecordFetchTimeEpochMillis: number };
    mutable.appRecordFetchTimeEpochMillis = 0;
    let bodyStart = this.pos + HEADER + idBytes;
    let end: number;
    try {
      end = bodyStart <= this.slab.length ? type.encode(record, this.slab, bodyStart) : -1;
      if (end < 0) {
        // Does not fit: a new slab (sized for the record when it is larger than a slab).
        this.pos = this.slab.length;
        this.room(2 * (HEADER + idBytes + type.toBuffer(record).length), key);
        bodyStart = HEADER + idBytes;
        end = type.encode(record, this.slab, bodyStart);
        if (end < 0) throw new Error('record larger than its slab');
      }
    } finally {
      mutable.appRecordFetchTimeEpochMillis = fetchMs;
    }
    const o = this.pos;
    this.slab.writeUInt32LE(end - o, o);
    this.pos = end;
    this.head(
      o,
      readerVersion,
      record.metadata.lastModifiedTimeEpochMillis,
      HASH_PENDING,
      fetchMs,
      valueCount,
      outOfRange,
      id,
      idField,
      key,
    );
  }

  /**
   * A decoded record whose body is its own bytes in the export, `bytes[start, fetchAt)` with the
   * splices inserted, then one zero (the fetch time as 0): what `addRecord` would encode, without
   * encoding (canonical-body.ts decides when the two are the same bytes).
   */
  addBody(
    readerVersion: number,
    id: string,
    record: HealthRecord,
    bytes: Buffer,
    start: number,
    fetchAt: number,
    splices: Splices,
    valueCount: number,
    outOfRange: number,
    idInBody = false,
  ): void {
    const idField = idInBody ? ID_IN_BODY : Buffer.byteLength(id, 'utf8');
    const idBytes = idInBody ? 0 : idField;
    let spliced = 0;
    for (let k = 0; k < splices.n; k++) spliced += (splices.bytes[k] as Buffer).length;
    const length = HEADER + idBytes + (fetchAt - start) + spliced + 1;
    const key = idKey(id);
    this.room(length, key);
    const o = this.pos;
    const bodyStart = o + HEADER + idBytes;
    let from = start;
    let to = bodyStart;
    for (let k = 0; k < splices.n; k++) {
      const at = splices.at[k] as number;
      to = copyInto(bytes, from, at, this.slab, to);
      const splice = splices.bytes[k] as Buffer;
      to = copyInto(splice, 0, splice.length, this.slab, to);
      from = at;
    }
    copyInto(bytes, from, fetchAt, this.slab, to);
    this.slab[o + length - 1] = 0;
    this.slab.writeUInt32LE(length, o);
    this.pos += length;
    this.head(
      o,
      readerVersion,
      record.metadata.lastModifiedTimeEpochMillis,
      HASH_PENDING,
      record.appRecordFetchTimeEpochMillis,
      valueCount,
      outOfRange,
      id,
      idField,
      key,
    );
  }

  private grow(): void {
    const m = new Uint32Array(2 * this.meta.length);
    m.set(this.meta);
    this.meta = m;
  }

  /**
   * The staged rows per bucket, buckets ascending; empties the arena. `rowsOf` must be called in
   * ascending bucket order: moving to a higher range of buckets releases the lower ranges' slabs.
   */
  takeByBucket(): { buckets: number[]; rowsOf(bucket: number): IncomingBucket } {
    const count = this.count;
    const meta = this.meta;
    const starts = new Uint32Array(BLOCK_BUCKETS + 1);
    for (let i = 0; i < count; i++) (starts[((meta[3 * i] as number) % BLOCK_BUCKETS) + 1] as number)++;
    for (let b = 0; b < BLOCK_BUCKETS; b++) starts[b + 1] = (starts[b + 1] as number) + (starts[b] as number);
    const order = new Uint32Array(count);
    const fill = starts.slice(0, BLOCK_BUCKETS);
    for (let i = 0; i < count; i++) {
      const b = (meta[3 * i] as number) % BLOCK_BUCKETS;
      order[fill[b] as number] = i;
      fill[b] = (fill[b] as number) + 1;
    }
    const buckets: number[] = [];
    for (let b = 0; b < BLOCK_BUCKETS; b++)
      if ((starts[b + 1] as number) > (starts[b] as number)) buckets.push(b);
    const slabs: (Buffer | undefined)[] = this.slabs;
    const partSlabs = this.partSlabs;
    this.slabs = [];
    this.partSlabs = Array.from({ length: PARTITIONS }, () => []);
    this.partSlab = Array.from({ length: PARTITIONS }, () => Buffer.alloc(0));
    this.partPos = new Uint32Array(PARTITIONS);
    this.part = 0;
    this.slab = Buffer.alloc(0);
    this.pos = 0;
    this.meta = new Uint32Array(3 * 1024);
    this.count = 0;
    // Partitions below this one have been let go of (their slabs can be collected).
    let released = 0;
    // The sort keys of one bucket (rowsOf returns copies).
    const scratch = new Uint32Array(BLOCK_BUCKETS);
    return {
      buckets,
      rowsOf(bucket) {
        // Buckets are asked for in ascending order: the slabs of the partitions below this
        // bucket's are no longer needed (the merged blocks are copies).
        const part = Math.floor(bucket / PARTITION_BUCKETS);
        if (part < released)
          throw new Error(`staged bucket ${bucket} asked for after its partition was released`);
        for (; released < part; released++)
          for (const k of partSlabs[released] as number[]) slabs[k] = undefined;
        const from = starts[bucket] as number;
        const n = (starts[bucket + 1] as number) - from;
        if (n >= TWO_21) throw new Error('too many staged records in one block');
        const keys = new Uint32Array(n);
        const bufs: Buffer[] = new Array(n);
        const offsets: number[] = new Array(n);
        if (n <= BLOCK_BUCKETS) {
          // Every key of the bucket is (a multiple of BLOCK_BUCKETS) + bucket: key - bucket + j is
          // (key, staging order j < BLOCK_BUCKETS) as one u32, sorted natively as integers, with
          // no division per record.
          const sorted = scratch.subarray(0, n);
          for (let j = 0; j < n; j++)
            sorted[j] = (meta[3 * (order[from + j] as number)] as number) - bucket + j;
          sorted.sort();
          for (let j = 0; j < n; j++) {
            const v = sorted[j] as number;
            const low = v & (BLOCK_BUCKETS - 1);
            keys[j] = v - low + bucket;
            const i = order[from + low] as number;
            bufs[j] = slabs[meta[3 * i + 1] as number] as Buffer;
            offsets[j] = meta[3 * i + 2] as number;
          }
        } else {
          // (key, staging order) as one float (a block of more than BLOCK_BUCKETS staged records).
          const sortKeys = new Float64Array(n);
          for (let j = 0; j < n; j++)
            sortKeys[j] = (meta[3 * (order[from + j] as number)] as number) * TWO_21 + j;
          sortKeys.sort();
          for (let j = 0; j < n; j++) {
            const v = sortKeys[j] as number;
            keys[j] = Math.floor(v / TWO_21);
            const i = order[from + (v % TWO_21)] as number;
            bufs[j] = slabs[meta[3 * i + 1] as number] as Buffer;
            offsets[j] = meta[3 * i + 2] as number;
          }
        }
        // Equal keys (rare): order by id bytes, then staging order (a stable sort).
        for (let j = 0; j < n; ) {
          let e = j + 1;
          const k = keys[j] as number;
          while (e < n && keys[e] === k) e++;
          if (e - j > 1) {
            const idx = Array.from({ length: e - j }, (_, x) => j + x);
            idx.sort(
              (a, b) =>
                compareIds(
                  bufs[a] as Buffer,
                  offsets[a] as number,
                  bufs[b] as Buffer,
                  offsets[b] as number,
                ) || a - b,
            );
            const nb = idx.map((x) => bufs[x] as Buffer);
            const no = idx.map((x) => offsets[x] as number);
            for (let x = 0; x < nb.length; x++) {
              bufs[j + x] = nb[x] as Buffer;
              offsets[j + x] = no[x] as number;
            }
          }
          j = e;
        }
        return { bufs, offsets, keys };
      },
    };
  }
}

/** A stored version outside the blocks (a row of health_records written before migration 0230). */
export interface LegacyVersion extends RecordHead {
  readonly metadataId: string;
  readonly sourceId: string;
}

export interface BlockConflict {
  readonly metadataId: string;
  readonly lastModifiedMs: number;
  readonly storedHash: number;
  readonly incomingHash: number;
  readonly storedSourceId: string;
  readonly kept: 'stored' | 'incoming';
}

export interface BlockMerge {
  /** The new block; undefined when nothing in it changed. */
  readonly data: Buffer | undefined;
  readonly count: number;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly conflicts: BlockConflict[];
  /** Legacy rows replaced by an incoming version (to delete from health_records). */
  readonly replacedLegacy: string[];
}

/** The incoming ids of a bucket (to look up legacy rows). */
export function incomingIds(rows: IncomingBucket): string[] {
  return rows.bufs.map((b, j) => readId(b, rows.offsets[j] as number));
}

/**
 * Merges the incoming rows of one bucket into its stored block (VERSION_RULE via `compare`):
 * one version per id within the file (the others count as unchanged), then per id: new ->
 * inserted; stored version older or losing the tie-break -> updated; else unchanged. Same
 * lastModified and different content is a conflict either way.
 */
export function mergeBlock(
  stored: Buffer | undefined,
  incoming: IncomingBucket,
  sourceId: string,
  compare: (a: RecordHead, b: RecordHead) => number,
  legacy?: ReadonlyMap<string, LegacyVersion>,
): BlockMerge {
  const data = stored ?? Buffer.alloc(0);
  const block = readBlock(data);
  const sourceOf = (o: number) => block.sources[data.readUInt16LE(o + 4)] ?? '';
  const { bufs, offsets, keys } = incoming;
  let unchanged = 0;
  let inserted = 0;
  let updated = 0;
  const conflicts: BlockConflict[] = [];
  const replacedLegacy: string[] = [];
  // Kept records in order: stored ones (with their source) or incoming ones (this source).
  const outBufs: Buffer[] = [];
  const outOffsets: number[] = [];
  const outSources: string[] = [];
  const keep = (b: Buffer, o: number, source: string) => {
    outBufs.push(b);
    outOffsets.push(o);
    outSources.push(source);
  };
  const storedOffsets = block.offsets;
  let s = 0;
  for (let i = 0; i < bufs.length; ) {
    // One version per id within the file: the preferred one (later staging wins a tie).
    let bestBuf = bufs[i] as Buffer;
    let bestOff = offsets[i] as number;
    const bestKey = keys[i] as number;
    let j = i + 1;
    for (
      ;
      j < bufs.length &&
      keys[j] === bestKey &&
      compareIds(bufs[j] as Buffer, offsets[j] as number, bestBuf, bestOff) === 0;
      j++
    ) {
      const [h, best] = decidingHeads(bufs[j] as Buffer, offsets[j] as number, bestBuf, bestOff);
      if (compare(h, best) >= 0) {
        bestBuf = bufs[j] as Buffer;
        bestOff = offsets[j] as number;
      }
      unchanged++;
    }
    i = j;
    let c = 1;
    while (s < storedOffsets.length) {
      const storedKey = keyAt(data, storedOffsets[s] as number);
      c =
        storedKey < bestKey
          ? -1
          : storedKey > bestKey
            ? 1
            : compareIds(data, storedOffsets[s] as number, bestBuf, bestOff);
      if (c >= 0) break;
      const o = storedOffsets[s] as number;
      keep(data, o, sourceOf(o));
      s++;
    }
    const currentOff = s < storedOffsets.length && c === 0 ? (storedOffsets[s] as number) : -1;
    const old =
      currentOff < 0 && legacy && legacy.size > 0 ? legacy.get(readId(bestBuf, bestOff)) : undefined;
    if (currentOff < 0 && !old) {
      inserted++;
      keep(bestBuf, bestOff, sourceId);
      continue;
    }
    let bestHead: RecordHead;
    let currentHead: RecordHead;
    if (currentOff >= 0) {
      [bestHead, currentHead] = decidingHeads(bestBuf, bestOff, data, currentOff);
      s++;
    } else {
      bestHead = { ...headAt(bestBuf, bestOff), contentHash: hashAt(bestBuf, bestOff) };
      currentHead = old as LegacyVersion;
    }
    const wins = compare(bestHead, currentHead) > 0;
    if (
      currentHead.lastModifiedMs === bestHead.lastModifiedMs &&
      currentHead.contentHash !== bestHead.contentHash
    ) {
      conflicts.push({
        metadataId: readId(bestBuf, bestOff),
        lastModifiedMs: bestHead.lastModifiedMs,
        storedHash: currentHead.contentHash,
        incomingHash: bestHead.contentHash,
        storedSourceId: currentOff >= 0 ? sourceOf(currentOff) : (old as LegacyVersion).sourceId,
        kept: wins ? 'incoming' : 'stored',
      });
    }
    if (wins) {
      updated++;
      keep(bestBuf, bestOff, sourceId);
      if (currentOff < 0) replacedLegacy.push(readId(bestBuf, bestOff));
    } else {
      unchanged++;
      if (currentOff >= 0) keep(data, currentOff, sourceOf(currentOff));
    }
  }
  if (inserted + updated === 0)
    return {
      data: undefined,
      count: storedOffsets.length,
      inserted,
      updated,
      unchanged,
      conflicts,
      replacedLegacy,
    };
  for (; s < storedOffsets.length; s++) {
    const o = storedOffsets[s] as number;
    keep(data, o, sourceOf(o));
  }
  // Only the sources some kept record still names.
  const sourceIndex = new Map<string, number>();
  let size = 7;
  for (let k = 0; k < outBufs.length; k++) {
    const src = outSources[k] as string;
    if (!sourceIndex.has(src)) {
      sourceIndex.set(src, sourceIndex.size);
      size += 2 + Buffer.byteLength(src, 'utf8');
    }
    size += (outBufs[k] as Buffer).readUInt32LE(outOffsets[k] as number);
  }
  if (sourceIndex.size > 0xffff) throw new Error('record block names too many sources');
  const out = Buffer.allocUnsafe(size);
  out[0] = FORMAT;
  out.writeUInt32LE(outBufs.length, 1);
  out.writeUInt16LE(sourceIndex.size, 5);
  let pos = 7;
  for (const src of sourceIndex.keys()) {
    const n = out.write(src, pos + 2, 'utf8');
    out.writeUInt16LE(n, pos);
    pos += 2 + n;
  }
  for (let k = 0; k < outBufs.length; k++) {
    const b = outBufs[k] as Buffer;
    const o = outOffsets[k] as number;
    const len = b.readUInt32LE(o);
    b.copy(out, pos, o, o + len);
    out.writeUInt16LE(sourceIndex.get(outSources[k] as string) as number, pos + 4);
    pos += len;
  }
  return { data: out, count: outBufs.length, inserted, updated, unchanged, conflicts, replacedLegacy };
}
