import { parseArgs } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createPool } from '../../lambdas/platform/postgres';
import { REPO_ROOT } from '../../lib/paths';
import { type ReplayReport, replay, replayDependencies } from '../../localstack/replay';
import { stageUp } from '../../localstack/stage';

export const summary =
  'replay [file|dir]...: upload Health Connect exports to the local stage and report every outcome';

export const DEFAULT_REPLAY_PATHS = [
  `${REPO_ROOT}test/fixtures/health/samples`,
  `${REPO_ROOT}test/fixtures/health/bad`,
];

export function printReport(report: ReplayReport): void {
  for (const f of report.files) {
    const latency = f.latencyMs === null ? '' : `${f.latencyMs} ms`;
    const why = f.reasons?.length ? `  ${f.reasons.join('; ').slice(0, 100)}` : '';
    console.log(`${f.outcome.padEnd(14)} ${latency.padStart(8)}  ${f.file}${why}`);
  }
  console.log('\nper type:');
  for (const [type, counts] of Object.entries(report.byType).sort())
    console.log(`  ${type.padEnd(34)} ${JSON.stringify(counts)}`);
  const c = report.counts;
  console.log(
    `\nuploaded ${report.uploaded} = processed ${c.processed} + quarantined ${c.quarantined} + duplicate ${c.duplicate} + dead-lettered ${c['dead-lettered']}` +
      `${c.pending ? ` (+ ${c.pending} still pending)` : ''}: ${report.identityHolds ? 'holds' : 'DOES NOT HOLD'}`,
  );
  console.log(
    `${report.seconds.toFixed(2)} s, ${report.filesPerSecond.toFixed(1)} files/s, latency p50 ${report.latencyMs.p50} ms, p95 ${report.latencyMs.p95} ms, p99 ${report.latencyMs.p99} ms`,
  );
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, timeout: { type: 'string', default: '120' } },
  });
  await stageUp(() => undefined);
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  const pool = createPool({ connectionString: process.env.DATABASE_URL as string, max: 2 });
  try {
    const report = await replay(positionals.length > 0 ? positionals : DEFAULT_REPLAY_PATHS, {
      ...(await replayDependencies({ s3, sqs, pool })),
      timeoutMs: Number(values.timeout) * 1_000,
      say: (line) => console.log(line),
    });
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else printReport(report);
    return report.identityHolds ? 0 : 1;
  } finally {
    await pool.end();
    s3.destroy();
    sqs.destroy();
  }
}
