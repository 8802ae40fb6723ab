/**
 * A record's stored body taken from the export's own bytes instead of re-encoding the decoded
 * record, when that gives the same bytes.
 *
 * The record store keeps each record as Avro binary under its reader schema with
 * appRecordFetchTimeEpochMillis zeroed (`IncomingRecords.addRecord`), and decides on a hash of
 * those bytes. Re-encoding every decoded record was the largest client cost of staging a large
 * export (avsc's encode: ~40 % of the staging time of 1,000,000 glucose readings). When the file's
 * writer schema has the reader schema's binary layout (same fields in the same order with the same
 * names, same enum symbols, same union branches: only names, namespaces, aliases, docs and defaults
 * differ, as with the exporting app's schemas and ours; a nested record of the reader may add fields
 * with defaults at its end), the bytes of a record as read from the
 * file ARE what the encoder would write, provided the writer wrote them canonically. This module
 * checks exactly that, per record, and says where the fetch time starts (the reader's last field):
 * the body is then the record's bytes up to there followed by a zero (the fetch time as 0), with
 * the encoded defaults of fields the reader added at the end of a nested record spliced in.
 *
 * Canonical means what avsc's encoder writes for the decoded value: every varint in its shortest
 * form, every string valid UTF-8 (the decoder replaces invalid bytes, the encoder would write the
 * replacement), booleans 0 or 1, no NaN (a NaN's payload is not kept through a JS number). A record
 * that is not canonical is re-encoded as before: the stored bytes and hash never depend on the path.
 * Schemas with arrays or maps (heart rate samples, sleep stages) are not checked: always re-encoded.
 */
import { isUtf8 } from 'node:buffer';
import type avro from 'avsc';

/** The fetch time field the stored body zeroes; it must be the reader's last field. */
const FETCH_FIELD = 'appRecordFetchTimeEpochMillis';

/**
 * Walks one value's bytes from `pos` (record end `end`); returns the position after it, or -1 when
 * the bytes are not the canonical encoding of what the decoder read.
 */
type Step = (b: Buffer, pos: number, end: number) => number;

/** The (zigzag-encoded) value of the last varint read by `varint`. */
let lastVarint = 0;

/**
 * Where the encoder would write bytes the file does not hold: the encoded defaults of fields the
 * reader added at the end of a nested record (metadata.recordingMethod in glucose v2), in order.
 */
export interface Splices {
  n: number;
  readonly at: number[];
  readonly bytes: Buffer[];
}

/**
 * A decoded block's own bytes in the export and the check that says when a record's stored body can
 * be taken from them instead of re-encoding it.
 */
export interface RawRecords {
  readonly bytes: Buffer;
  /** Record i is bytes[ends[i - 1] ?? 0, ends[i]). */
  readonly ends: Uint32Array;
  readonly canonicalBody: CanonicalBody;
  /**
   * Set when the block's records were decoded without the fields the pipeline never reads
   * (schemas.ts UNREAD_FIELDS): the whole record at `start`, for re-encoding one that is not
   * canonical.
   */
  readonly decodeFull?: (start: number) => unknown;
}

export function newSplices(): Splices {
  return { n: 0, at: [], bytes: [] };
}

/** The splices of the record being walked (set by the CanonicalBody call). */
let splices: Splices = newSplices();

/** A varint at pos: its end, or -1 when longer than needed (a last byte of 0 after others) or cut off. */
function varint(b: Buffer, pos: number, end: number): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 10 && pos < end; i++) {
    const x = b[pos++] as number;
    result += (x & 0x7f) * scale;
    if ((x & 0x80) === 0) {
      if (x === 0 && i > 0) return -1;
      lastVarint = result;
      return pos;
    }
    scale *= 128;
  }
  return -1;
}

const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

const longStep: Step = varint;

const stringStep: Step = (b, pos, end) => {
  const p = varint(b, pos, end);
  if (p < 0) return -1;
  const n = unzigzag(lastVarint);
  if (n < 0 || p + n > end) return -1;
  for (let i = p; i < p + n; i++) {
    // Non-ASCII: the exact check (rare in these exports; ids, package names and zones are ASCII).
    if ((b[i] as number) >= 0x80) return isUtf8(b.subarray(p, p + n)) ? p + n : -1;
  }
  return p + n;
};

const bytesStep: Step = (b, pos, end) => {
  const p = varint(b, pos, end);
  if (p < 0) return -1;
  const n = unzigzag(lastVarint);
  return n < 0 || p + n > end ? -1 : p + n;
};

interface AvscType {
  readonly typeName: string;
  readonly fields?: readonly {
    readonly name: string;
    readonly type: AvscType & { toBuffer(value: unknown): Buffer };
    defaultValue(): unknown;
  }[];
  readonly symbols?: readonly string[];
  readonly types?: readonly AvscType[];
  readonly size?: number;
}

/** The walker for a writer type whose layout equals the reader type's; undefined otherwise. */
function compile(writer: AvscType, reader: AvscType): Step | undefined {
  if (writer.typeName !== reader.typeName) return undefined;
  switch (writer.typeName) {
    case 'null':
      return (_b, pos) => pos;
    case 'boolean':
      return (b, pos, end) => (pos < end && (b[pos] as number) <= 1 ? pos + 1 : -1);
    case 'int':
      // The encoder refuses an int outside 32 bits (the decoder does not): re-encoded, it throws.
      return (b, pos, end) => {
        const p = varint(b, pos, end);
        if (p < 0) return -1;
        const v = unzigzag(lastVarint);
        return v === (v | 0) ? p : -1;
      };
    case 'long':
      return longStep;
    case 'float':
      return (b, pos, end) => (pos + 4 <= end && !Number.isNaN(b.readFloatLE(pos)) ? pos + 4 : -1);
    case 'double':
      return (b, pos, end) => (pos + 8 <= end && !Number.isNaN(b.readDoubleLE(pos)) ? pos + 8 : -1);
    case 'string':
      return stringStep;
    case 'bytes':
      return bytesStep;
    case 'fixed': {
      const size = writer.size as number;
      if (size !== reader.size) return undefined;
      return (_b, pos, end) => (pos + size <= end ? pos + size : -1);
    }
    case 'enum': {
      const ws = writer.symbols ?? [];
      const rs = reader.symbols ?? [];
      if (ws.length !== rs.length || ws.some((s, i) => s !== rs[i])) return undefined;
      const n = ws.length;
      return (b, pos, end) => {
        const p = varint(b, pos, end);
        if (p < 0) return -1;
        const i = unzigzag(lastVarint);
        return i >= 0 && i < n ? p : -1;
      };
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const wt = writer.types ?? [];
      const rt = reader.types ?? [];
      if (wt.length !== rt.length) return undefined;
      const branches: Step[] = [];
      for (let i = 0; i < wt.length; i++) {
        const s = compile(wt[i] as AvscType, rt[i] as AvscType);
        if (!s) return undefined;
        branches.push(s);
      }
      return (b, pos, end) => {
        const p = varint(b, pos, end);
        if (p < 0) return -1;
        const branch = branches[unzigzag(lastVarint)];
        return branch ? branch(b, p, end) : -1;
      };
    }
    case 'record':
    case 'error': {
      const steps = fieldSteps(writer, reader, true);
      if (!steps) return undefined;
      // Fields the reader added after the writer's (each with a default): their encoded defaults.
      const added = (reader.fields ?? []).slice(steps.length);
      const tail =
        added.length > 0 ? Buffer.concat(added.map((f) => f.type.toBuffer(f.defaultValue()))) : null;
      return (b, pos, end) => {
        let p = pos;
        for (let i = 0; i < steps.length && p >= 0; i++) p = (steps[i] as Step)(b, p, end);
        if (tail && p >= 0) {
          splices.at[splices.n] = p;
          splices.bytes[splices.n] = tail;
          splices.n++;
        }
        return p;
      };
    }
    default:
      // array, map, logical types: not checked (the record is re-encoded).
      return undefined;
  }
}

/**
 * One walker per writer field, each matching the reader's field in the same place. With
 * `readerMayAdd`, the reader may have more fields after them if each has a default.
 */
function fieldSteps(writer: AvscType, reader: AvscType, readerMayAdd = false): Step[] | undefined {
  const wf = writer.fields ?? [];
  const rf = reader.fields ?? [];
  if (readerMayAdd ? wf.length > rf.length : wf.length !== rf.length) return undefined;
  for (const f of rf.slice(wf.length)) if (f.defaultValue() === undefined) return undefined;
  const steps: Step[] = [];
  for (let i = 0; i < wf.length; i++) {
    const w = wf[i] as { name: string; type: AvscType };
    const r = rf[i] as { name: string; type: AvscType };
    // The resolver matches fields by name: another name in the same place is another layout.
    if (w.name !== r.name) return undefined;
    const s = compile(w.type, r.type);
    if (!s) return undefined;
    steps.push(s);
  }
  return steps;
}

/**
 * For a record in `bytes[start, end)`: where its fetch time field starts when the record is
 * canonical, else -1. Its stored body is then `bytes[start, at)` with `out`'s splices inserted
 * (each `out.bytes[k]` before `bytes[out.at[k]]`), followed by one zero byte.
 */
export type CanonicalBody = (bytes: Buffer, start: number, end: number, out: Splices) => number;

/**
 * The check for records written with `writer` and read with `reader`, or undefined when the two
 * layouts differ or the reader's last field is not the fetch time (then every record is re-encoded).
 */
export function canonicalBody(writer: avro.Type, reader: avro.Type): CanonicalBody | undefined {
  const w = writer as unknown as AvscType;
  const r = reader as unknown as AvscType;
  if (w.typeName !== 'record' || r.typeName !== 'record') return undefined;
  const last = r.fields?.[r.fields.length - 1];
  if (!last || last.name !== FETCH_FIELD || last.type.typeName !== 'long') return undefined;
  const steps = fieldSteps(w, r);
  if (!steps) return undefined;
  const head = steps.slice(0, -1);
  return (b, start, end, out) => {
    splices = out;
    out.n = 0;
    let p = start;
    for (let i = 0; i < head.length && p >= 0; i++) p = (head[i] as Step)(b, p, end);
    if (p < 0) return -1;
    // The fetch time: canonical too, and the record's last bytes.
    return varint(b, p, end) === end ? p : -1;
  };
}
