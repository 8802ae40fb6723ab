import { formatNumber } from '../../lib/cli/output';
import { countsChart, histogram, type Report, throughputOverTime } from '../../lib/cli/report';

/** What the health load test measured (`npm run test:load -- --report`). */
export interface LoadTestResult {
  readonly files: number;
  readonly redeliveries: number;
  readonly firstPassSeconds: number;
  readonly filesPerSecond: number;
  readonly outcomes: Record<string, number>;
  readonly trainingObjects: number;
  /** Upload to completed ingest, per file of the first pass. */
  readonly latenciesMs: readonly number[];
  /** Completion of each file, ms since the first upload. */
  readonly completedAtMs: readonly number[];
  /** The runner's resident memory over the run. */
  readonly memory: readonly { readonly atMs: number; readonly rssMb: number }[];
  readonly runnerHeapAfterGcMb: { baseline: number; final: number; growth: number };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

export function loadTestReport(r: LoadTestResult): Report {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  return {
    title: 'Health ETL load test',
    subtitle: `${formatNumber(r.files)} concurrent uploads, each redelivered ${r.redeliveries / Math.max(1, r.files)} more times`,
    sections: [
      {
        title: 'Outcomes',
        chart: countsChart(r.outcomes, 'files'),
        figures: [
          ['files', formatNumber(r.files)],
          ['redeliveries', formatNumber(r.redeliveries)],
          ['training objects', formatNumber(r.trainingObjects)],
          ['first pass', `${r.firstPassSeconds.toFixed(1)} s`],
        ],
      },
      {
        title: 'Latency, upload to completed ingest',
        chart: histogram(r.latenciesMs, { unit: 'ms', bins: 20, label: 'files' }),
        figures: [
          ['p50', `${formatNumber(percentile(sorted, 50))} ms`],
          ['p95', `${formatNumber(percentile(sorted, 95))} ms`],
          ['p99', `${formatNumber(percentile(sorted, 99))} ms`],
          ['max', `${formatNumber(sorted.at(-1) ?? 0)} ms`],
        ],
      },
      {
        title: 'Throughput over time',
        chart: throughputOverTime(r.completedAtMs, { startMs: 0, unit: 'files' }),
        figures: [['mean', `${r.filesPerSecond.toFixed(1)} files/s`]],
      },
      {
        title: 'Runner memory',
        text: 'Resident memory of the runner process while it works; heap after a full GC at the start and the end.',
        chart: {
          kind: 'line',
          labels: r.memory.map((m) => Math.round(m.atMs / 100) / 10),
          series: [{ label: 'RSS MiB', data: r.memory.map((m) => Math.round(m.rssMb * 10) / 10) }],
          xLabel: 'seconds since start',
          yLabel: 'MiB',
        },
        figures: [
          ['heap baseline', `${r.runnerHeapAfterGcMb.baseline.toFixed(1)} MiB`],
          ['heap final', `${r.runnerHeapAfterGcMb.final.toFixed(1)} MiB`],
          ['heap growth', `${r.runnerHeapAfterGcMb.growth.toFixed(1)} MiB`],
        ],
      },
    ],
  };
}
