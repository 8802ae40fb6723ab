import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { READER_SCHEMA_FILES } from '../../../lambdas/health/reader-schemas.generated';
import { readerSchema, readerVersions, resolveWriterSchema } from '../../../lambdas/health/schemas';
import { RECORD_TYPES, toRecordType } from '../../../lambdas/health/types';
import { readAvscFiles } from '../../../schemas/avro/generate';
import { glucoseDay0, stampFetchTime, WRITER_SCHEMAS } from '../../fixtures/health/generator';

/** The writer schema with every `Avro` prefix removed: what a producer using base names would embed. */
function baseNamed(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replace(/\.Avro([A-Z])/g, '.$1'));
}

describe('reader schemas', () => {
  it('compiled module matches the .avsc files (run `npx tsx schemas/avro/generate.ts` after editing)', () => {
    // Prepare
    const files = readAvscFiles();

    // Act / Assess
    expect(READER_SCHEMA_FILES).toEqual(files);
    expect(Object.keys(files.v1 ?? {}).sort()).toEqual([...RECORD_TYPES].sort());
  });

  it.each(RECORD_TYPES)('%s: the app writer schema resolves under both names', (recordType) => {
    // Prepare
    const writer = WRITER_SCHEMAS[recordType];

    // Act
    const prefixed = resolveWriterSchema(JSON.stringify(writer));
    const plain = resolveWriterSchema(JSON.stringify(baseNamed(writer)));

    // Assess
    expect(prefixed.recordType).toBe(recordType);
    expect(prefixed.writerSchemaName).toBe(`io.github.hitoshura25.healthsyncapp.data.avro.Avro${recordType}`);
    expect(plain.recordType).toBe(recordType);
    expect(plain.writerSchemaName).toBe(`io.github.hitoshura25.healthsyncapp.data.avro.${recordType}`);
  });

  it('maps base, Avro-prefixed and qualified names to the record type', () => {
    expect(toRecordType('BloodGlucoseRecord')).toBe('BloodGlucoseRecord');
    expect(toRecordType('AvroBloodGlucoseRecord')).toBe('BloodGlucoseRecord');
    expect(toRecordType('io.github.hitoshura25.healthsyncapp.data.avro.AvroStepsRecord')).toBe('StepsRecord');
    expect(toRecordType('AvroWeightRecord')).toBeUndefined();
  });
});

describe('schema evolution (BloodGlucoseRecord v1 -> v2 adds metadata.recordingMethod, defaulted)', () => {
  const [r0, r1, r2] = stampFetchTime(glucoseDay0().slice(0, 3), 1_762_219_812_481) as [
    Record<string, unknown>,
    Record<string, unknown>,
    Record<string, unknown>,
  ];
  const v1 = readerSchema('BloodGlucoseRecord', 1);
  const v2 = readerSchema('BloodGlucoseRecord', 2);

  it('has v1 and v2 for glucose and uses the latest by default', () => {
    expect(readerVersions('BloodGlucoseRecord')).toEqual([1, 2]);
    expect(readerSchema('BloodGlucoseRecord').version).toBe(2);
    expect(resolveWriterSchema(JSON.stringify(WRITER_SCHEMAS.BloodGlucoseRecord)).reader.version).toBe(2);
  });

  it('v2 reads data written with the app writer schema', () => {
    // Prepare
    const writer = avro.Type.forSchema(WRITER_SCHEMAS.BloodGlucoseRecord as avro.Schema);
    const bytes = writer.toBuffer(r0);

    // Act
    const value = v2.type.fromBuffer(bytes, v2.type.createResolver(writer)) as Record<string, never>;

    // Assess
    expect(value).toMatchObject({
      levelInMilligramsPerDeciliter: r0.levelInMilligramsPerDeciliter,
      metadata: { id: (r0.metadata as { id: string }).id, recordingMethod: 'UNKNOWN' },
    });
  });

  it('v2 reads data written with our v1 reader schema', () => {
    // Prepare
    const v1Writer = avro.Type.forSchema(v1.schema as avro.Schema);
    const bytes = v1Writer.toBuffer(r1);

    // Act
    const value = v2.type.fromBuffer(bytes, v2.type.createResolver(v1Writer)) as {
      metadata: { recordingMethod: string };
    };

    // Assess
    expect(value.metadata.recordingMethod).toBe('UNKNOWN');
  });

  it('v1 still reads v2-written data (the new field is skipped) and v2 keeps a written value', () => {
    // Prepare
    const v2Writer = avro.Type.forSchema(v2.schema as avro.Schema);
    const record = {
      ...r2,
      metadata: { ...(r2.metadata as object), recordingMethod: 'AUTOMATICALLY_RECORDED' },
    };
    const bytes = v2Writer.toBuffer(record);

    // Act
    const old = v1.type.fromBuffer(bytes, v1.type.createResolver(v2Writer)) as { metadata: object };
    const same = v2.type.fromBuffer(bytes) as { metadata: { recordingMethod: string } };

    // Assess
    expect(old.metadata).not.toHaveProperty('recordingMethod');
    expect(same.metadata.recordingMethod).toBe('AUTOMATICALLY_RECORDED');
  });

  it('an enum symbol the reader does not know reads as UNKNOWN (enum default)', () => {
    // Prepare
    const schema = JSON.parse(JSON.stringify(WRITER_SCHEMAS.SleepSessionRecord));
    const stageType = schema.fields.at(-1).type.items.fields[2].type;
    stageType.symbols = [...stageType.symbols, 'RESTLESS'];
    const writer = avro.Type.forSchema(schema);
    const reader = readerSchema('SleepSessionRecord');
    const session = {
      metadata: r0.metadata,
      title: null,
      notes: null,
      startTimeEpochMillis: 1,
      endTimeEpochMillis: 2,
      startZoneOffsetId: '-05:00',
      endZoneOffsetId: '-05:00',
      durationMillis: null,
      appRecordFetchTimeEpochMillis: 3,
      stages: [{ startTimeEpochMillis: 1, endTimeEpochMillis: 2, stage: 'RESTLESS' }],
    };

    // Act
    const value = reader.type.fromBuffer(writer.toBuffer(session), reader.type.createResolver(writer)) as {
      stages: { stage: string }[];
    };

    // Assess
    expect(value.stages[0]?.stage).toBe('UNKNOWN');
  });
});
