// The trading live engine container's bundle (main.mjs), written to the directory given. The
// Dockerfile runs this, and so does the infra test. How: lambdas/platform/container-bundle.mjs.
//
//   node lambdas/trading-live/build.mjs <outdir>
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleContainer, outdirArgument } from '../platform/container-bundle.mjs';

const here = dirname(fileURLToPath(import.meta.url));
await bundleContainer([join(here, 'main.ts')], outdirArgument('lambdas/trading-live/build.mjs'));
