import { stageDown, stageStatus, stageUp } from '../../localstack/stage';

export const summary = 'stage up|down|status: the local stage (LocalStack, PostgreSQL, Redis, runner)';

export async function run(args: string[]): Promise<number> {
  switch (args[0]) {
    case 'up': {
      const { seconds } = await stageUp();
      console.log(`local stage up in ${seconds.toFixed(1)} s (logs: localstack/.state/*.log)`);
      return 0;
    }
    case 'down':
      await stageDown();
      return 0;
    case 'status': {
      const status = await stageStatus();
      console.log(JSON.stringify(status, null, 2));
      return status.localstack.running && status.postgres.reachable && status.redis.reachable ? 0 : 1;
    }
    default:
      console.error(`usage: npm run pipeline -- ${summary}`);
      return 2;
  }
}
