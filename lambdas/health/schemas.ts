/**
 * Reader-schema registry: our versioned reader schemas (schemas/avro/v<N>/<Type>.avsc, compiled into
 * reader-schemas.generated.ts) and resolution of a file's embedded writer schema against them.
 */
import avro from 'avsc';
import { type CanonicalBody, canonicalBody } from './canonical-body';
import { AvroFormatError, SchemaResolutionError, UnknownRecordTypeError } from './errors';
import { READER_SCHEMA_FILES } from './reader-schemas.generated';
import { type RecordType, toRecordType } from './types';

export const AVRO_NAMESPACE = 'io.github.hitoshura25.healthsyncapp.data.avro';

interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
}
interface InternalType {
  itemsType?: InternalType;
  valuesType?: InternalType;
  _read(tap: Tap): unknown;
  _skip(tap: Tap): void;
}

/**
 * avsc trusts the item count of an array or map block: a hostile count (2^40) makes it loop for
 * hours over a buffer that ran out long ago. Every item takes at least one byte, so a count larger
 * than the bytes left is impossible; these types refuse it instead of spinning.
 */
function checkCount(n: number, tap: Tap): void {
  if (!(n <= tap.buf.length - tap.pos)) {
    throw new AvroFormatError(
      `array/map block declares ${n} items but only ${tap.buf.length - tap.pos} bytes remain`,
    );
  }
}

function blockCount(tap: Tap): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong();
  }
  if (n) checkCount(n, tap);
  return n;
}

class BoundedArrayType extends avro.types.ArrayType {
  _read(tap: Tap): unknown[] {
    const items = (this as unknown as InternalType).itemsType as InternalType;
    const out: unknown[] = [];
    for (let n = blockCount(tap); n; n = blockCount(tap)) {
      while (n--) out.push(items._read(tap));
    }
    return out;
  }

  _skip(tap: Tap): void {
    const items = (this as unknown as InternalType).itemsType as InternalType;
    for (let n = blockCount(tap); n; n = blockCount(tap)) {
      while (n--) items._skip(tap);
    }
  }
}

class BoundedMapType extends avro.types.MapType {
  _read(tap: Tap): Record<string, unknown> {
    const values = (this as unknown as InternalType).valuesType as InternalType;
    const out: Record<string, unknown> = {};
    for (let n = blockCount(tap); n; n = blockCount(tap)) {
      while (n--) {
        const key = (tap as unknown as { readString(): string }).readString();
        out[key] = values._read(tap);
      }
    }
    return out;
  }

  _skip(tap: Tap): void {
    const values = (this as unknown as InternalType).valuesType as InternalType;
    for (let n = blockCount(tap); n; n = blockCount(tap)) {
      while (n--) {
        (tap as unknown as { skipString(): void }).skipString();
        values._skip(tap);
      }
    }
  }
}

const typeHook = (schema: avro.Schema, opts: avro.ForSchemaOptions): avro.Type | undefined => {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined;
  const kind = (schema as { type?: unknown }).type;
  if (kind === 'array') return new BoundedArrayType(schema as never, opts) as unknown as avro.Type;
  if (kind === 'map') return new BoundedMapType(schema as never, opts) as unknown as avro.Type;
  return undefined;
};

/**
 * Options for every Type we build, so writer types skip as safely as reader types read. A fresh
 * object each time: avsc keeps its name registry in the options object it is given.
 */
export function avroTypeOptions(): Partial<avro.ForSchemaOptions> {
  return { typeHook, wrapUnions: 'auto' };
}

export interface ReaderSchema {
  readonly recordType: RecordType;
  readonly version: number;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly type: avro.Type;
}

const readers = new Map<string, ReaderSchema>();

function versions(): number[] {
  return Object.keys(READER_SCHEMA_FILES)
    .map((v) => Number(v.slice(1)))
    .sort((a, b) => a - b);
}

/** Our reader schema for a type: the given version, or the latest version that defines the type. */
export function readerSchema(recordType: RecordType, version?: number): ReaderSchema {
  const candidates = versions().filter((v) => READER_SCHEMA_FILES[`v${v}`]?.[recordType] !== undefined);
  const chosen = version ?? candidates[candidates.length - 1];
  if (chosen === undefined || !candidates.includes(chosen)) {
    throw new Error(`no reader schema v${version ?? '?'} for ${recordType}`);
  }
  const cacheKey = `${recordType}@${chosen}`;
  const cached = readers.get(cacheKey);
  if (cached) return cached;
  const schema = READER_SCHEMA_FILES[`v${chosen}`]?.[recordType] as Record<string, unknown>;
  const reader: ReaderSchema = {
    recordType,
    version: chosen,
    schema,
    type: avro.Type.forSchema(schema as avro.Schema, avroTypeOptions()),
  };
  readers.set(cacheKey, reader);
  return reader;
}

export function readerVersions(recordType: RecordType): number[] {
  return versions().filter((v) => READER_SCHEMA_FILES[`v${v}`]?.[recordType] !== undefined);
}

/** `AvroBloodGlucoseRecord` / `io.github...AvroBloodGlucoseRecord` from a parsed writer schema. */
export function writerSchemaName(schema: unknown): string {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new SchemaResolutionError('embedded schema is not a record schema');
  }
  const s = schema as { type?: unknown; name?: unknown; namespace?: unknown };
  if (s.type !== 'record' || typeof s.name !== 'string') {
    throw new SchemaResolutionError('embedded schema is not a named record schema');
  }
  if (s.name.includes('.') || typeof s.namespace !== 'string') return s.name;
  return `${s.namespace}.${s.name}`;
}

export interface Resolution {
  readonly recordType: RecordType;
  readonly writerSchemaName: string;
  readonly reader: ReaderSchema;
  readonly writerType: avro.Type;
  readonly resolver: avro.Resolver;
  /** Set when the writer has the reader's binary layout: stored bodies can be the file's bytes. */
  readonly canonicalBody: CanonicalBody | undefined;
  /**
   * The reader without the fields the pipeline never reads (`UNREAD_FIELDS`), resolved from the
   * same writer: avsc skips those bytes instead of building strings and objects (~30 % of decoding
   * a glucose export). Only where `canonicalBody` is set, since the stored body is then the file's
   * own bytes, which keep every field; a record that is not canonical is decoded again in full
   * before it is re-encoded (`RawRecords.decodeFull`).
   */
  readonly analysis: { readonly type: avro.Type; readonly resolver: avro.Resolver } | undefined;
}

/**
 * Metadata fields no validation, processor, narrative or training example reads (the device and
 * the app's own record id). Decoded records given to the pipeline lack them (`Metadata` marks them
 * optional); stored records keep them.
 */
export const UNREAD_FIELDS: readonly string[] = ['clientRecordId', 'device'];

/** The reader schema with `UNREAD_FIELDS` left out of its metadata record. */
function analysisSchema(schema: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const fields = schema.fields as { name: string; type: unknown }[];
  return {
    ...schema,
    fields: fields.map((f) => {
      const t = f.type as { type?: unknown; fields?: { name: string }[] };
      if (f.name !== 'metadata' || t.type !== 'record' || !t.fields) return f;
      return { ...f, type: { ...t, fields: t.fields.filter((m) => !UNREAD_FIELDS.includes(m.name)) } };
    }),
  };
}

const resolutions = new Map<string, Resolution>();
const MAX_CACHED_RESOLUTIONS = 64;

/**
 * Record type from the embedded schema name (base or Avro-prefixed), then a resolver from that
 * writer schema to our latest reader schema for the type. Cached by schema text: every export of a
 * type embeds the same schema, so this runs once per type per container.
 */
export function resolveWriterSchema(schemaJson: string): Resolution {
  const cached = resolutions.get(schemaJson);
  if (cached) return cached;
  let parsed: unknown;
  try {
    parsed = JSON.parse(schemaJson);
  } catch (error) {
    throw new AvroFormatError('avro.schema in the header is not valid JSON', { cause: error });
  }
  const name = writerSchemaName(parsed);
  const recordType = toRecordType(name);
  if (!recordType) throw new UnknownRecordTypeError(name);
  const reader = readerSchema(recordType);
  let writerType: avro.Type;
  let resolver: avro.Resolver;
  try {
    writerType = avro.Type.forSchema(parsed as avro.Schema, avroTypeOptions());
    resolver = reader.type.createResolver(writerType);
  } catch (error) {
    throw new SchemaResolutionError(
      `writer schema ${name} does not resolve against reader ${recordType} v${reader.version}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const canonical = canonicalBody(writerType, reader.type);
  let analysis: Resolution['analysis'];
  if (canonical) {
    const type = avro.Type.forSchema(analysisSchema(reader.schema) as avro.Schema, avroTypeOptions());
    analysis = { type, resolver: type.createResolver(writerType) };
  }
  const resolution: Resolution = {
    recordType,
    writerSchemaName: name,
    reader,
    writerType,
    resolver,
    canonicalBody: canonical,
    analysis,
  };
  if (resolutions.size >= MAX_CACHED_RESOLUTIONS) resolutions.clear();
  resolutions.set(schemaJson, resolution);
  return resolution;
}
