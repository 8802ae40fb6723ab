import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProcessExportResult, processExport } from '../../../lambdas/health/pipeline';
import type { GlucoseInsights } from '../../../lambdas/health/processors/glucose';
import {
  MemoryRecordStore,
  PostgresRecordStore,
  type RecordStore,
} from '../../../lambdas/health/record-store';
import { rawKeyFor } from '../../../lambdas/health/source';
import type { BloodGlucoseRecord } from '../../../lambdas/health/types';
import { FIXTURES_DIR, type ManifestEntry } from '../../fixtures/health/generator';
import { createTestSchema, type TestSchema } from '../../support/db';
import { loadSample, NOW } from './helpers';

const HOSTILE_DIR = join(FIXTURES_DIR, 'hostile');
const manifest: ManifestEntry[] = JSON.parse(readFileSync(join(FIXTURES_DIR, 'manifest.json'), 'utf8'));
const expected = new Map(
  manifest.filter((m) => m.file.startsWith('hostile/')).map((m) => [m.file.slice('hostile/'.length), m]),
);
const files = readdirSync(HOSTILE_DIR)
  .filter((f) => f.endsWith('.avro'))
  .sort((a, b) => Number(a.replace(/\D+/g, '')) - Number(b.replace(/\D+/g, '')));

type Replayed = ProcessExportResult & { file: string };

/** Process every hostile file in fetch-time order, completing each processed one as a caller does. */
async function replayHostile(store: RecordStore): Promise<Replayed[]> {
  const out: Replayed[] = [];
  for (const file of files) {
    const bytes = readFileSync(join(HOSTILE_DIR, file));
    const r = await processExport({
      bytes,
      source: {
        bucket: 'health-raw',
        key: rawKeyFor(file),
        etag: createHash('md5').update(bytes).digest('hex'),
      },
      store,
      now: new Date(NOW),
    });
    if (r.status === 'processed') await store.completeIngest(r.sourceId);
    out.push({ ...r, file });
  }
  return out;
}

function hostileContract(name: string, make: () => Promise<RecordStore>) {
  describe(`the hostile corpus (${name} store)`, () => {
    let store: RecordStore;
    let results: Replayed[];
    const byNote = (text: string) => {
      const m = [...expected.values()].find((e) => e.note.includes(text));
      return results.find((r) => `hostile/${r.file}` === m?.file) as Replayed;
    };

    beforeAll(async () => {
      store = await make();
      results = await replayHostile(store);
    });

    it('every file ends in its documented terminal outcome with a reason', () => {
      expect(results).toHaveLength(7);
      for (const r of results) {
        const m = expected.get(r.file);
        expect({ file: r.file, status: r.status }).toEqual({ file: r.file, status: m?.expected });
        expect(r.reasons[0]).toMatch(new RegExp(`^${m?.reason}`));
      }
    });

    it('the copy of day 0 at 9999 mg/dL is quarantined, and the valid export of the same records is processed afterwards', async () => {
      // Prepare
      const poisoned = byNote('every level at 9999');
      const valid = byNote('the valid day-0 export');
      const records = await loadSample<'BloodGlucoseRecord'>('BloodGlucoseRecord_1762219812481.avro');
      const first = records[0] as BloodGlucoseRecord;

      // Assess
      expect(poisoned.status).toBe('quarantined');
      expect(poisoned.reasons[0]).toMatch(/^out_of_range: only 0\.0 % of glucose level values/);
      expect(poisoned.quarantine?.key).toMatch(/^quarantine\//);
      expect(valid.status).toBe('processed');
      expect(valid.records?.inserted).toBe(253);
      const stored = await store.getRecord('BloodGlucoseRecord', first.metadata.id);
      expect(stored?.value).toBe(first.levelInMilligramsPerDeciliter);
      const g = (valid.insights as unknown as GlucoseInsights).origins['com.dexcom.g7'];
      expect(g?.meanMgDl).toBe(111.5);
      expect(valid.narrative).not.toMatch(/9999/);
    });

    it('a re-export with 40 % damaged readings of the same versions keeps the intact ones and counts each conflict', async () => {
      const damaged = byNote('40 % of levels at 9999');
      expect(damaged.status).toBe('duplicate');
      expect(damaged.records?.conflicts).toBe(102);
      expect(damaged.records?.updated).toBe(0);
      expect(damaged.warnings.join('\n')).toMatch(/of glucose level values within 20-600/);
      const records = await loadSample<'BloodGlucoseRecord'>('BloodGlucoseRecord_1762219812481.avro');
      const first = records[0] as BloodGlucoseRecord;
      const log = await store.conflicts('BloodGlucoseRecord', first.metadata.id);
      expect(log).toMatchObject([
        { kept: 'stored', storedSourceId: byNote('the valid day-0 export').sourceId },
      ]);
      expect((await store.getRecord('BloodGlucoseRecord', first.metadata.id))?.value).toBe(
        first.levelInMilligramsPerDeciliter,
      );
    });

    it('steps fetched at 10:27 say "as of 10:27, 44 % of the day" and are not graded; the full day supersedes them', async () => {
      // Prepare
      const morning = byNote('fetched at 10:27');
      const fullDay = byNote('updated to the full day');

      // Assess: the running total is honest.
      expect(morning.narrative).toMatch(/^Steps on 2025-11-08 as of 10:27 \(44 % of the day\): 1,210 from /);
      expect(morning.narrative).toMatch(/The day had not ended when the data was exported/);
      expect(morning.narrative).not.toMatch(/sedentary|add about/);
      expect(morning.trainingExample?.metadata.subject).toMatchObject({ dayComplete: false, asOf: '10:27' });
      expect(morning.trainingExample?.metadata.training_category).toBe('partial_day');
      expect(morning.trainingExample?.instruction).toBe('How am I doing on steps so far today?');
      expect(fullDay.narrative).toMatch(/^Steps on 2025-11-08: 8,412 from /);
      expect(fullDay.trainingExample?.metadata.subject).toMatchObject({ dayComplete: true, asOf: null });

      // Assess: one current example per (domain, origin, local day), the older one kept as superseded.
      const subject = (await store.trainingManifest()).find(
        (s) => s.subjectKey === 'physical_activity|com.google.android.apps.fitness|2025-11-08',
      );
      expect(subject?.current.trainingKey).toBe(fullDay.trainingKey);
      expect(subject?.superseded.map((s) => s.trainingKey)).toEqual([morning.trainingKey]);
    });

    it('300 bpm spot readings are left out of the heart-rate figures and named', () => {
      const hr = byNote('300 bpm');
      expect(hr.status).toBe('processed');
      expect(hr.insights?.excludedOutOfRange).toMatchObject({ range: '30-220 bpm' });
      expect(hr.narrative).toMatch(/heart rate sample values? outside the physiological range 30-220 bpm/);
      expect(hr.narrative).not.toMatch(/300/);
    });

    it('quarantined files leave no record behind', async () => {
      expect(await store.countRecords('SleepSessionRecord')).toBe(0);
      expect(byNote('30 h').quarantine?.sidecarBody).toMatch(/out_of_range/);
    });
  });
}

hostileContract('memory', async () => new MemoryRecordStore());

describe('PostgreSQL', () => {
  let db: TestSchema;
  beforeAll(async () => {
    db = await createTestSchema('health_hostile');
  });
  afterAll(() => db.drop());
  hostileContract('postgres', async () => new PostgresRecordStore(db.pool));
});
