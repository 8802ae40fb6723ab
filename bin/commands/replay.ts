import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createPool } from '../../lambdas/platform/postgres';
import { EXIT, parseCommandArgs, parseInteger, UsageError } from '../../lib/cli/args';
import { emit, formatPercent, table } from '../../lib/cli/output';
import { startProgress } from '../../lib/cli/progress';
import { writeReport } from '../../lib/cli/report';
import { REPO_ROOT } from '../../lib/paths';
import {
  exportFiles,
  ReplayInputError,
  type ReplayReport,
  replay,
  replayDependencies,
} from '../../localstack/replay';
import { stageUp } from '../../localstack/stage';
import { replayReport } from '../reports/replay';

export const summary =
  'replay [file.avro|dir]... [--timeout S] [--report FILE.html] [--json]: upload Health Connect exports to the local stage and report every outcome';

const USAGE = `usage: npm run pipeline -- ${summary}`;

export const DEFAULT_REPLAY_PATHS = [
  `${REPO_ROOT}test/fixtures/health/samples`,
  `${REPO_ROOT}test/fixtures/health/bad`,
];

const OUTCOMES = ['processed', 'duplicate', 'quarantined', 'dead-lettered', 'pending'] as const;

export function printReport(report: ReplayReport): void {
  console.log(
    table(
      ['outcome', 'latency', 'file'],
      report.files.map((f) => [f.outcome, f.latencyMs === null ? '' : `${f.latencyMs} ms`, f.file]),
      { right: [1] },
    ),
  );
  // Reasons in full, one per line under the table: a cut reason hides the one word that matters.
  const quarantined = report.files.filter((f) => f.reasons?.length);
  if (quarantined.length > 0) {
    console.log('\nwhy quarantined:');
    for (const f of quarantined) {
      console.log(`  ${f.file}`);
      for (const reason of f.reasons ?? []) console.log(`    - ${reason}`);
    }
  }
  console.log('\nper record type:');
  console.log(
    table(
      ['record type', ...OUTCOMES],
      Object.entries(report.byType)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([type, counts]) => [type, ...OUTCOMES.map((o) => counts[o] ?? 0)]),
      { indent: 2 },
    ),
  );
  const c = report.counts;
  console.log(
    `\nuploaded ${report.uploaded} = processed ${c.processed} + quarantined ${c.quarantined} + duplicate ${c.duplicate} + dead-lettered ${c['dead-lettered']}` +
      `${c.pending ? ` (+ ${c.pending} still pending)` : ''}: ${report.identityHolds ? 'holds' : 'DOES NOT HOLD'}`,
  );
  const decided = report.uploaded - c.pending;
  console.log(
    `${report.seconds.toFixed(2)} s for ${decided} outcomes (${formatPercent(report.uploaded ? decided / report.uploaded : 0)}), ` +
      `${report.filesPerSecond.toFixed(1)} files/s, latency p50 ${report.latencyMs.p50} ms, p95 ${report.latencyMs.p95} ms, p99 ${report.latencyMs.p99} ms`,
  );
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, {
    allowPositionals: true,
    options: { timeout: { type: 'string', default: '120' }, report: { type: 'string' } },
    usage: USAGE,
  });
  const timeoutSeconds = parseInteger('--timeout', values.timeout, 1, 3_600);
  if (values.report !== undefined && !values.report.endsWith('.html')) {
    throw new UsageError(`--report ${values.report}: expected an .html file name`, USAGE);
  }
  const paths = positionals.length > 0 ? positionals : DEFAULT_REPLAY_PATHS;
  // Refused before the stage is touched: a wrong folder is a usage error, not an upload.
  const files = await exportFiles(paths).catch((error: unknown) => {
    throw error instanceof ReplayInputError ? new UsageError(error.message, USAGE) : error;
  });
  await stageUp(() => undefined);
  const s3 = new S3Client({ forcePathStyle: true });
  const sqs = new SQSClient({});
  const pool = createPool({ connectionString: process.env.DATABASE_URL as string, max: 2 });
  const progress = startProgress('replay', { total: files.length });
  try {
    const report = await replay(paths, {
      ...(await replayDependencies({ s3, sqs, pool })),
      timeoutMs: timeoutSeconds * 1_000,
      progress: (done, _total, waitingFor) => progress.step(done, waitingFor),
    });
    progress.step(report.uploaded - report.counts.pending, 'files with an outcome');
    if (report.identityHolds) progress.succeed();
    else progress.fail(`${report.counts.pending} files without an outcome`);
    emit(values.json, report, printReport);
    if (values.report) {
      await writeReport(
        values.report,
        replayReport(report, `${paths.join(', ')} on local stage ${process.env.LOCAL_STAGE_ID}`),
      );
      console.error(`report: ${values.report}`);
    }
    return report.identityHolds ? EXIT.ok : EXIT.failure;
  } catch (error) {
    progress.fail();
    throw error;
  } finally {
    await pool.end();
    s3.destroy();
    sqs.destroy();
  }
}
