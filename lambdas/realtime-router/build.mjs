// The router container's bundles: main.mjs and the Redis sinks' worker (redis-sink-worker.mjs,
// started from main.mjs by lambdas/platform/worker.ts), written to the directory given. The
// Dockerfile runs this, and so does the surge benchmark (test/bench/router-surge.ts), so the
// benchmark measures the code and the memory that ship.
//
//   node lambdas/realtime-router/build.mjs <outdir>
//
// Memory is part of the router's target: an idle router was 208 MB of RSS with the bundles as
// they were (unminified, source maps holding every module's source, parsed by
// --enable-source-maps at start) and 154 MB with these options. Stack traces still map to the
// TypeScript files and lines (the maps keep names and positions, only not the sources' text), and
// keepNames keeps class and function names (error names, logs) through minification.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const outdir = process.argv[2];
if (!outdir) {
  console.error('usage: node lambdas/realtime-router/build.mjs <outdir>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, 'main.ts'), join(here, 'redis-sink-worker.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outdir,
  outExtension: { '.js': '.mjs' },
  sourcemap: true,
  sourcesContent: false,
  minify: true,
  keepNames: true,
  // ws's optional native helpers: not installed, ws falls back to JavaScript.
  external: ['bufferutil', 'utf-8-validate'],
  // Bundled CommonJS dependencies call require() in an ES module.
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
