import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32, deflateRaw, inflateRaw } from 'node:zlib';
import avro from 'avsc';
import snappy from 'snappyjs';
import { describe, expect, it } from 'vitest';
import { decodeExport, openExport, recordTypeHintFromKey } from '../../../lambdas/health/decode';
import {
  AvroFormatError,
  AvroLimitError,
  HealthDataError,
  RecordTypeMismatchError,
  UnknownRecordTypeError,
} from '../../../lambdas/health/errors';
import { UNREAD_FIELDS } from '../../../lambdas/health/schemas';
import type { BloodGlucoseRecord, HeartRateRecord } from '../../../lambdas/health/types';
import {
  BAD_DIR,
  CODECS_DIR,
  containerBlock,
  containerHeader,
  encodeExport,
  FIXTURES_DIR,
  generateLargeGlucoseExport,
  glucoseDay0,
  type ManifestEntry,
  SAMPLES_DIR,
  stampFetchTime,
  WRITER_SCHEMAS,
} from '../../fixtures/health/generator';

const manifest: ManifestEntry[] = JSON.parse(readFileSync(join(FIXTURES_DIR, 'manifest.json'), 'utf8'));
const samples = readdirSync(SAMPLES_DIR).sort();

function chunked(bytes: Buffer, size: number): AsyncIterable<Uint8Array> {
  return Readable.from(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
      bytes.subarray(i * size, (i + 1) * size),
    ),
  );
}

/** avsc's own container reader, as an independent check of the committed files. */
async function avscRecords(bytes: Buffer): Promise<unknown[]> {
  const codecs = {
    null: (buf: Buffer, cb: (e: Error | null, out?: Buffer) => void) => cb(null, buf),
    deflate: inflateRaw,
    snappy: (buf: Buffer, cb: (e: Error | null, out?: Buffer) => void) =>
      cb(null, Buffer.from(snappy.uncompress(buf.subarray(0, buf.length - 4)))),
  };
  const decoder = new avro.streams.BlockDecoder({ codecs } as never);
  const out: unknown[] = [];
  await new Promise<void>((resolve, reject) => {
    decoder.on('data', (r: unknown) => out.push(r));
    decoder.on('end', resolve);
    decoder.on('error', reject);
    decoder.end(bytes);
  });
  return out;
}

describe('decode: the 26 committed samples', () => {
  it('has exactly 26 samples: 5 glucose, 5 heart rate, 5 sleep, 5 steps, 3 active calories, 3 HRV', () => {
    const count = (prefix: string) => samples.filter((f) => f.startsWith(`${prefix}_`)).length;
    expect(samples).toHaveLength(26);
    expect([
      count('BloodGlucoseRecord'),
      count('HeartRateRecord'),
      count('SleepSessionRecord'),
      count('StepsRecord'),
      count('ActiveCaloriesBurnedRecord'),
      count('HeartRateVariabilityRmssdRecord'),
    ]).toEqual([5, 5, 5, 5, 3, 3]);
  });

  it.each(samples)(
    '%s decodes with flat fields, as avsc itself reads it, from a Buffer and from a stream',
    async (file) => {
      // Prepare
      const bytes = readFileSync(join(SAMPLES_DIR, file));
      const expected = manifest.find((m) => m.file === `samples/${file}`);

      // Act
      const fromBuffer = await decodeExport(bytes, { key: file });
      const fromStream = await decodeExport(chunked(bytes, 777), {
        key: `raw/${file.split('_')[0]}/2025/11/04/${file}`,
      });
      const reference = await avscRecords(bytes);

      // Assess
      expect(fromBuffer.header.codec).toBe('null');
      expect(fromBuffer.recordType).toBe(file.split('_')[0]);
      expect(fromBuffer.records).toHaveLength(expected?.records ?? -1);
      expect(fromStream.records).toEqual(fromBuffer.records);
      expect(reference).toHaveLength(fromBuffer.records.length);
      const fetch = Number(file.replace(/\D+/g, ''));
      for (const r of fromBuffer.records) expect(r.appRecordFetchTimeEpochMillis).toBe(fetch);
      expect(JSON.parse(fromBuffer.header.schemaJson)).toEqual(WRITER_SCHEMAS[fromBuffer.recordType]);
    },
  );

  it('reads the real field names (no nested SDK-style time objects)', async () => {
    const file = samples.find((f) => f.startsWith('BloodGlucoseRecord_')) as string;
    const { records } = await decodeExport<BloodGlucoseRecord>(readFileSync(join(SAMPLES_DIR, file)));
    const first = records[0] as BloodGlucoseRecord;
    expect(typeof first.timeEpochMillis).toBe('number');
    expect(typeof first.levelInMilligramsPerDeciliter).toBe('number');
    expect(first.zoneOffsetId).toBe('Z');
    expect(first.metadata.dataOriginPackageName).toBe('com.dexcom.g7');
  });
});

describe('decode: only the fields the pipeline reads (`analysis`)', () => {
  it('skips UNREAD_FIELDS where stored bodies are the file bytes; everything else as a full decode', async () => {
    let analysed = 0;
    for (const name of samples) {
      const bytes = readFileSync(join(SAMPLES_DIR, name));
      const full = await openExport(bytes, { key: name });
      const part = await openExport(bytes, { key: name, analysis: true });
      const fullBlocks = [];
      for await (const b of full.blocks()) fullBlocks.push(b);
      let k = 0;
      for await (const b of part.blocks()) {
        const whole = fullBlocks[k++] as (typeof fullBlocks)[number];
        b.records.forEach((r, i) => {
          const w = whole.records[i] as unknown as { metadata: Record<string, unknown> };
          if (!full.canonicalBody) {
            // Heart rate and sleep are re-encoded from the decoded record: decoded whole.
            expect(r, name).toEqual(w);
            expect(b.raw, name).toBeUndefined();
            return;
          }
          const { clientRecordId, device, ...kept } = w.metadata;
          expect(UNREAD_FIELDS).toEqual(['clientRecordId', 'device']);
          expect(r, name).toEqual({ ...w, metadata: kept });
          const start = i === 0 ? 0 : (b.raw?.ends[i - 1] as number);
          expect(b.raw?.decodeFull?.(start), name).toEqual(w);
          expect(device, name).not.toBeUndefined();
          expect(clientRecordId, name).not.toBeUndefined();
          analysed++;
        });
      }
      expect(k, name).toBe(fullBlocks.length);
    }
    expect(analysed).toBeGreaterThan(200);
  });
});

describe('decode: codecs', () => {
  const nullFile = readFileSync(join(SAMPLES_DIR, 'BloodGlucoseRecord_1762219812481.avro'));

  it.each(['deflate', 'snappy'])(
    '%s sample yields the same records as the null-codec sample',
    async (codec) => {
      // Prepare
      const bytes = readFileSync(join(CODECS_DIR, codec, 'BloodGlucoseRecord_1762219812481.avro'));

      // Act
      const file = await openExport(bytes);
      const records: unknown[] = [];
      for await (const r of file.records()) records.push(r);

      // Assess
      expect(file.header.codec).toBe(codec);
      expect(file.stats.blocksRead).toBeGreaterThan(1);
      expect(records).toEqual((await decodeExport(nullFile)).records);
    },
  );

  it('reads files written by avsc BlockEncoder (deflate, and snappy with its CRC)', async () => {
    // Prepare
    const records = stampFetchTime(glucoseDay0().slice(0, 40), 1);
    const type = avro.Type.forSchema(WRITER_SCHEMAS.BloodGlucoseRecord as avro.Schema);
    const encode = (codec: string) =>
      new Promise<Buffer>((resolve, reject) => {
        const codecs = {
          deflate: deflateRaw,
          snappy: (buf: Buffer, cb: (e: Error | null, out?: Buffer) => void) => {
            const crc = Buffer.alloc(4);
            crc.writeUInt32BE(crc32(buf) >>> 0);
            cb(null, Buffer.concat([Buffer.from(snappy.compress(buf)), crc]));
          },
        };
        const encoder = new avro.streams.BlockEncoder(type, { codec, codecs, blockSize: 1000 } as never);
        const parts: Buffer[] = [];
        encoder.on('data', (b: Buffer) => parts.push(b));
        encoder.on('end', () => resolve(Buffer.concat(parts)));
        encoder.on('error', reject);
        for (const r of records) encoder.write(r);
        encoder.end();
      });

    // Act
    const deflated = await decodeExport(await encode('deflate'));
    const snappied = await decodeExport(await encode('snappy'));

    // Assess
    expect(deflated.records).toHaveLength(40);
    expect(snappied.records).toEqual(deflated.records);
  });

  it('rejects an unsupported codec with a clear error', async () => {
    const bytes = Buffer.concat([
      containerHeader(JSON.stringify(WRITER_SCHEMAS.StepsRecord), 'zstandard' as never, Buffer.alloc(16)),
    ]);
    await expect(decodeExport(bytes)).rejects.toThrow(/unsupported codec "zstandard"/);
  });
});

describe('decode: bad files turn into named errors, never a hang or OOM', () => {
  const cases: [string, new (...args: never[]) => Error, RegExp][] = [
    ['truncated.avro', AvroFormatError, /truncated/],
    ['corrupt-sync-marker.avro', AvroFormatError, /sync marker mismatch after block 0/],
    ['wrong-magic.avro', AvroFormatError, /not an Avro object container/],
    ['empty.avro', AvroFormatError, /empty file/],
    ['not-avro.avro', AvroFormatError, /not an Avro object container/],
    ['WeightRecord_1762167600000.avro', UnknownRecordTypeError, /AvroWeightRecord/],
    ['absurd-block-size.avro', AvroLimitError, /block size 1125899906842624 exceeds/],
    ['deflate-bomb.avro', AvroLimitError, /inflated block size/],
    ['snappy-bad-crc.avro', AvroFormatError, /CRC32 mismatch/],
  ];

  it.each(cases)('%s -> %s', async (file, errorClass, message) => {
    // Prepare
    const bytes = readFileSync(join(BAD_DIR, file));
    const before = process.memoryUsage().rss;

    // Act
    const attempt = decodeExport(chunked(bytes, 4096), { key: file });

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(errorClass);
    await expect(decodeExport(bytes, { key: file })).rejects.toThrow(message);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it('header-only and impossible-values files are readable (validation quarantines them, not decode)', async () => {
    expect((await decodeExport(readFileSync(join(BAD_DIR, 'header-only.avro')))).records).toEqual([]);
    expect((await decodeExport(readFileSync(join(BAD_DIR, 'impossible-values.avro')))).records).toHaveLength(
      40,
    );
  });

  it('refuses an array block count larger than the bytes left (avsc alone would spin for hours)', async () => {
    // Prepare: one heart-rate record whose samples array claims 2^40 items.
    const writer = avro.Type.forSchema(WRITER_SCHEMAS.HeartRateRecord as avro.Schema);
    const record = {
      metadata: {
        id: 'x',
        dataOriginPackageName: 'p',
        lastModifiedTimeEpochMillis: 1,
        clientRecordId: null,
        clientRecordVersion: 0,
        device: null,
      },
      startTimeEpochMillis: 1,
      endTimeEpochMillis: 2,
      startZoneOffsetId: null,
      endZoneOffsetId: null,
      appRecordFetchTimeEpochMillis: 3,
      samples: [],
    };
    const body = writer.toBuffer(record);
    // The empty array is the final 0x00; replace it by a block count of 2^40 and one sample.
    const hostile = Buffer.concat([
      body.subarray(0, body.length - 1),
      Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 2, 4, 0]),
    ]);
    const sync = Buffer.alloc(16, 7);
    const file = Buffer.concat([
      containerHeader(JSON.stringify(WRITER_SCHEMAS.HeartRateRecord), 'null', sync),
      containerBlock(1, hostile, 'null', sync),
    ]);

    // Act / Assess
    const started = Date.now();
    await expect(decodeExport<HeartRateRecord>(file)).rejects.toThrow(/declares \d+ items but only/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a record count larger than the block bytes is a format error', async () => {
    const sync = Buffer.alloc(16, 1);
    const file = Buffer.concat([
      containerHeader(JSON.stringify(WRITER_SCHEMAS.StepsRecord), 'null', sync),
      containerBlock(1000, Buffer.alloc(10), 'null', sync),
    ]);
    await expect(decodeExport(file)).rejects.toThrow(/declares 1000 records in 10 bytes/);
  });

  it('trailing bytes after the declared records are a format error', async () => {
    const records = stampFetchTime(glucoseDay0().slice(0, 2), 1);
    const type = avro.Type.forSchema(WRITER_SCHEMAS.BloodGlucoseRecord as avro.Schema);
    const raw = Buffer.concat([...records.map((r) => type.toBuffer(r)), Buffer.from([1, 2, 3])]);
    const sync = Buffer.alloc(16, 2);
    const file = Buffer.concat([
      containerHeader(JSON.stringify(WRITER_SCHEMAS.BloodGlucoseRecord), 'null', sync),
      containerBlock(2, raw, 'null', sync),
    ]);
    await expect(decodeExport(file)).rejects.toThrow(/3 bytes after its 2 records/);
  });
});

describe('decode: limits', () => {
  const records = stampFetchTime(glucoseDay0(), 1);

  it('record count', async () => {
    const bytes = encodeExport('BloodGlucoseRecord', records, { blockBytes: 2000 });
    await expect(decodeExport(bytes, { limits: { maxRecords: 100 } })).rejects.toThrow(
      /record count \d+ exceeds the limit of 100/,
    );
  });

  it('file size, from a Buffer and while streaming', async () => {
    const bytes = encodeExport('BloodGlucoseRecord', records);
    await expect(decodeExport(bytes, { limits: { maxFileBytes: 10_000 } })).rejects.toBeInstanceOf(
      AvroLimitError,
    );
    await expect(decodeExport(chunked(bytes, 1000), { limits: { maxFileBytes: 10_000 } })).rejects.toThrow(
      /file size \d+ exceeds the limit of 10000/,
    );
  });

  it('total inflated size across blocks, each block under its own limit', async () => {
    const bytes = encodeExport('BloodGlucoseRecord', records, { codec: 'deflate', blockBytes: 4000 });
    await expect(
      decodeExport(bytes, { limits: { maxInflatedBlockBytes: 8000, maxInflatedTotalBytes: 12_000 } }),
    ).rejects.toThrow(/inflated total size/);
  });

  it('header size', async () => {
    const big = { ...WRITER_SCHEMAS.StepsRecord, doc: 'x'.repeat(5000) };
    const bytes = encodeExport('StepsRecord', [], { schema: big });
    await expect(decodeExport(bytes, { limits: { maxHeaderBytes: 4096 } })).rejects.toThrow(/header size/);
  });

  it('streams a large export block by block with bounded memory', async () => {
    // Prepare
    const bytes = generateLargeGlucoseExport(60_000);

    // Act
    const file = await openExport(chunked(bytes, 65_536));
    let largestBlock = 0;
    let total = 0;
    for await (const block of file.blocks()) {
      largestBlock = Math.max(largestBlock, block.records.length);
      total += block.records.length;
    }

    // Assess
    expect(total).toBe(60_000);
    expect(largestBlock).toBeLessThan(1000);
    expect(file.stats.bytesRead).toBe(bytes.length);
  });
});

describe('decode: record type detection and key cross-check', () => {
  const bytes = readFileSync(join(SAMPLES_DIR, 'StepsRecord_1762261227317.avro'));

  it('reads the type hint from raw/ keys and exporter file names, base or Avro-prefixed', () => {
    expect(recordTypeHintFromKey('raw/StepsRecord/2025/11/04/StepsRecord_1762261227317.avro')).toBe(
      'StepsRecord',
    );
    expect(recordTypeHintFromKey('raw/AvroStepsRecord/2025/11/04/x.avro')).toBe('AvroStepsRecord');
    expect(recordTypeHintFromKey('some/dir/HeartRateRecord_1762227100317.avro')).toBe('HeartRateRecord');
    expect(recordTypeHintFromKey('bad/not-avro.avro')).toBeUndefined();
  });

  it('accepts a key naming the Avro-prefixed type', async () => {
    const file = await openExport(bytes, {
      key: 'raw/AvroStepsRecord/2025/11/04/StepsRecord_1762261227317.avro',
    });
    expect(file.recordType).toBe('StepsRecord');
  });

  it('refuses a key that names another record type', async () => {
    const attempt = openExport(bytes, { key: 'raw/BloodGlucoseRecord/2025/11/04/BloodGlucoseRecord_1.avro' });
    await expect(attempt).rejects.toBeInstanceOf(RecordTypeMismatchError);
    await expect(attempt).rejects.toBeInstanceOf(HealthDataError);
  });
});
