import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvroFormatError, classifyError, UnknownRecordTypeError } from '../../../lambdas/health/errors';
import { type ProcessExportResult, processExport } from '../../../lambdas/health/pipeline';
import {
  MemoryRecordStore,
  PostgresRecordStore,
  type RecordStore,
} from '../../../lambdas/health/record-store';
import { rawKeyFor, type SourceIdentity } from '../../../lambdas/health/source';
import { DOMAINS, RECORD_TYPES } from '../../../lambdas/health/types';
import {
  BAD_DIR,
  FIXTURES_DIR,
  generateVariant,
  type ManifestEntry,
  SAMPLES_DIR,
} from '../../fixtures/health/generator';
import { createTestSchema, type TestSchema } from '../../support/db';
import { NOW, sampleFiles } from './helpers';

const manifest: ManifestEntry[] = JSON.parse(readFileSync(join(FIXTURES_DIR, 'manifest.json'), 'utf8'));

function sourceOf(file: string, bytes: Buffer, extra: Partial<SourceIdentity> = {}): SourceIdentity {
  return {
    bucket: 'health-raw',
    key: rawKeyFor(file),
    etag: createHash('md5').update(bytes).digest('hex'),
    ...extra,
  };
}

/** What a caller does: process, write (here: nothing), then confirm completion. */
async function replay(store: RecordStore, files: string[], dir = SAMPLES_DIR, now = new Date(NOW)) {
  const results: (ProcessExportResult & { file: string })[] = [];
  for (const file of files) {
    const bytes = readFileSync(join(dir, file));
    const r = await processExport({
      bytes,
      source: sourceOf(file, bytes),
      store,
      now,
      correlationId: `c-${file}`,
    });
    if (r.status === 'processed') await store.completeIngest(r.sourceId);
    results.push({ ...r, file });
  }
  return results;
}

function pipelineContract(name: string, make: () => Promise<RecordStore>) {
  describe(`processExport over the 26 samples (${name} store)`, () => {
    let store: RecordStore;
    let first: Awaited<ReturnType<typeof replay>>;
    beforeAll(async () => {
      store = await make();
      first = await replay(store, sampleFiles());
    });

    it('first replay: every file gets the outcome the fixtures README documents', () => {
      for (const r of first) {
        const expected = manifest.find((m) => m.file === `samples/${r.file}`)?.expected;
        expect({ file: r.file, status: r.status }).toEqual({ file: r.file, status: expected });
      }
      expect(first.filter((r) => r.status === 'processed')).toHaveLength(23);
      expect(first.filter((r) => r.status === 'duplicate')).toHaveLength(3);
      expect(first.filter((r) => r.status === 'quarantined' || r.status === 'failed')).toEqual([]);
    });

    it('all six record types produce a training example under their domain', () => {
      const processed = first.filter((r) => r.status === 'processed');
      for (const type of RECORD_TYPES) {
        const example = processed.find((r) => r.recordType === type);
        expect(example?.trainingKey).toMatch(
          new RegExp(`^training/${DOMAINS[type]}/\\d{4}/\\d{2}/\\d{2}/${type}_\\d+\\.[0-9a-f]{24}\\.jsonl$`),
        );
        const line = JSON.parse(example?.trainingBody ?? '{}');
        expect(Object.keys(line)).toEqual(['instruction', 'input', 'output', 'metadata']);
        expect(line.output).toBe(example?.narrative);
        expect(line.metadata).toMatchObject({
          recordType: type,
          domain: DOMAINS[type],
          source: { bucket: 'health-raw' },
          userId: 'default',
          processedAt: new Date(NOW).toISOString(),
          qualityScore: 1,
          processorVersion: expect.any(String),
        });
        expect(example?.trainingBody?.endsWith('\n')).toBe(true);
        expect(example?.trainingBody?.split('\n')).toHaveLength(2);
      }
    });

    it('training examples carry category, complexity and clinical relevance, with varied instructions', () => {
      const examples = first.flatMap((r) => (r.trainingExample ? [r.trainingExample] : []));
      expect(examples).toHaveLength(23);
      for (const e of examples) {
        expect(['summary', 'question', 'coaching', 'partial_day', 'insufficient_data']).toContain(
          e.metadata.training_category,
        );
        expect(['basic', 'intermediate', 'advanced']).toContain(e.metadata.complexity_level);
        expect(['low', 'medium', 'high']).toContain(e.metadata.clinical_relevance);
      }
      const categories = new Set(examples.map((e) => e.metadata.training_category));
      expect(categories.size).toBeGreaterThanOrEqual(3);
      expect(new Set(examples.map((e) => e.instruction)).size).toBeGreaterThan(6);
    });

    it('the three near-identical glucose syncs are duplicates without training output', () => {
      const dups = first.filter((r) => r.status === 'duplicate');
      expect(dups.map((r) => r.file)).toEqual(sampleFiles('BloodGlucoseRecord').slice(2));
      for (const d of dups) {
        expect(d.trainingKey).toBeUndefined();
        expect(d.reasons[0]).toMatch(/^no_new_records: all 2(49|50) records/);
      }
    });

    it('the overlapping heart-rate re-sync is processed because of its one updated record', async () => {
      const overlap = first.find((r) => r.file === sampleFiles('HeartRateRecord')[1]);
      expect(overlap?.status).toBe('processed');
      expect(overlap?.records).toMatchObject({ inserted: 0, updated: 1, unchanged: 70 });
      expect(overlap?.trainingExample?.metadata).toMatchObject({ recordsNew: 0, recordsUpdated: 1 });
    });

    it('second replay over the same store: all duplicate, no training output', async () => {
      const second = await replay(store, sampleFiles(), SAMPLES_DIR, new Date(NOW + 3_600_000));
      expect(second.map((r) => r.status)).toEqual(Array(26).fill('duplicate'));
      expect(second.filter((r) => r.trainingKey)).toEqual([]);
      for (const r of second) {
        expect(r.reasons[0]).toMatch(/^already_ingested:/);
        expect(r.recordsRead).toBe(0);
      }
    });

    it('a re-upload of the same bytes as a new S3 version adds nothing: duplicate', async () => {
      const file = sampleFiles('StepsRecord')[0] as string;
      const bytes = readFileSync(join(SAMPLES_DIR, file));
      const r = await processExport({
        bytes,
        source: sourceOf(file, bytes, { versionId: 'v-reupload' }),
        store,
        now: new Date(NOW),
      });
      expect(r.status).toBe('duplicate');
      expect(r.reasons[0]).toMatch(/^no_new_records/);
    });

    it('every bad file is quarantined with a clear reason and a sidecar; none crashes, none stores records', async () => {
      const before = await store.countRecords();
      for (const m of manifest.filter((x) => x.file.startsWith('bad/'))) {
        const file = m.file.slice(4);
        const bytes = readFileSync(join(BAD_DIR, file));
        const r = await processExport({ bytes, source: sourceOf(file, bytes), store, now: new Date(NOW) });
        expect({ file, status: r.status }).toEqual({ file, status: 'quarantined' });
        const sidecar = JSON.parse(r.quarantine?.sidecarBody ?? '{}');
        expect(r.quarantine?.key).toBe(`quarantine/${rawKeyFor(file).slice(4)}`);
        expect(r.quarantine?.sidecarKey).toBe(`${r.quarantine?.key}.metadata.json`);
        expect(sidecar.originalKey).toBe(rawKeyFor(file));
        expect(sidecar.reasons.length).toBeGreaterThan(0);
        expect(`${sidecar.error?.name ?? ''} ${sidecar.reasons.join(' ')}`).toContain(m.reason);
        expect(sidecar.quarantinedAt).toBe(new Date(NOW).toISOString());
      }
      expect(await store.countRecords()).toBe(before);
    });
  });
}

pipelineContract('memory', async () => new MemoryRecordStore());

describe('PostgreSQL store', () => {
  let db: TestSchema;
  beforeAll(async () => {
    db = await createTestSchema('health_pipeline');
  });
  afterAll(() => db.drop());

  pipelineContract('postgres', async () => new PostgresRecordStore(db.pool));

  it('near-identical files processed in parallel: exactly one of them is processed', async () => {
    const store = new PostgresRecordStore(db.pool);
    const { name: file, bytes } = generateVariant('HeartRateVariabilityRmssdRecord', 4242);
    const results = await Promise.all(
      ['v1', 'v2', 'v3', 'v4'].map((versionId) =>
        processExport({
          bytes,
          source: { bucket: 'par', key: rawKeyFor(file), versionId },
          store,
          now: new Date(NOW),
        }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual(['duplicate', 'duplicate', 'duplicate', 'processed']);
  });
});

describe('processExport: retries, streams, failures', () => {
  const file = sampleFiles('BloodGlucoseRecord')[0] as string;
  const bytes = readFileSync(join(SAMPLES_DIR, file));

  it('a retry before completion reproduces the same training key and bytes (never a duplicate)', async () => {
    // Prepare
    const store = new MemoryRecordStore();
    const source = sourceOf(file, bytes);

    // Act: first attempt "fails to write" (no completeIngest), the retry comes later with a new correlation id.
    const attempt1 = await processExport({
      bytes,
      source,
      store,
      now: new Date(NOW),
      correlationId: 'first',
    });
    const attempt2 = await processExport({
      bytes,
      source,
      store,
      now: new Date(NOW + 60_000),
      correlationId: 'retry',
    });
    await store.completeIngest(attempt2.sourceId);
    const attempt3 = await processExport({ bytes, source, store, now: new Date(NOW + 120_000) });

    // Assess
    expect(attempt1.status).toBe('processed');
    expect(attempt2.status).toBe('processed');
    expect(attempt2.trainingKey).toBe(attempt1.trainingKey);
    expect(attempt2.trainingBody).toBe(attempt1.trainingBody);
    expect(attempt3.status).toBe('duplicate');
  });

  it('reads a stream exactly like bytes', async () => {
    const chunks = Array.from({ length: Math.ceil(bytes.length / 1000) }, (_, i) =>
      bytes.subarray(i * 1000, (i + 1) * 1000),
    );
    const a = await processExport({
      bytes,
      source: sourceOf(file, bytes),
      store: new MemoryRecordStore(),
      now: new Date(NOW),
    });
    const b = await processExport({
      stream: Readable.from(chunks),
      source: sourceOf(file, bytes),
      store: new MemoryRecordStore(),
      now: new Date(NOW),
    });
    expect(b.trainingBody).toBe(a.trainingBody);
  });

  it('a key naming another record type is quarantined (record_type_mismatch)', async () => {
    const r = await processExport({
      bytes,
      source: { bucket: 'b', key: 'raw/StepsRecord/2025/11/04/StepsRecord_1.avro', etag: 'x' },
      store: new MemoryRecordStore(),
      now: new Date(NOW),
    });
    expect(r.status).toBe('quarantined');
    expect(r.reasons[0]).toMatch(/^record_type_mismatch:/);
  });

  it('a store that is down fails the file as retriable and writes nothing', async () => {
    const down = new MemoryRecordStore();
    down.ingest = async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    };
    const r = await processExport({ bytes, source: sourceOf(file, bytes), store: down, now: new Date(NOW) });
    expect(r).toMatchObject({ status: 'failed', disposition: 'retry', recordType: 'BloodGlucoseRecord' });
    expect(r.trainingKey).toBeUndefined();
    expect(r.quarantine).toBeUndefined();
  });
});

describe('classifyError: one mapping from error to outcome', () => {
  const named = (name: string, extra: object = {}) => Object.assign(new Error(name), { name, ...extra });
  it.each([
    ['AvroFormatError (data)', new AvroFormatError('x'), 'quarantine'],
    ['UnknownRecordTypeError (data)', new UnknownRecordTypeError('AvroWeightRecord'), 'quarantine'],
    ['S3 SlowDown', named('SlowDown'), 'retry'],
    ['throttling', named('ThrottlingException'), 'retry'],
    ['timeout', named('TimeoutError'), 'retry'],
    ['network', Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 'retry'],
    ['PostgreSQL deadlock', Object.assign(new Error('deadlock'), { code: '40P01' }), 'retry'],
    ['PostgreSQL connection', Object.assign(new Error('conn'), { code: '08006' }), 'retry'],
    ['missing object', named('NoSuchKey'), 'drop'],
    ['HTTP 404', Object.assign(new Error('nf'), { $metadata: { httpStatusCode: 404 } }), 'drop'],
    ['access denied', named('AccessDenied'), 'alarm'],
    ['HTTP 403', Object.assign(new Error('no'), { $metadata: { httpStatusCode: 403 } }), 'alarm'],
    ['unknown bug', new TypeError('x is undefined'), 'retry'],
  ] as const)('%s -> %s', (_label, error, expected) => {
    expect(classifyError(error)).toBe(expected);
  });
});
