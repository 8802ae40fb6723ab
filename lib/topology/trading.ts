import type { JobDefinition } from './types';

/**
 * Trading jobs on a schedule (issue 14). The live engine itself is a container service
 * (lib/constructs/trading-engine.ts): it holds the broker's stream, which no function can.
 */
export const TRADING_JOBS: readonly JobDefinition[] = [
  {
    id: 'TradingReconcile',
    entry: 'lambdas/trading-reconcile/handler.ts',
    description:
      "Trading reconciliation: every account's orders, fills, positions and cash against the broker; differences recorded once each",
    // 10,000 orders and 1,000 positions reconcile in seconds; the rest is the broker's paging.
    timeoutSeconds: 300,
    memoryMb: 1024,
    needsBroker: true,
    // The stage's rate (config.trading.reconcileEveryMinutes) overrides it.
    everyMinutes: 15,
  },
];
