import { stageUp } from '../../localstack/stage';
import { run as status } from './status';

export const summary = 'start: bring the local stage up and run the main job (what `npm start` does)';

export async function run(): Promise<number> {
  const { seconds } = await stageUp();
  console.log(`local stage up in ${seconds.toFixed(1)} s`);
  return status([]);
}
