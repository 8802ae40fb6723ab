/**
 * Streaming reader of Avro object container files (Health Connect exports), with hard limits.
 *
 * Why not avsc's BlockDecoder: it has no limits (a declared block size of 2^50 waits forever, a
 * deflate bomb inflates until the process dies) and no snappy CRC check. Here the container framing
 * is read by hand, every size is checked before anything is allocated, and record bytes are still
 * decoded by avsc through a resolver from the embedded writer schema to our reader schema.
 *
 * Memory: at most one block (compressed + inflated) and its decoded records are held at a time.
 */
import { crc32, inflateRawSync } from 'node:zlib';
import type avro from 'avsc';
import snappy from 'snappyjs';
import type { CanonicalBody, RawRecords } from './canonical-body';
import { AvroFormatError, AvroLimitError, HealthDataError, RecordTypeMismatchError } from './errors';
import { resolveWriterSchema } from './schemas';
import { type HealthRecord, type RecordType, toRecordType } from './types';

export interface DecodeLimits {
  /** Whole object, compressed. */
  readonly maxFileBytes: number;
  /** Header metadata (schema text and other entries). */
  readonly maxHeaderBytes: number;
  /** One block as stored (compressed). */
  readonly maxBlockBytes: number;
  /** One block after decompression. */
  readonly maxInflatedBlockBytes: number;
  /** All blocks after decompression. */
  readonly maxInflatedTotalBytes: number;
  readonly maxRecords: number;
}

/**
 * Limits consistent with the function's time budget (lib/topology/health.ts: 120 s per batch).
 * A message that cannot finish inside the timeout is retried until the dead-letter queue and can
 * only die; a file over these limits is instead quarantined at once (AvroLimitError), a terminal
 * and recorded outcome. 1,000,000 records is the size the benchmark (`npm run bench -- health`)
 * runs end to end through the PostgreSQL store; a real export holds a few hundred. The byte limits
 * follow from it: a million glucose readings are ~100 MB, so 160 MiB stored / 512 MiB inflated.
 */
export const DEFAULT_LIMITS: DecodeLimits = {
  maxFileBytes: 160 * 1024 * 1024,
  maxHeaderBytes: 1024 * 1024,
  maxBlockBytes: 64 * 1024 * 1024,
  maxInflatedBlockBytes: 64 * 1024 * 1024,
  maxInflatedTotalBytes: 512 * 1024 * 1024,
  maxRecords: 1_000_000,
};

export type Codec = 'null' | 'deflate' | 'snappy';
export const CODECS: readonly Codec[] = ['null', 'deflate', 'snappy'];

export type AvroInput = Uint8Array | AsyncIterable<Uint8Array>;

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1
const SYNC_SIZE = 16;
const MAX_HEADER_ENTRIES = 1024;

/** Pull-based byte reader over a Buffer or an async iterable of chunks (an S3 body, a file stream). */
class ByteSource {
  private buf: Buffer;
  private pos = 0;
  private done: boolean;
  private readonly it: AsyncIterator<Uint8Array> | undefined;
  /** Bytes taken from the input so far. */
  received: number;

  constructor(
    input: AvroInput,
    private readonly maxBytes: number,
  ) {
    if (input instanceof Uint8Array) {
      this.buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      this.done = true;
      this.received = input.byteLength;
      if (this.received > maxBytes) throw new AvroLimitError('file size', this.received, maxBytes);
    } else {
      this.buf = Buffer.alloc(0);
      this.done = false;
      this.received = 0;
      this.it = input[Symbol.asyncIterator]();
    }
  }

  get available(): number {
    return this.buf.length - this.pos;
  }

  /** Bytes consumed by the parser so far. */
  get consumed(): number {
    return this.received - this.available;
  }

  /** Buffers until `n` bytes are available or the input ends; returns what is available. */
  async ensure(n: number): Promise<number> {
    if (this.available >= n || this.done || !this.it) return this.available;
    const parts: Buffer[] = [this.buf.subarray(this.pos)];
    let have = this.available;
    while (have < n) {
      const next = await this.it.next();
      if (next.done) {
        this.done = true;
        break;
      }
      const chunk = Buffer.isBuffer(next.value)
        ? next.value
        : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      this.received += chunk.length;
      if (this.received > this.maxBytes) throw new AvroLimitError('file size', this.received, this.maxBytes);
      parts.push(chunk);
      have += chunk.length;
    }
    this.buf = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, have);
    this.pos = 0;
    return this.available;
  }

  take(n: number): Buffer {
    if (this.available < n)
      throw new AvroFormatError(`truncated: needed ${n} bytes, ${this.available} remain`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Zigzag varint long (Avro `long`), at most 10 bytes, exact up to 2^53. */
  async readLong(what: string): Promise<number> {
    const avail = await this.ensure(10);
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (i >= avail) throw new AvroFormatError(`truncated while reading ${what}`);
      const b = this.buf[this.pos + i] as number;
      result += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) {
        this.pos += i + 1;
        const value = result % 2 === 0 ? result / 2 : -(result + 1) / 2;
        if (!Number.isSafeInteger(value)) throw new AvroFormatError(`${what} ${value} is not a safe integer`);
        return value;
      }
    }
    throw new AvroFormatError(`malformed varint in ${what}`);
  }

  async atEnd(): Promise<boolean> {
    return (await this.ensure(1)) === 0;
  }
}

export interface ContainerHeader {
  readonly codec: Codec;
  /** The embedded writer schema, as text. */
  readonly schemaJson: string;
  readonly metadata: Readonly<Record<string, Buffer>>;
  readonly sync: Buffer;
}

async function readHeader(src: ByteSource, limits: DecodeLimits): Promise<ContainerHeader> {
  const head = await src.ensure(MAGIC.length);
  if (head === 0) throw new AvroFormatError('empty file (0 bytes): not an Avro object container');
  const magic = src.take(Math.min(head, MAGIC.length));
  if (!magic.equals(MAGIC)) {
    throw new AvroFormatError(
      `not an Avro object container: starts with 0x${magic.toString('hex')} instead of 0x${MAGIC.toString('hex')} ("Obj\\x01")`,
    );
  }
  const metadata: Record<string, Buffer> = {};
  let headerBytes = 0;
  let entries = 0;
  for (;;) {
    let count = await src.readLong('header map block count');
    if (count === 0) break;
    if (count < 0) {
      count = -count;
      await src.readLong('header map block size');
    }
    entries += count;
    if (entries > MAX_HEADER_ENTRIES) throw new AvroLimitError('header entries', entries, MAX_HEADER_ENTRIES);
    for (let i = 0; i < count; i++) {
      const keyLength = await src.readLong('header key length');
      if (keyLength < 0) throw new AvroFormatError('negative header key length');
      headerBytes += keyLength;
      if (headerBytes > limits.maxHeaderBytes) {
        throw new AvroLimitError('header size', headerBytes, limits.maxHeaderBytes);
      }
      if ((await src.ensure(keyLength)) < keyLength) throw new AvroFormatError('truncated header');
      const key = src.take(keyLength).toString('utf8');
      const valueLength = await src.readLong('header value length');
      if (valueLength < 0) throw new AvroFormatError('negative header value length');
      headerBytes += valueLength;
      if (headerBytes > limits.maxHeaderBytes) {
        throw new AvroLimitError('header size', headerBytes, limits.maxHeaderBytes);
      }
      if ((await src.ensure(valueLength)) < valueLength) throw new AvroFormatError('truncated header');
      metadata[key] = Buffer.from(src.take(valueLength));
    }
  }
  if ((await src.ensure(SYNC_SIZE)) < SYNC_SIZE)
    throw new AvroFormatError('truncated header: no sync marker');
  const sync = Buffer.from(src.take(SYNC_SIZE));
  const schema = metadata['avro.schema'];
  if (!schema) throw new AvroFormatError('header has no avro.schema entry');
  const codec = (metadata['avro.codec'] ?? Buffer.from('null')).toString('utf8');
  if (!(CODECS as readonly string[]).includes(codec)) {
    throw new AvroFormatError(`unsupported codec ${JSON.stringify(codec)} (supported: ${CODECS.join(', ')})`);
  }
  return { codec: codec as Codec, schemaJson: schema.toString('utf8'), metadata, sync };
}

/** Declared uncompressed length at the start of a raw snappy stream (unsigned varint). */
function snappyDeclaredLength(data: Buffer): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < Math.min(5, data.length); i++) {
    const b = data[i] as number;
    result += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return result;
  }
  throw new AvroFormatError('snappy block has a malformed length preamble');
}

function inflateBlock(codec: Codec, data: Buffer, maxOut: number, limitName: string): Buffer {
  if (codec === 'null') {
    if (data.length > maxOut) throw new AvroLimitError(limitName, data.length, maxOut);
    return data;
  }
  if (codec === 'deflate') {
    try {
      // maxOutputLength stops inflation as soon as the output passes the limit: a bomb costs at
      // most `maxOut` bytes of memory, not its declared payload.
      return inflateRawSync(data, { maxOutputLength: maxOut });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
        throw new AvroLimitError(limitName, maxOut + 1, maxOut);
      }
      throw new AvroFormatError(`deflate block is corrupt: ${(error as Error).message}`, { cause: error });
    }
  }
  // snappy: the compressed bytes followed by the big-endian CRC32 of the UNcompressed data.
  if (data.length < 5) throw new AvroFormatError('snappy block shorter than its CRC');
  const compressed = data.subarray(0, data.length - 4);
  const declared = snappyDeclaredLength(compressed);
  if (declared > maxOut) throw new AvroLimitError(limitName, declared, maxOut);
  let out: Buffer;
  try {
    out = Buffer.from(snappy.uncompress(compressed, maxOut));
  } catch (error) {
    throw new AvroFormatError(`snappy block is corrupt: ${(error as Error).message}`, { cause: error });
  }
  const expected = data.readUInt32BE(data.length - 4);
  const actual = crc32(out) >>> 0;
  if (expected !== actual) {
    throw new AvroFormatError(
      `snappy block CRC32 mismatch (stored 0x${expected.toString(16)}, computed 0x${actual.toString(16)})`,
    );
  }
  return out;
}

/** Record type named by an object key or file name: `raw/<Type>/YYYY/MM/DD/<file>` or `<Type>_<millis>.avro`. */
export function recordTypeHintFromKey(key: string): string | undefined {
  const raw = /(?:^|\/)(?:raw|quarantine)\/([A-Za-z]+)\/\d{4}\/\d{2}\/\d{2}\/[^/]+$/.exec(key);
  if (raw) return raw[1];
  const file = /(?:^|\/)([A-Za-z]+)_\d+\.avro$/.exec(key);
  return file?.[1];
}

export interface OpenOptions {
  /** Object key or file name, for the record-type cross-check. */
  readonly key?: string;
  readonly limits?: Partial<DecodeLimits>;
  /**
   * Decode only the fields the pipeline reads (schemas.ts UNREAD_FIELDS are skipped), where stored
   * bodies are the file's own bytes (`canonicalBody`); the block's `raw.decodeFull` gives a whole
   * record when one is needed.
   */
  readonly analysis?: boolean;
}

export interface DecodedBlock<T> {
  readonly index: number;
  readonly records: T[];
  /**
   * The block's bytes, where each record ends and the canonical-body check, when the export's writer
   * schema has the reader's layout (`AvroExport.canonicalBody`).
   */
  readonly raw?: RawRecords;
}

export interface AvroExport<T = HealthRecord> {
  readonly header: ContainerHeader;
  readonly recordType: RecordType;
  readonly writerSchemaName: string;
  readonly readerVersion: number;
  /** Set when records' stored bodies can be taken from the file's bytes (canonical-body.ts). */
  readonly canonicalBody: CanonicalBody | undefined;
  /** Decoded blocks, in file order; each block's records are released once the consumer moves on. */
  blocks(): AsyncGenerator<DecodedBlock<T>>;
  records(): AsyncGenerator<T>;
  readonly stats: { bytesRead: number; blocksRead: number; recordsRead: number; inflatedBytes: number };
}

/**
 * Reads the header, detects the record type from the embedded schema name (cross-checked against
 * the key), and prepares the resolver. Throws a HealthDataError for anything wrong with the data.
 */
export async function openExport<T = HealthRecord>(
  input: AvroInput,
  options: OpenOptions = {},
): Promise<AvroExport<T>> {
  const limits: DecodeLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const src = new ByteSource(input, limits.maxFileBytes);
  const header = await readHeader(src, limits);
  const resolution = resolveWriterSchema(header.schemaJson);
  if (options.key) {
    const hint = recordTypeHintFromKey(options.key);
    if (hint !== undefined && toRecordType(hint) !== resolution.recordType) {
      throw new RecordTypeMismatchError(hint, resolution.writerSchemaName);
    }
  }
  const stats = { bytesRead: src.consumed, blocksRead: 0, recordsRead: 0, inflatedBytes: 0 };
  let started = false;
  const analysis = options.analysis ? resolution.analysis : undefined;
  const decoder: Decoder = analysis ?? { type: resolution.reader.type, resolver: resolution.resolver };
  const full = analysis
    ? (raw: Buffer) => (start: number) => resolution.reader.type.decode(raw, start, resolution.resolver).value
    : undefined;

  async function* blocks(): AsyncGenerator<DecodedBlock<T>> {
    if (started) throw new Error('an export can be iterated once');
    started = true;
    for (let index = 0; !(await src.atEnd()); index++) {
      const count = await src.readLong('block record count');
      const size = await src.readLong('block size');
      if (count < 0 || size < 0) throw new AvroFormatError(`block ${index} has a negative count or size`);
      if (size > limits.maxBlockBytes) throw new AvroLimitError('block size', size, limits.maxBlockBytes);
      if (stats.recordsRead + count > limits.maxRecords) {
        throw new AvroLimitError('record count', stats.recordsRead + count, limits.maxRecords);
      }
      const have = await src.ensure(size + SYNC_SIZE);
      if (have < size + SYNC_SIZE) {
        throw new AvroFormatError(
          `truncated: block ${index} declares ${size} bytes + sync marker, only ${have} bytes remain`,
        );
      }
      const data = src.take(size);
      const sync = src.take(SYNC_SIZE);
      if (!sync.equals(header.sync)) {
        throw new AvroFormatError(`sync marker mismatch after block ${index}: the file is corrupt`);
      }
      const remainingTotal = limits.maxInflatedTotalBytes - stats.inflatedBytes;
      const perBlock = Math.min(limits.maxInflatedBlockBytes, remainingTotal);
      const limitName =
        perBlock === limits.maxInflatedBlockBytes ? 'inflated block size' : 'inflated total size';
      const raw = inflateBlock(header.codec, data, perBlock, limitName);
      stats.inflatedBytes += raw.length;
      stats.bytesRead = src.consumed;
      // Every record takes at least one byte, so more records than bytes is a lie.
      if (count > raw.length) {
        throw new AvroFormatError(`block ${index} declares ${count} records in ${raw.length} bytes`);
      }
      const canonicalBody = resolution.canonicalBody;
      const ends = canonicalBody ? new Uint32Array(count) : undefined;
      const records = decodeBlock<T>(raw, count, decoder, index, ends);
      stats.blocksRead++;
      stats.recordsRead += count;
      yield canonicalBody && ends
        ? { index, records, raw: { bytes: raw, ends, canonicalBody, decodeFull: full?.(raw) } }
        : { index, records };
    }
    stats.bytesRead = src.consumed;
  }

  async function* records(): AsyncGenerator<T> {
    for await (const block of blocks()) yield* block.records;
  }

  return {
    header,
    recordType: resolution.recordType,
    writerSchemaName: resolution.writerSchemaName,
    readerVersion: resolution.reader.version,
    canonicalBody: resolution.canonicalBody,
    blocks,
    records,
    stats,
  };
}

interface Decoder {
  readonly type: avro.Type;
  readonly resolver: avro.Resolver;
}

function decodeBlock<T>(
  raw: Buffer,
  count: number,
  { type, resolver }: Decoder,
  blockIndex: number,
  ends?: Uint32Array,
): T[] {
  const out = new Array<T>(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    let result: { value: unknown; offset: number };
    try {
      result = type.decode(raw, pos, resolver);
    } catch (error) {
      if (error instanceof HealthDataError) throw error;
      throw new AvroFormatError(
        `record ${i} of block ${blockIndex} is corrupt: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    if (result.offset < 0) {
      throw new AvroFormatError(`record ${i} of block ${blockIndex} runs past the end of its block`);
    }
    out[i] = result.value as T;
    pos = result.offset;
    if (ends) ends[i] = pos;
  }
  if (pos !== raw.length) {
    throw new AvroFormatError(`block ${blockIndex} has ${raw.length - pos} bytes after its ${count} records`);
  }
  return out;
}

/** Whole-file convenience for small inputs and tests: all records in memory. */
export async function decodeExport<T = HealthRecord>(
  input: AvroInput,
  options: OpenOptions = {},
): Promise<{
  recordType: RecordType;
  writerSchemaName: string;
  readerVersion: number;
  header: ContainerHeader;
  records: T[];
}> {
  const file = await openExport<T>(input, options);
  const records: T[] = [];
  for await (const block of file.blocks()) {
    for (const r of block.records) records.push(r);
  }
  return {
    recordType: file.recordType,
    writerSchemaName: file.writerSchemaName,
    readerVersion: file.readerVersion,
    header: file.header,
    records,
  };
}
