import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { collectFiles, type EtlSummary, run } from '../../../bin/commands/etl';
import { DOMAINS, RECORD_TYPES } from '../../../lambdas/health/types';
import { runCommand } from '../../../lib/cli/run';
import { BAD_DIR, FIXTURES_DIR, type ManifestEntry, SAMPLES_DIR } from '../../fixtures/health/generator';
import { createTestSchema, type TestSchema } from '../../support/db';

const manifest: ManifestEntry[] = JSON.parse(readFileSync(join(FIXTURES_DIR, 'manifest.json'), 'utf8'));

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

const readSummary = (out: string): EtlSummary => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
const byName = (s: EtlSummary, name: string) => s.files.find((f) => f.file.endsWith(`/${name}`));

describe('pipeline etl run (PostgreSQL record state)', () => {
  let db: TestSchema;
  let first: string;
  let second: string;
  let codes: number[];
  const env = process.env.DATABASE_URL;

  beforeAll(async () => {
    // Prepare
    db = await createTestSchema('health_etl_cli');
    process.env.DATABASE_URL = db.url;
    first = await mkdtemp(join(tmpdir(), 'etl-1-'));
    second = await mkdtemp(join(tmpdir(), 'etl-2-'));
    vi.spyOn(console, 'log').mockImplementation(() => undefined);

    // Act: the samples and the bad files together, twice over the same store.
    codes = [
      await run(['run', SAMPLES_DIR, BAD_DIR, '--out', first, '--schema', db.schema]),
      await run(['run', SAMPLES_DIR, BAD_DIR, '--out', second, '--schema', db.schema]),
    ];
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    process.env.DATABASE_URL = env;
    await db.drop();
    await rm(first, { recursive: true, force: true });
    await rm(second, { recursive: true, force: true });
  });

  it('exits 0 although 11 files are bad', () => {
    expect(codes).toEqual([0, 0]);
  });

  it('first run: the outcome documented for every file in the fixtures README', () => {
    const summary = readSummary(first);
    for (const m of manifest.filter((x) => !x.file.startsWith('codecs/') && !x.file.startsWith('hostile/'))) {
      const name = m.file.split('/').pop() as string;
      expect({ name, status: byName(summary, name)?.status }).toEqual({ name, status: m.expected });
    }
    expect(summary.totals).toMatchObject({
      files: 37,
      processed: 23,
      duplicate: 3,
      quarantined: 11,
      failed: 0,
      trainingExamples: 23,
    });
  });

  it('first run: training JSONL for all six domains under the S3 key layout', () => {
    const training = filesUnder(join(first, 'training')).filter((f) => f.endsWith('.jsonl'));
    expect(training).toHaveLength(23);
    // The manifest lists every example once: current per subject, or superseded by a later export.
    const manifestBody = JSON.parse(readFileSync(join(first, 'training', 'manifest.json'), 'utf8'));
    const listed = manifestBody.subjects.flatMap(
      (s: { current: { key: string }; superseded: { key: string }[] }) => [
        s.current.key,
        ...s.superseded.map((x) => x.key),
      ],
    );
    expect(listed.map((k: string) => k.slice('training/'.length)).sort()).toEqual([...training].sort());
    // No sample export repeats another's (domain, origins, period): under the old rule (the day of a
    // file's LAST record) the day-0 glucose example ran past UTC midnight and was superseded by
    // day 1's, and the 11-04 nap by the night that began that evening. Genuine supersession (a later
    // export of the same subject) is tested in training-subject.test.ts and hostile.test.ts.
    expect(manifestBody.counts).toMatchObject({ subjects: 23, superseded: 0 });
    expect(manifestBody.subjects.map((s: { subject: string }) => s.subject)).toEqual(
      expect.arrayContaining([
        'metabolic_diabetes|com.dexcom.g7|2025-11-03',
        'metabolic_diabetes|com.dexcom.g7|2025-11-04',
        'sleep_recovery|com.ouraring.oura|2025-11-04',
        'sleep_recovery|com.ouraring.oura|2025-11-04|nap',
      ]),
    );
    for (const type of RECORD_TYPES) {
      expect(training.some((f) => f.startsWith(`${DOMAINS[type]}/2025/11/`) && f.includes(`${type}_`))).toBe(
        true,
      );
    }
    for (const f of training) {
      const lines = readFileSync(join(first, 'training', f), 'utf8').split('\n');
      expect(lines).toHaveLength(2);
      expect(Object.keys(JSON.parse(lines[0] as string))).toEqual([
        'instruction',
        'input',
        'output',
        'metadata',
      ]);
    }
  });

  it('first run: every bad file copied to quarantine/ with its sidecar and a clear reason', () => {
    const quarantine = filesUnder(join(first, 'quarantine'));
    expect(quarantine.filter((f) => f.endsWith('.metadata.json'))).toHaveLength(11);
    expect(quarantine.filter((f) => f.endsWith('.avro'))).toHaveLength(11);
    const summary = readSummary(first);
    for (const m of manifest.filter((x) => x.file.startsWith('bad/'))) {
      const entry = byName(summary, m.file.slice(4));
      const sidecar = JSON.parse(readFileSync(join(first, `${entry?.quarantineKey}.metadata.json`), 'utf8'));
      expect(`${sidecar.error?.name ?? ''} ${sidecar.reasons.join(' ')}`).toContain(m.reason);
      expect(readFileSync(join(first, entry?.quarantineKey as string))).toEqual(
        readFileSync(join(BAD_DIR, m.file.slice(4))),
      );
    }
  });

  it('summary entries carry file, recordType, status, recordsRead, qualityScore, reasons, insights', () => {
    const entry = byName(readSummary(first), 'BloodGlucoseRecord_1762219812481.avro');
    expect(entry).toMatchObject({
      recordType: 'BloodGlucoseRecord',
      status: 'processed',
      recordsRead: 253,
      qualityScore: 1,
      reasons: ['new_data: 253 new and 0 updated records'],
      insights: { origins: { 'com.dexcom.g7': { meanMgDl: 111.5, cvPercent: 13.5 } } },
    });
  });

  it('first run: sleep sessions kept in PostgreSQL, resting heart rate from the samples asleep', async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::integer AS n FROM health_sleep_spans',
    );
    expect(rows[0]?.n).toBe(6); // 5 sleep exports, one with two apps' sessions of the same night
    for (const f of readSummary(first).files.filter(
      (x) => x.recordType === 'HeartRateRecord' && x.status === 'processed',
    ))
      expect({ file: f.file, method: f.insights?.restingMethod }).toEqual({
        file: f.file,
        method: 'sleep_sessions',
      });
  });

  it('second run over the same store: all samples duplicate, bad files quarantined again, no new training objects', () => {
    const summary = readSummary(second);
    expect(summary.totals).toMatchObject({
      processed: 0,
      duplicate: 26,
      quarantined: 11,
      failed: 0,
      trainingExamples: 0,
    });
    expect(filesUnder(join(second, 'training'))).toEqual([]);
    expect(filesUnder(join(first, 'training')).filter((f) => f.endsWith('.jsonl'))).toHaveLength(23);
  });
});

describe('pipeline etl run --memory and arguments', () => {
  it('--memory runs without PostgreSQL', async () => {
    const out = await mkdtemp(join(tmpdir(), 'etl-mem-'));
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await run(['run', SAMPLES_DIR, '--out', out, '--memory'])).toBe(0);
      expect(readSummary(out)).toMatchObject({ store: 'memory', totals: { processed: 23, duplicate: 3 } });
    } finally {
      log.mockRestore();
      await rm(out, { recursive: true, force: true });
    }
  });

  it("totals.recordConflicts sums the files' same-version conflicts (hostile corpus)", async () => {
    const out = await mkdtemp(join(tmpdir(), 'etl-conflicts-'));
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await run(['run', join(FIXTURES_DIR, 'hostile'), '--out', out])).toBe(0);
      const summary = readSummary(out);
      const perFile = summary.files.map((f) => f.records?.conflicts ?? 0);
      expect(summary.totals.recordConflicts).toBe(perFile.reduce((a, b) => a + b, 0));
      // The re-export with 40 % of levels at 9999: each damaged reading is a conflict.
      expect(byName(summary, 'BloodGlucoseRecord_1762221600022.avro')?.records?.conflicts).toBeGreaterThan(0);
    } finally {
      log.mockRestore();
      await rm(out, { recursive: true, force: true });
    }
  });

  it('sleep exports run first, then every file in fetch-time order', async () => {
    const files = (await collectFiles([SAMPLES_DIR])).map((f) => basename(f));
    expect(files.slice(0, 5).every((f) => f.startsWith('SleepSessionRecord_'))).toBe(true);
    const fetch = (f: string) => Number(f.replace(/\D+/g, ''));
    for (const part of [files.slice(0, 5), files.slice(5)])
      expect(part.map(fetch)).toEqual([...part.map(fetch)].sort((a, b) => a - b));
  });

  it('usage errors exit 2, no input files exit 1', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await runCommand(run, ['run', SAMPLES_DIR])).toBe(2);
      expect(await runCommand(run, ['walk', SAMPLES_DIR, '--out', tmpdir()])).toBe(2);
      expect(
        await runCommand(run, ['run', SAMPLES_DIR, '--out', tmpdir(), '--threshold', '3', '--memory']),
      ).toBe(2);
      const empty = await mkdtemp(join(tmpdir(), 'etl-empty-'));
      expect(await runCommand(run, ['run', empty, '--out', empty, '--memory'])).toBe(1);
      await rm(empty, { recursive: true, force: true });
    } finally {
      err.mockRestore();
    }
  });
});

describe('pipeline etl run without --schema: never depends on what the stage recorded', () => {
  let db: TestSchema;
  const saved = { url: process.env.DATABASE_URL, schema: process.env.PG_SCHEMA };
  const dirs: string[] = [];

  beforeAll(async () => {
    // Prepare: a record store that already holds every sample, as the stage's does after `npm start`,
    // and the environment pointing at it (the CLI used to default to it).
    db = await createTestSchema('health_etl_stage');
    process.env.DATABASE_URL = db.url;
    process.env.PG_SCHEMA = db.schema;
    const stage = await mkdtemp(join(tmpdir(), 'etl-stage-'));
    dirs.push(stage);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await run(['run', SAMPLES_DIR, '--out', stage, '--schema', db.schema])).toBe(0);
    expect(readSummary(stage).totals.processed).toBe(23);
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    process.env.DATABASE_URL = saved.url;
    if (saved.schema === undefined) delete process.env.PG_SCHEMA;
    else process.env.PG_SCHEMA = saved.schema;
    await db.drop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('a plain run writes every training file again (fresh store) and says so on its first line', async () => {
    const out = await mkdtemp(join(tmpdir(), 'etl-fresh-'));
    dirs.push(out);
    const lines: string[] = [];
    vi.mocked(console.log).mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));

    // Act: twice, as an operator re-running it would
    expect(await run(['run', SAMPLES_DIR, '--out', out])).toBe(0);
    const first = readSummary(out);
    expect(await run(['run', SAMPLES_DIR, '--out', out])).toBe(0);

    // Assess
    expect(first).toMatchObject({ store: 'memory', totals: { processed: 23, duplicate: 3 } });
    expect(readSummary(out).totals).toMatchObject({ processed: 23, duplicate: 3 });
    expect(filesUnder(join(out, 'training')).filter((f) => f.endsWith('.jsonl'))).toHaveLength(23);
    expect(lines[0]).toMatch(/^record store: memory, fresh for this run/);
  });

  it('with --schema of that store: duplicates, and the first line says why and how to get a fresh run', async () => {
    const out = await mkdtemp(join(tmpdir(), 'etl-kept-'));
    dirs.push(out);
    const lines: string[] = [];
    vi.mocked(console.log).mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));

    expect(await run(['run', SAMPLES_DIR, '--out', out, '--schema', db.schema])).toBe(0);

    expect(readSummary(out).totals).toMatchObject({ processed: 0, duplicate: 26 });
    expect(lines[0]).toMatch(
      /^record store: postgresql \(schema t_health_etl_stage_\w+\), kept across runs: 26 export\(s\) already recorded there count as duplicate \(leave out --schema/,
    );
  });
});
