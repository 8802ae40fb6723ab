import { defineConfig } from 'vitest/config';

// The same default as localstack/env.ts's TEST_DATABASE_URL. Not imported: Vite's config loader
// warns about extensionless imports of project modules (and their imports) in a config file.
const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tickstock_test';

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
