import { defineConfig } from 'vitest/config';
import { TEST_DATABASE_URL } from './localstack/env';

// Unit and infra tests need nothing running; integration tests need the local stage, which the
// global setup brings up (idempotently) before any file runs.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/infra/**/*.test.ts', 'test/integration/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      DATABASE_URL: TEST_DATABASE_URL,
      // The tests' own local stage: bucket, queues and runner apart from `npm start`'s.
      LOCAL_STAGE_NAME: 'test',
    },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
