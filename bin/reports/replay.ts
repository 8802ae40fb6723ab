import { formatNumber } from '../../lib/cli/output';
import { countsChart, histogram, type Report, stackedCounts, throughputOverTime } from '../../lib/cli/report';
import type { ReplayReport } from '../../localstack/replay';

const OUTCOMES = ['processed', 'duplicate', 'quarantined', 'dead-lettered', 'pending'] as const;

/** The HTML report of one health ETL replay (`replay --report`, the replay benchmark). */
export function replayReport(report: ReplayReport, subtitle: string): Report {
  const latencies = report.files.flatMap((f) => (f.latencyMs === null ? [] : [f.latencyMs]));
  const completions = report.files.flatMap((f) => (f.completedAtMs === null ? [] : [f.completedAtMs]));
  const c = report.counts;
  return {
    title: 'Health ETL replay',
    subtitle,
    sections: [
      {
        title: 'Outcomes',
        text: 'Every uploaded file ends in one terminal outcome; the identity below must hold.',
        chart: countsChart(Object.fromEntries(OUTCOMES.map((o) => [o, c[o]])), 'files'),
        figures: [
          ['uploaded', formatNumber(report.uploaded)],
          ['identity', report.identityHolds ? 'holds' : 'DOES NOT HOLD'],
          ['processed', formatNumber(c.processed)],
          ['quarantined', formatNumber(c.quarantined)],
          ['duplicate', formatNumber(c.duplicate)],
          ['dead-lettered', formatNumber(c['dead-lettered'])],
        ],
      },
      {
        title: 'Latency, upload to terminal outcome',
        chart: histogram(latencies, { unit: 'ms', bins: 15, label: 'files' }),
        figures: [
          ['p50', `${report.latencyMs.p50} ms`],
          ['p95', `${report.latencyMs.p95} ms`],
          ['p99', `${report.latencyMs.p99} ms`],
          ['files timed', formatNumber(latencies.length)],
        ],
      },
      {
        title: 'Throughput over time',
        chart: throughputOverTime(completions, { startMs: 0, unit: 'files' }),
        figures: [
          ['elapsed', `${report.seconds.toFixed(2)} s`],
          ['throughput', `${report.filesPerSecond.toFixed(1)} files/s`],
        ],
      },
      {
        title: 'Outcomes per record type',
        chart: stackedCounts(report.byType, OUTCOMES),
        table: {
          header: ['record type', ...OUTCOMES],
          rows: Object.entries(report.byType)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([type, counts]) => [type, ...OUTCOMES.map((o) => counts[o] ?? 0)]),
        },
      },
      {
        title: 'Files',
        table: {
          header: ['file', 'outcome', 'latency ms', 'reasons'],
          rows: report.files.map((f) => [f.file, f.outcome, f.latencyMs, f.reasons?.join('; ') ?? '']),
        },
      },
    ],
  };
}
