import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations, MigrationChecksumError, migrate } from '../../../lambdas/platform/migrations';
import { createTestSchema, type TestSchema } from '../../support/db';

describe('migrate', () => {
  let db: TestSchema;
  let dir: string;

  beforeAll(async () => {
    db = await createTestSchema('migrations', { migrate: false });
    dir = await mkdtemp(join(tmpdir(), 'migrations-'));
    await writeFile(join(dir, '0002_second.sql'), 'ALTER TABLE widget ADD COLUMN colour text;');
    await writeFile(join(dir, '0001_first.sql'), 'CREATE TABLE widget (id int PRIMARY KEY);');
    await writeFile(join(dir, 'README.md'), 'not a migration');
  });
  afterAll(() => db.drop());

  it('applies files in order, then re-applies with no change', async () => {
    const migrations = await loadMigrations(dir);
    expect(migrations.map((m) => m.version)).toEqual(['0001_first', '0002_second']);

    const first = await migrate(db.pool, migrations, db.schema);
    const second = await migrate(db.pool, migrations, db.schema);

    expect(first).toEqual({ applied: ['0001_first', '0002_second'], alreadyApplied: [] });
    expect(second).toEqual({ applied: [], alreadyApplied: ['0001_first', '0002_second'] });
    const { rows } = await db.pool.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'widget' ORDER BY 1`,
      [db.schema],
    );
    expect(rows.map((r) => r.column_name)).toEqual(['colour', 'id']);
  });

  it('refuses an applied migration whose text changed', async () => {
    await writeFile(join(dir, '0001_first.sql'), 'CREATE TABLE widget (id bigint PRIMARY KEY);');
    await expect(migrate(db.pool, await loadMigrations(dir), db.schema)).rejects.toBeInstanceOf(
      MigrationChecksumError,
    );
  });

  it('rolls back a failing migration and records nothing for it', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'migrations-'));
    await writeFile(join(broken, '0001_ok.sql'), 'CREATE TABLE gadget (id int);');
    await writeFile(join(broken, '0002_bad.sql'), 'CREATE TABLE half (id int); SELECT * FROM missing_table;');
    const other = await createTestSchema('migrations_bad', { migrate: false });
    try {
      await expect(migrate(other.pool, await loadMigrations(broken), other.schema)).rejects.toThrow(
        /0002_bad/,
      );
      const { rows } = await other.pool.query(`SELECT version FROM ${other.schema}.schema_migrations`);
      expect(rows.map((r) => r.version)).toEqual(['0001_ok']);
      const half = await other.pool.query(`SELECT to_regclass('${other.schema}.half') AS t`);
      expect(half.rows[0].t).toBeNull();
    } finally {
      await other.drop();
    }
  });
});
