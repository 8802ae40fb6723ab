// The router container's bundles: main.mjs and the Redis sinks' worker (redis-sink-worker.mjs,
// started from main.mjs by lambdas/platform/worker.ts), written to the directory given. The
// Dockerfile runs this, and so do the surge benchmark (test/bench/router-surge.ts) and the infra
// test, so what they measure and check is what ships. How: lambdas/platform/container-bundle.mjs.
//
//   node lambdas/realtime-router/build.mjs <outdir>
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleContainer, outdirArgument } from '../platform/container-bundle.mjs';

const here = dirname(fileURLToPath(import.meta.url));
await bundleContainer(
  [join(here, 'main.ts'), join(here, 'redis-sink-worker.ts')],
  outdirArgument('lambdas/realtime-router/build.mjs'),
);
