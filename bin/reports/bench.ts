import type { Report, ReportSection } from '../../lib/cli/report';

/** One benchmark module's run (`npm run bench -- --report`). */
export interface BenchRun {
  readonly name: string;
  readonly seconds: number;
  readonly ok: boolean;
  /** The figures it printed, line by line. */
  readonly lines: readonly string[];
  /** Charts of its own, when the benchmark returns some (e.g. the replay's latency histograms). */
  readonly sections?: readonly ReportSection[];
}

export function benchReport(runs: readonly BenchRun[]): Report {
  return {
    title: 'Benchmarks',
    subtitle: `${runs.length} benchmark modules, ${runs.filter((r) => !r.ok).length} failed`,
    sections: [
      {
        title: 'Duration per benchmark',
        chart: {
          kind: 'bar',
          labels: runs.map((r) => r.name),
          series: [{ label: 'seconds', data: runs.map((r) => Math.round(r.seconds * 100) / 100) }],
          yLabel: 'seconds',
        },
        table: {
          header: ['benchmark', 'seconds', 'result'],
          rows: runs.map((r) => [r.name, Math.round(r.seconds * 100) / 100, r.ok ? 'ok' : 'FAILED']),
        },
      },
      ...runs.flatMap((r) => [
        ...(r.sections ?? []).map((s) => ({ ...s, title: `${r.name}: ${s.title}` })),
        {
          title: `${r.name}: figures`,
          table: { header: ['printed'], rows: r.lines.map((l) => [l]) },
        },
      ]),
    ],
  };
}
