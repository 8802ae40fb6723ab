import type { JobDefinition } from './types';

/** Jobs on a schedule of their own (lib/constructs/scheduled-job.ts). */
export const SCHEDULED_JOBS: readonly JobDefinition[] = [
  {
    id: 'EquityDispatch',
    entry: 'lambdas/equity-dispatch/handler.ts',
    description: 'Equity-types queue: claims queued symbols by priority onto the processing queue',
    timeoutSeconds: 60,
    memoryMb: 256,
    sendsTo: ['EquityProcessing'],
    // Must equal the dispatcher's window (EQUITY_DISPATCH_WINDOW_SECONDS, 900 s by default).
    everyMinutes: 15,
  },
  {
    id: 'MarketCapRefresh',
    entry: 'lambdas/market-cap-refresh/handler.ts',
    description:
      "Market caps and ETF assets: the provider's details for the least recently refreshed symbols",
    // A free-tier batch (37 calls at 5/min) takes ~7.5 min; 80 % of the timeout bounds the batch.
    timeoutSeconds: 900,
    memoryMb: 256,
    needsInternet: true,
    // Must equal MARKET_CAP_REFRESH_EVERY_MINUTES (the batch is the plan's calls of one period).
    everyMinutes: 15,
  },
];

/**
 * The steps of the EOD chain, run in this order by a Step Functions state machine that EventBridge
 * Scheduler starts each weekday after the close. Read by the compute stack; `npm run pipeline -- eod
 * run` calls the same domain code in the same order.
 */
export const EOD_CHAIN: readonly JobDefinition[] = [
  {
    id: 'EodLoad',
    entry: 'lambdas/eod-load/handler.ts',
    description: "EOD 1/6: the day's bars for every symbol (grouped daily) and their coverage",
    timeoutSeconds: 300,
    memoryMb: 1024,
    needsInternet: true,
  },
  {
    id: 'IpoScan',
    entry: 'lambdas/ipo-scan/handler.ts',
    description: 'EOD 2/6: new listings and delistings, backfill jobs, universe assignment',
    // Details calls for new symbols are rate-limited; the scan caps new symbols per run.
    timeoutSeconds: 600,
    memoryMb: 512,
    needsInternet: true,
    sendsTo: ['Backfill'],
    relaysOutbox: true,
  },
  {
    id: 'QualityCheck',
    entry: 'lambdas/quality-check/handler.ts',
    description: 'EOD 3/6: price, volume, gap and staleness checks over every symbol',
    timeoutSeconds: 120,
    memoryMb: 512,
    // Splits for the date come from the provider.
    needsInternet: true,
    // It publishes through the outbox, so it relays whatever is pending.
    relaysOutbox: true,
    // It reports on the day; the EOD signal and the universe sync do not wait on it.
    observer: true,
  },
  {
    id: 'EodComplete',
    entry: 'lambdas/eod-complete/handler.ts',
    description: 'EOD 4/6: coverage after the scan, liquidity snapshot, the EOD completion signal',
    timeoutSeconds: 120,
    memoryMb: 512,
    relaysOutbox: true,
  },
  {
    id: 'UniverseSync',
    entry: 'lambdas/universe-sync/handler.ts',
    description: 'EOD 5/6: universes (market cap, sectors, themes, ETFs, IPOs) in one transaction',
    timeoutSeconds: 180,
    memoryMb: 1024,
    relaysOutbox: true,
  },
  {
    id: 'EtfCorrelation',
    entry: 'lambdas/etf-correlation/handler.ts',
    description: 'EOD 6/6: rolling return correlations of the ETF universes, changes beyond the threshold',
    timeoutSeconds: 120,
    memoryMb: 512,
    relaysOutbox: true,
    // It reports on the day; a failure alarms and the chain still completes.
    observer: true,
  },
];
