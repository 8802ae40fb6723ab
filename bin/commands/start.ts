import { stageUp } from '../../localstack/stage';
import { run as replay } from './replay';
import { run as status } from './status';

export const summary = 'start: bring the local stage up and run the main job (what `npm start` does)';

/** The main job: the stage's health report, then the health ETL replay of the sample exports. */
export async function run(): Promise<number> {
  const { seconds } = await stageUp();
  console.log(`local stage up in ${seconds.toFixed(1)} s\n\n== pipeline health`);
  const healthy = await status([]);
  console.log('\n== health ETL replay (test/fixtures/health: 26 samples + bad files)');
  const replayed = await replay([]);
  return Math.max(healthy, replayed);
}
