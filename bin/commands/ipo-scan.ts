import { SQSClient } from '@aws-sdk/client-sqs';
import { latestSession } from '../../lambdas/market/calendar';
import { DEFAULT_MAX_NEW, type IpoScanSummary, runIpoScan } from '../../lambdas/market/ipo/scan';
import { providerFromEnv } from '../../lambdas/market/provider';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { DEFAULT_NAMESPACE, EventBus, SEED_SERVICES } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { createRedisClient } from '../../lambdas/platform/redis';
import { EXIT, marketSchema, parseCommandArgs, parseDate, parseInteger } from '../../lib/cli/args';
import { emit, keyValues } from '../../lib/cli/output';

export const summary =
  'ipo-scan [--date YYYY-MM-DD] [--max-new N] [--schema S] [--json]: find new listings and delistings for a date, enqueue backfills, publish to the app';

const USAGE = `usage: npm run pipeline -- ${summary}`;

function print(r: IpoScanSummary, maxNew: number): void {
  console.log(
    keyValues([
      ['date', r.date],
      ['provider tickers', r.providerTickers],
      ['new tickers found', r.found],
      [
        'new symbols added',
        `${r.processed}${r.deferred > 0 ? ` (at most ${maxNew} per run, --max-new; ${r.deferred} left for the next run)` : ''}`,
      ],
      ['detail fetch failed', `${r.failed}${r.failed > 0 ? ' (retried by the next run)' : ''}`],
      ['not tracked (type)', r.skippedUntracked],
      ['archived (delisted)', r.archived],
      ['reactivated', r.reactivated],
      ['universe assignments', r.universeAssignments],
      [
        'messages',
        `${r.messagesEnqueued} written to the outbox by this run; relay delivered ${r.relay.delivered}, recovered ${r.relay.recovered}, failed ${r.relay.failed} (the relay also sends what earlier runs left)`,
      ],
      ['took', `${r.durationSeconds.toFixed(2)} s`],
    ]),
  );
  for (const f of r.failures.slice(0, 10)) console.log(`  failed ${f.symbol}: ${f.error}`);
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, {
    options: {
      date: { type: 'string' },
      'max-new': { type: 'string' },
      schema: { type: 'string' },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE ?? DEFAULT_NAMESPACE },
    },
    usage: USAGE,
  });
  // Checked here, before any query: PostgreSQL's own message about a bad date helps nobody.
  const date = values.date === undefined ? latestSession() : parseDate('--date', values.date);
  const maxNew =
    values['max-new'] === undefined
      ? DEFAULT_MAX_NEW
      : parseInteger('--max-new', values['max-new'], 0, 100_000);
  const { schema, line } = marketSchema(values.schema);
  if (!values.json) console.log(line);
  const url = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!url || !redisUrl) throw new Error('DATABASE_URL and REDIS_URL must be set');
  const pool = createPool({ connectionString: localComponentUrl(url, 'market'), schema });
  const redis = createRedisClient({ url: redisUrl });
  await redis.connect();
  const sqs = new SQSClient({});
  try {
    const bus = new EventBus({
      client: redis,
      service: SEED_SERVICES.ipoMonitor,
      namespace: values.namespace,
    });
    const transport = outboxTransport({ bus, redis, sqs, queueUrl: (q) => queueUrl(sqs, q) });
    const result = await runIpoScan({ pool, provider: providerFromEnv(), transport }, { date, maxNew });
    emit(values.json, { schema, ...result }, (r) => print(r, maxNew));
    return result.relay.failed > 0 ? EXIT.failure : EXIT.ok;
  } finally {
    sqs.destroy();
    await redis.close();
    await pool.end();
  }
}
