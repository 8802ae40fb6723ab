import { SQSClient } from '@aws-sdk/client-sqs';
import { isTradingDay, latestSession } from '../../lambdas/market/calendar';
import { type EodChainDeps, runEodChain } from '../../lambdas/market/eod/chain';
import { notTradingReason } from '../../lambdas/market/eod/load';
import { providerFromEnv } from '../../lambdas/market/provider';
import { resolveQualityConfig } from '../../lambdas/market/quality';
import { localComponentUrl } from '../../lambdas/platform/connections';
import { DEFAULT_NAMESPACE, EventBus } from '../../lambdas/platform/event-bus';
import { outboxTransport } from '../../lambdas/platform/outbox-transport';
import { createPool } from '../../lambdas/platform/postgres';
import { queueUrl } from '../../lambdas/platform/queues';
import { createRedisClient } from '../../lambdas/platform/redis';

import { EXIT, marketSchema, oneOf, parseCommandArgs, parseDate, UsageError } from '../../lib/cli/args';
import { emit } from '../../lib/cli/output';
import { writeReport } from '../../lib/cli/report';
import { eodReport } from '../reports/eod';

export const summary =
  'eod run [--date YYYY-MM-DD] [--schema S] [--force] [--threshold 0.95] [--namespace NS] [--report FILE.html] [--json]: the EOD chain for a session (load -> IPO scan -> quality -> EOD signal -> universe sync)';

export async function run(args: string[]): Promise<number> {
  const usage = `usage: npm run pipeline -- ${summary}`;
  const { values, positionals } = parseCommandArgs(args, {
    allowPositionals: true,
    options: {
      date: { type: 'string' },
      schema: { type: 'string' },
      force: { type: 'boolean', default: false },
      threshold: { type: 'string', default: process.env.EOD_COVERAGE_THRESHOLD },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE ?? DEFAULT_NAMESPACE },
      report: { type: 'string' },
    },
    usage,
  });
  oneOf('eod action', positionals[0], ['run'] as const);
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`, usage);
  const tradeDate = values.date === undefined ? latestSession() : parseDate('--date', values.date);
  if (values.report !== undefined && !values.report.endsWith('.html')) {
    throw new UsageError(`--report ${values.report}: expected an .html file name`, usage);
  }
  const threshold = values.threshold ? Number(values.threshold) : undefined;
  if (threshold !== undefined && !(threshold > 0 && threshold <= 1)) {
    throw new UsageError(
      `--threshold ${values.threshold}: expected a coverage ratio in (0, 1], e.g. 0.95`,
      usage,
    );
  }
  const { schema, line } = marketSchema(values.schema);
  if (!values.json) console.log(line);
  if (!isTradingDay(tradeDate)) {
    // Weekends and market holidays have no session: nothing to load, signal or sync.
    emit(values.json, { tradeDate, schema, status: 'skipped', reason: notTradingReason(tradeDate) }, (r) =>
      console.log(`eod ${r.tradeDate}: skipped, ${r.reason}`),
    );
    return EXIT.ok;
  }
  const url = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!url || !redisUrl) throw new Error('DATABASE_URL and REDIS_URL must be set');
  const pool = createPool({ connectionString: localComponentUrl(url, 'market'), schema, max: 4 });
  const redis = createRedisClient({ url: redisUrl });
  const sqs = new SQSClient({});
  try {
    await redis.connect();
    const transportFor = (service: string) => {
      const bus = new EventBus({ client: redis, service, namespace: values.namespace });
      return { bus, transport: outboxTransport({ bus, redis, sqs, queueUrl: (q) => queueUrl(sqs, q) }) };
    };
    const deps: EodChainDeps = {
      pool,
      provider: providerFromEnv(),
      transportFor,
      qualityConfig: resolveQualityConfig(
        process.env.QUALITY_CONFIG ? JSON.parse(process.env.QUALITY_CONFIG) : {},
      ),
      log: (line) => (values.json ? console.error(line) : console.log(line)),
    };
    const result = await runEodChain(deps, {
      tradeDate,
      force: values.force,
      ...(threshold !== undefined ? { threshold } : {}),
    });
    if (values.json) console.log(JSON.stringify({ schema, ...result }, null, 2));
    if (values.report) {
      await writeReport(values.report, eodReport(result, schema));
      console.error(`report: ${values.report}`);
    }
    return result.ok ? EXIT.ok : EXIT.failure;
  } finally {
    sqs.destroy();
    await Promise.allSettled([pool.end(), redis.close()]);
  }
}
