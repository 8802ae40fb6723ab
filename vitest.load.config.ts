import { defineConfig } from 'vitest/config';
import { checkoutDatabaseUrl } from './localstack/env';

// `npm run test:load`: the load tests, on a local stage of their own (`load`: bucket, queues,
// runner and a fresh database), so they never disturb `npm start` or `npm test`.
export default defineConfig({
  test: {
    include: ['test/load/**/*.test.ts'],
    globalSetup: ['test/load/setup.ts'],
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      LOCAL_STAGE_NAME: 'load',
      DATABASE_URL: checkoutDatabaseUrl('load'),
    },
    testTimeout: 900_000,
    hookTimeout: 900_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
