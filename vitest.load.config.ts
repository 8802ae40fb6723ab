import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// This checkout's load database, as localstack/env.ts's checkoutDatabaseUrl('load') names it (not
// imported: Vite's config loader warns about extensionless imports of project modules).
const ROOT = fileURLToPath(new URL('.', import.meta.url));
const LOAD_DATABASE_URL =
  process.env.LOAD_DATABASE_URL ||
  `postgres://postgres@127.0.0.1:5432/tickstock_load_${createHash('sha256').update(ROOT).digest('hex').slice(0, 6)}`;

// `npm run test:load`: the load tests, on a local stage of their own (`load`: bucket, queues,
// runner and a fresh database), so they never disturb `npm start` or `npm test`.
export default defineConfig({
  test: {
    include: ['test/load/**/*.test.ts'],
    globalSetup: ['test/load/setup.ts'],
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      LOCAL_STAGE_NAME: 'load',
      DATABASE_URL: LOAD_DATABASE_URL,
    },
    testTimeout: 900_000,
    hookTimeout: 900_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
