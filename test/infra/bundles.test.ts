import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../lib/paths';
import { FUNCTIONS } from '../../lib/topology';

// Every handler the CDK app deploys (the topology's functions: consumers, EOD steps, scheduled jobs,
// status and migrate), bundled as NodejsFunction bundles it (esbuild, CommonJS, one file), then
// loaded the way the Lambda runtime loads it: outside this ESM package, by require(). A dependency
// that only works as ESM, or top-level await, fails here instead of at deploy time.
const CASES = FUNCTIONS.map((definition) => [definition.entry, definition] as const);

// The outbox relay drains every pending message, so a handler whose bundle contains it needs the
// outbox queues: the topology must say `relaysOutbox` exactly for those (issue 18's QueueDoesNotExist).
const RELAY = /function relayOutbox\d*\(/;

// What the CDK app sets; nothing connects at load time, so any reachable-looking values do.
const LAMBDA_ENV = {
  STAGE: 'dev',
  DATABASE_URL: 'postgres://bundle@127.0.0.1:1/bundle',
  REDIS_URL: 'redis://127.0.0.1:1',
  DATA_BUCKET: 'bundle-test',
  QUEUE_URLS: '{}',
  MIGRATIONS_DIR: './sql',
  MARKET_API_BASE_URL: 'http://127.0.0.1:1',
  POLYGON_API_KEY: 'bundle-test',
  QUEUE_URL_BACKFILL: 'http://127.0.0.1:1/q',
  QUEUE_URL_EQUITY_PROCESSING: 'http://127.0.0.1:1/q',
  BROKER_BASE_URL: 'http://127.0.0.1:1',
  BROKER_CREDENTIALS_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:bundle-test',
};

describe('Lambda bundles', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'bundles-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it.each(CASES)('%s bundles to CommonJS and exports handler', async (entry, definition) => {
    // Prepare
    const outfile = join(outdir, entry.replace(/[/.]/g, '_'), 'index.js');
    await build({
      entryPoints: [join(REPO_ROOT, entry)],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      logLevel: 'silent',
    });
    const saved = { ...process.env };
    Object.assign(process.env, LAMBDA_ENV);
    try {
      // Act
      const module = createRequire(outfile)(outfile) as { handler?: unknown };
      // Assess
      expect(typeof module.handler).toBe('function');
      expect({ entry, relaysOutbox: RELAY.test(readFileSync(outfile, 'utf8')) }).toEqual({
        entry,
        relaysOutbox: definition.relaysOutbox === true,
      });
    } finally {
      process.env = saved;
    }
  });
});
