import { defineConfig } from 'vitest/config';
import { TEST_DATABASE_URL } from './localstack/env';

// `npm run test:faults`: the fault suite (test/faults). It needs LocalStack, which the tests' global
// setup brings up (idempotently, as for `npm test`); everything it restarts is its own (throwaway
// PostgreSQL and Redis, a proxy in front of LocalStack, a market API, a runner child process).
// One file, one worker: the scenarios run one after another. Bounded by the timeouts below.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      DATABASE_URL: TEST_DATABASE_URL,
      LOCAL_STAGE_NAME: 'test',
    },
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
  },
});
