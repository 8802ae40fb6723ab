import type { Alert } from '../../lambdas/trading/engine';
import { formatNumber } from '../../lib/cli/output';
import { countsChart, type Report } from '../../lib/cli/report';
import type { ReplayResult } from '../../localstack/trading/replay';

const money = (n: number) =>
  n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** The HTML report of one `trading replay --report`: order outcomes, denials, breakers, alerts. */
export function tradingReport(result: ReplayResult, alerts: readonly Alert[], subtitle: string): Report {
  const orders = Object.entries(result.orders);
  const statuses: Record<string, number> = {};
  for (const [, o] of orders) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
  const denials = orders.filter(([, o]) => o.denial !== null);
  const byCode: Record<string, number> = {};
  for (const [, o] of denials) {
    const code = o.denial?.code as string;
    byCode[code] = (byCode[code] ?? 0) + 1;
  }
  const alertKinds: Record<string, number> = {};
  for (const a of alerts)
    alertKinds[`${a.severity} ${a.source}`] = (alertKinds[`${a.severity} ${a.source}`] ?? 0) + 1;
  return {
    title: 'Trading replay',
    subtitle,
    sections: [
      {
        title: 'Order outcomes',
        text: 'Final status of every order of the scenario.',
        chart: countsChart(statuses, 'orders'),
        table: {
          header: ['order', 'status', 'filled', 'avg fill price', 'denial'],
          rows: orders.map(([id, o]) => [id, o.status, o.filledQty, o.avgFillPrice, o.denial?.code ?? '']),
        },
        figures: [
          ['orders', formatNumber(orders.length)],
          ['events', formatNumber(result.events)],
          ['broker commands', formatNumber(result.brokerCommands)],
          ['breaker trips', formatNumber(result.breakers.length)],
        ],
      },
      {
        title: 'Denials by reason',
        text: denials.length === 0 ? 'No order was denied.' : 'Orders the risk checks refused, by code.',
        chart: countsChart(byCode, 'orders'),
        table: {
          header: ['order', 'code', 'detail'],
          rows: denials.map(([id, o]) => [id, o.denial?.code ?? '', o.denial?.detail ?? '']),
        },
        figures: [['denied', formatNumber(denials.length)]],
      },
      {
        title: 'Alerts by kind',
        text: alerts.length === 0 ? 'No alert was raised.' : undefined,
        chart: countsChart(alertKinds, 'alerts'),
        table: {
          header: ['at', 'severity', 'source', 'message'],
          rows: alerts.map((a) => [a.at, a.severity, a.source, a.message]),
        },
      },
      {
        title: 'Account and positions at the end',
        table: {
          header: ['symbol', 'qty', 'avg price'],
          rows: Object.entries(result.positions).map(([s, p]) => [s, p.qty, p.avgPrice]),
        },
        figures: [
          ['cash', money(result.account.cash)],
          ['equity', money(result.account.equity)],
          ['realized P&L', money(result.account.realizedPnl)],
          ['unrealized P&L', money(result.account.unrealizedPnl)],
        ],
      },
    ],
  };
}
