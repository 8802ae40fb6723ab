import type { ReplaySummary } from '../../lambdas/market/realtime/replay';
import { formatNumber } from '../../lib/cli/output';
import { countsChart, type Report, stackedCounts } from '../../lib/cli/report';

const CHANNELS = ['tick', 'event', 'fmv', 'ohlcv'] as const;
const OUTCOMES = ['delivered', 'duplicates', 'corrections', 'conflated', 'rejected'] as const;

const rejectedOf = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** The HTML report of one `router replay --report`: outcomes per channel, latency, rejections. */
export function routerReport(result: ReplaySummary, subtitle: string): Report {
  const perChannel = Object.fromEntries(
    CHANNELS.map((c) => {
      const s = result.channels[c];
      return [
        c,
        {
          delivered: s.delivered,
          duplicates: s.duplicates,
          corrections: s.corrections,
          conflated: s.conflated,
          rejected: rejectedOf(s.rejected),
        },
      ];
    }),
  );
  const rejections: Record<string, number> = {};
  for (const c of CHANNELS) {
    for (const [reason, n] of Object.entries(result.channels[c].rejected)) {
      rejections[`${c}: ${reason}`] = (rejections[`${c}: ${reason}`] ?? 0) + n;
    }
  }
  const received = CHANNELS.reduce((a, c) => a + result.channels[c].received, 0);
  const delivered = CHANNELS.reduce((a, c) => a + result.channels[c].delivered, 0);
  return {
    title: 'Real-time router replay',
    subtitle,
    sections: [
      {
        title: 'Outcomes per channel',
        text: 'What happened to every message received on each channel.',
        chart: stackedCounts(perChannel, OUTCOMES),
        table: {
          header: ['channel', 'received', ...OUTCOMES],
          rows: CHANNELS.map((c) => [
            c,
            result.channels[c].received,
            ...OUTCOMES.map((o) => perChannel[c]?.[o] ?? 0),
          ]),
        },
        figures: [
          ['received', formatNumber(received)],
          ['delivered', formatNumber(delivered)],
          ['malformed lines', formatNumber(result.malformed)],
          ['peak RSS', `${result.peakRssMb} MB`],
        ],
      },
      {
        title: 'Latency, receipt to delivery (percentiles per channel)',
        text: 'From the HDR histogram of each channel: p50, p95, p99 and the maximum, in ms.',
        chart: {
          kind: 'bar',
          labels: [...CHANNELS],
          yLabel: 'ms',
          series: (['p50', 'p95', 'p99', 'max'] as const).map((p) => ({
            label: p,
            data: CHANNELS.map((c) => result.latencyMs[c][p]),
          })),
        },
        table: {
          header: ['channel', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
          rows: CHANNELS.map((c) => [
            c,
            result.latencyMs[c].p50,
            result.latencyMs[c].p95,
            result.latencyMs[c].p99,
            result.latencyMs[c].max,
          ]),
        },
      },
      {
        title: 'Rejections by reason',
        text: Object.keys(rejections).length === 0 ? 'No message was rejected.' : undefined,
        chart: countsChart(rejections, 'messages'),
        table: {
          header: ['channel: reason', 'messages'],
          rows: Object.entries(rejections).sort(([a], [b]) => a.localeCompare(b)),
        },
      },
    ],
  };
}
