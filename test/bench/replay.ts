/**
 * End-to-end replay of the 26 sample exports on the local stage (S3 -> notification -> SQS -> runner
 * -> handler -> PostgreSQL/S3), on a `bench` stage with a fresh database: first a cold pass (every
 * file decided), then a warm pass of the same files (every file a duplicate). Target: < 5 s for the
 * 26 samples; the replaced system's floor was 60 s.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { replayReport } from '../../bin/reports/replay';
import { createPool } from '../../lambdas/platform/postgres';
import type { ReportSection } from '../../lib/cli/report';
import { applyLocalDefaults, checkoutDatabaseUrl, databaseNameOf } from '../../localstack/env';
import { stopBackground } from '../../localstack/processes';
import { replay, replayDependencies } from '../../localstack/replay';
import { stageUp } from '../../localstack/stage';
import { SAMPLES_DIR } from '../fixtures/health/generator';

const BENCH_ENV = {
  LOCAL_STAGE_NAME: 'bench',
  // This checkout's own (tickstock_bench_<checkout tag>): two checkouts never drop each other's.
  DATABASE_URL: checkoutDatabaseUrl('bench'),
};

export async function bench(): Promise<ReportSection[]> {
  const sections: ReportSection[] = [];
  const keys = [...Object.keys(BENCH_ENV), 'LOCAL_STAGE_ID', 'DATA_BUCKET'];
  const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  Object.assign(process.env, BENCH_ENV);
  // Empty: applyLocalDefaults derives them for the bench stage.
  process.env.LOCAL_STAGE_ID = '';
  process.env.DATA_BUCKET = '';
  applyLocalDefaults();
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  try {
    await stopBackground('runner-bench');
    const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${databaseNameOf(BENCH_ENV.DATABASE_URL)} WITH (FORCE)`);
    await admin.end();
    const up = await stageUp(() => undefined);
    console.log(
      `bench stage up in ${up.seconds.toFixed(1)} s (fresh database ${databaseNameOf(BENCH_ENV.DATABASE_URL)}, new runner)`,
    );
    const pool = createPool({ connectionString: BENCH_ENV.DATABASE_URL, max: 2 });
    const deps = await replayDependencies({ s3, sqs, pool });
    try {
      for (const pass of ['cold (all decided)', 'warm (all duplicate)']) {
        const r = await replay([SAMPLES_DIR], deps);
        const c = r.counts;
        console.log(
          `replay 26 samples, ${pass}: ${r.seconds.toFixed(2)} s (target < 5 s; floor 60 s), ${r.filesPerSecond.toFixed(1)} files/s, ` +
            `latency p50 ${r.latencyMs.p50} ms p95 ${r.latencyMs.p95} ms p99 ${r.latencyMs.p99} ms; ` +
            `processed ${c.processed} duplicate ${c.duplicate} quarantined ${c.quarantined} dead-lettered ${c['dead-lettered']} pending ${c.pending}`,
        );
        const [, latency, throughput] = replayReport(r, pass).sections;
        for (const s of [latency, throughput]) if (s) sections.push({ ...s, title: `${pass}: ${s.title}` });
      }
    } finally {
      await pool.end();
    }
    return sections;
  } finally {
    await stopBackground('runner-bench');
    s3.destroy();
    sqs.destroy();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
