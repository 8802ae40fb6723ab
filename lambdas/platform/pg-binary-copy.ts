/**
 * Encoder of PostgreSQL's binary COPY format (`COPY t (...) FROM STDIN (FORMAT binary)`).
 *
 * Why binary and not text or JSON: the server takes each field as bytes in its final form (no
 * number parsing, no JSON expansion), which is what makes bulk loads of a million rows cost about
 * as much as the network copy. Rows are appended to one growing buffer; `take()` hands the bytes
 * written so far to the COPY stream, so memory stays at one chunk.
 *
 * Format: signature, flags, header extension; per tuple an int16 field count and per field an
 * int32 length (-1 = NULL) and the value in network byte order; trailer int16 -1.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const TWO_32 = 4_294_967_296;

export class BinaryCopyEncoder {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(Math.max(64, initialBytes));
    SIGNATURE.copy(this.buf, 0);
    this.pos = SIGNATURE.length;
    this.buf.writeInt32BE(0, this.pos); // flags
    this.buf.writeInt32BE(0, this.pos + 4); // header extension length
    this.pos += 8;
  }

  /** Bytes buffered and not yet taken. */
  get size(): number {
    return this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  row(fields: number): this {
    this.room(2);
    this.buf.writeInt16BE(fields, this.pos);
    this.pos += 2;
    return this;
  }

  null(): this {
    this.room(4);
    this.buf.writeInt32BE(-1, this.pos);
    this.pos += 4;
    return this;
  }

  text(value: string | null): this {
    if (value === null) return this.null();
    const max = value.length * 3;
    this.room(4 + max);
    const n = this.buf.write(value, this.pos + 4, max, 'utf8');
    this.buf.writeInt32BE(n, this.pos);
    this.pos += 4 + n;
    return this;
  }

  bytea(value: Uint8Array | null): this {
    if (value === null) return this.null();
    this.room(4 + value.length);
    this.buf.writeInt32BE(value.length, this.pos);
    this.buf.set(value, this.pos + 4);
    this.pos += 4 + value.length;
    return this;
  }

  int2(value: number | null): this {
    if (value === null) return this.null();
    this.room(6);
    this.buf.writeInt32BE(2, this.pos);
    this.buf.writeInt16BE(value, this.pos + 4);
    this.pos += 6;
    return this;
  }

  int4(value: number | null): this {
    if (value === null) return this.null();
    this.room(8);
    this.buf.writeInt32BE(4, this.pos);
    this.buf.writeInt32BE(value | 0, this.pos + 4);
    this.pos += 8;
    return this;
  }

  /** A 64-bit integer given as a JS number (exact within +/- 2^53). */
  int8(value: number | null): this {
    if (value === null) return this.null();
    this.room(12);
    this.buf.writeInt32BE(8, this.pos);
    if (Number.isSafeInteger(value)) {
      // Two's complement split without BigInt: high word floors, low word is the rest.
      const high = Math.floor(value / TWO_32);
      this.buf.writeInt32BE(high, this.pos + 4);
      this.buf.writeUInt32BE(value - high * TWO_32, this.pos + 8);
    } else {
      this.buf.writeBigInt64BE(BigInt(Math.trunc(value)), this.pos + 4);
    }
    this.pos += 12;
    return this;
  }

  float8(value: number | null): this {
    if (value === null) return this.null();
    this.room(12);
    this.buf.writeInt32BE(8, this.pos);
    this.buf.writeDoubleBE(value, this.pos + 4);
    this.pos += 12;
    return this;
  }

  /** timestamptz from epoch milliseconds (microseconds since 2000-01-01 on the wire). */
  timestamptz(epochMillis: number | null): this {
    if (epochMillis === null) return this.null();
    return this.int8((epochMillis - PG_EPOCH_MS) * 1000);
  }

  /** The bytes written so far (the caller owns them); the encoder continues with an empty buffer. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }

  /**
   * The trailer, then every byte written, without a copy: for a one-shot encoder sized up front
   * (the encoder must not be used afterwards).
   */
  finish(): Buffer {
    this.end();
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return out;
  }

  /** The trailer that ends the data; call once, after the last row, then `take()`. */
  end(): this {
    this.room(2);
    this.buf.writeInt16BE(-1, this.pos);
    this.pos += 2;
    return this;
  }
}
