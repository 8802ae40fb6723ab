import pg from 'pg';
import { applyLocalDefaults } from '../../localstack/env';
import { stopBackground } from '../../localstack/processes';
import { stageUp } from '../../localstack/stage';

/** A fresh `load` stage: its runner stopped, its database recreated, then the stage brought up. */
export default async function setup(): Promise<void> {
  process.env.LOCAL_STAGE_NAME = 'load';
  process.env.DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/tickstock_load';
  applyLocalDefaults();
  await stopBackground('runner-load');
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS tickstock_load WITH (FORCE)');
  await admin.end();
  const { seconds } = await stageUp((line) => console.log(`[stage] ${line}`));
  console.log(`[stage] load stage ready in ${seconds.toFixed(1)} s`);
}
