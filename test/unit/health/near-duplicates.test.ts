/**
 * Near-duplicate suppression of training examples (issue 15, point 5) over real-shape exports made
 * by the fixture generator: a person who walks about 10,000 steps every day produces the same
 * example every day ("Steps on <date>: 10,230 ... 102 % of the target ... keep"), which teaches a
 * model nothing new; the manifest keeps the most informative one and leaves the others out of the
 * training set, while examples with other figures or wording are kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestExport, type OutputSink } from '../../../lambdas/health/ingest';
import {
  MemoryRecordStore,
  PostgresRecordStore,
  type RecordStore,
} from '../../../lambdas/health/record-store';
import { rawKeyFor, type SourceIdentity, sourceId } from '../../../lambdas/health/source';
import {
  classifyExample,
  isNearDuplicate,
  maskOutput,
  nearDuplicateFingerprint,
  TRAINING_MANIFEST_KEY,
  type TrainingExample,
} from '../../../lambdas/health/training';
import { dailyTotal, encodeExport, localMidnight, stampFetchTime } from '../../fixtures/health/generator';
import { createTestSchema, type TestSchema } from '../../support/db';
import { NOW } from './helpers';

const HOUR = 3_600_000;

/** A source whose example gets the 'summary' instruction (picked from the source id), so days compare. */
function summarySource(file: string): SourceIdentity {
  for (let i = 0; ; i++) {
    const source = { bucket: 'b', key: rawKeyFor(file), etag: `"${file}-${i}"` };
    const c = classifyExample({
      recordType: 'StepsRecord',
      sourceId: sourceId(source),
      recordsProcessed: 1,
      subject: {
        key: '',
        domain: 'physical_activity',
        dataOrigins: [],
        period: 'day',
        localDay: '',
        dayComplete: true,
        asOf: null,
        percentOfDay: null,
      },
      warnings: [],
      insights: {},
      narrative: '',
    });
    if (c.training_category === 'summary') return source;
  }
}

/** One phone-app daily step total for `day`, fetched `fetchAfterHours` after that local midnight. */
function stepsExport(day: number, steps: number, fetchAfterHours = 30, seed = 100 + day) {
  const fetch = localMidnight(day) + fetchAfterHours * HOUR;
  const file = `StepsRecord_${fetch}.avro`;
  const records = stampFetchTime([dailyTotal(seed, 'steps', 'fit', day, steps)], fetch);
  return { file, bytes: encodeExport('StepsRecord', records), source: summarySource(file) };
}

function memorySink(): OutputSink & { objects: Map<string, string> } {
  const objects = new Map<string, string>();
  return {
    objects,
    async writeTraining(_s, key, body) {
      if (!objects.has(key)) objects.set(key, body);
    },
    async writeManifest(_s, key, body) {
      objects.set(key, body);
    },
    async quarantine() {
      throw new Error('nothing here is quarantined');
    },
  };
}

interface ManifestDoc {
  counts: { subjects: number; examples: number; superseded: number; suppressedNearDuplicates: number };
  trainingSet: string[];
  subjects: {
    subject: string;
    current: { key: string };
    nearDuplicateOf: { key: string } | null;
    superseded: { key: string }[];
  }[];
}

async function ingestAll(store: RecordStore, exports: ReturnType<typeof stepsExport>[]) {
  const sink = memorySink();
  const results = [];
  for (const e of exports) {
    results.push(await ingestExport({ bytes: e.bytes, source: e.source, store, now: new Date(NOW) }, sink));
  }
  const manifest = JSON.parse(sink.objects.get(TRAINING_MANIFEST_KEY) as string) as ManifestDoc;
  return { results, manifest };
}

// Days 0-2 (2025-11-03..05): 10,230 and 10,410 steps (the same story), 6,120 (another band).
const day0 = () => stepsExport(0, 10_230);
const day1 = () => stepsExport(1, 10_410);
const day2 = () => stepsExport(2, 6_120);

function contract(name: string, makeStore: () => Promise<RecordStore>) {
  describe(`near-duplicate training examples (${name} store)`, () => {
    it('suppresses the day that repeats another with figures within 5 %, keeps the distinct day', async () => {
      // Act
      const { results, manifest } = await ingestAll(await makeStore(), [day0(), day1(), day2()]);

      // Assess: all three are processed and written (immutable objects), one is left out of the set.
      expect(results.map((r) => r.status)).toEqual(['processed', 'processed', 'processed']);
      const [r0, r1, r2] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];
      expect(r0.narrative).toMatch(/^Steps on 2025-11-03: 10,230 /);
      expect(r1.narrative).toMatch(/^Steps on 2025-11-04: 10,410 /);
      // Of the two, the later export is kept (same readings, both complete days, one origin each).
      expect(manifest.counts).toEqual({
        subjects: 3,
        examples: 2,
        superseded: 0,
        suppressedNearDuplicates: 1,
      });
      expect(manifest.trainingSet.sort()).toEqual([r1.trainingKey, r2.trainingKey].sort());
      const suppressed = manifest.subjects.find((s) => s.current.key === r0.trainingKey);
      expect(suppressed?.nearDuplicateOf?.key).toBe(r1.trainingKey);
      // The summary and metrics see it on the result of the export that completed the set.
      expect(r2.trainingSet).toMatchObject({ suppressedNearDuplicates: 1, nearDuplicateOf: null });
    });

    it('decides the same whatever order the files arrive in', async () => {
      const { results, manifest } = await ingestAll(await makeStore(), [day2(), day1(), day0()]);
      const [, r1, r0] = results as [unknown, (typeof results)[0], (typeof results)[0]];
      expect(manifest.counts.suppressedNearDuplicates).toBe(1);
      expect(manifest.subjects.find((s) => s.current.key === r0.trainingKey)?.nearDuplicateOf?.key).toBe(
        r1.trainingKey,
      );
      // The export whose example is suppressed is told so (ETL summary, TrainingNearDuplicates metric).
      expect(r0.trainingSet?.nearDuplicateOf).toBe(r1.trainingKey);
    });

    it('keeps both when a figure differs by more than 5 %', async () => {
      const { manifest } = await ingestAll(await makeStore(), [day0(), stepsExport(1, 11_300)]);
      expect(manifest.counts).toMatchObject({ examples: 2, suppressedNearDuplicates: 0 });
    });

    it('partial-day supersession still holds: only current examples are compared', async () => {
      // Prepare: day 1 fetched at 10:27 local (a running total), then the full day.
      const morning = stepsExport(1, 1_210, 10.45, 101);
      const { results, manifest } = await ingestAll(await makeStore(), [day0(), morning, day1()]);
      const [r0, rMorning, r1] = results as [(typeof results)[0], (typeof results)[0], (typeof results)[0]];

      // Assess: the running total is superseded by the full day (one current example per subject),
      // and the full day then suppresses its near-duplicate of day 0.
      expect(rMorning.narrative).toMatch(/as of 10:27 \(44 % of the day\)/);
      const day1Subject = manifest.subjects.find((s) => s.current.key === r1.trainingKey);
      expect(day1Subject?.superseded.map((s) => s.key)).toEqual([rMorning.trainingKey]);
      expect(manifest.counts).toEqual({
        subjects: 2,
        examples: 1,
        superseded: 1,
        suppressedNearDuplicates: 1,
      });
      expect(manifest.trainingSet).toEqual([r1.trainingKey]);
      expect(manifest.subjects.find((s) => s.current.key === r0.trainingKey)?.nearDuplicateOf?.key).toBe(
        r1.trainingKey,
      );
    });
  });
}

contract('memory', async () => new MemoryRecordStore());

describe('PostgreSQL', () => {
  let db: TestSchema;
  let n = 0;
  beforeAll(async () => {
    db = await createTestSchema('health_near_dup');
  });
  afterAll(() => db.drop());
  contract('postgres', async () => {
    // Each case starts from an empty record state.
    n++;
    await db.pool.query(
      'TRUNCATE health_records, health_record_blocks, health_ingests, health_training_examples',
    );
    return new PostgresRecordStore(db.pool);
  });
  it('ran the contract on a fresh state each time', () => expect(n).toBeGreaterThan(0));
});

describe('the near-duplicate rule', () => {
  const example = (instruction: string, output: string): TrainingExample =>
    ({
      instruction,
      output,
      metadata: { userId: 'u', domain: 'cardiovascular_fitness', recordsProcessed: 70 },
    }) as unknown as TrainingExample;

  it('masks dates, clock times and numbers, and reads a range as two numbers', () => {
    const { masked, numbers } = maskOutput(
      'Heart rate from com.google.android.apps.fitness (times in UTC-05:00) from 2025-11-04 06:10 to 2025-11-04 21:55; average 72.4 bpm, range 52-105 bpm, 1,234 samples.',
    );
    expect(masked).toBe(
      'Heart rate from com.google.android.apps.fitness (times in UTC-<time>) from <date> <time> to <date> <time>; average # bpm, range #-# bpm, # samples.',
    );
    expect(numbers).toEqual([72.4, 52, 105, 1234]);
  });

  it('a different instruction, different wording or a figure out of tolerance keeps both', () => {
    const base = nearDuplicateFingerprint(example('Q', 'Average 72.4 bpm over 2 bouts.'));
    expect(
      isNearDuplicate(base, nearDuplicateFingerprint(example('Q', 'Average 72.9 bpm over 2 bouts.'))),
    ).toBe(true);
    expect(
      isNearDuplicate(base, nearDuplicateFingerprint(example('R', 'Average 72.4 bpm over 2 bouts.'))),
    ).toBe(false);
    expect(
      isNearDuplicate(base, nearDuplicateFingerprint(example('Q', 'Average 72.4 bpm over 3 bouts.'))),
    ).toBe(false);
    expect(isNearDuplicate(base, nearDuplicateFingerprint(example('Q', 'Mean 72.4 bpm over 2 bouts.')))).toBe(
      false,
    );
  });
});
