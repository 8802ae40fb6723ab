import type { EodChainResult } from '../../lambdas/market/eod/chain';
import { formatNumber, formatPercent } from '../../lib/cli/output';
import { countsChart, type Report, type ReportSection } from '../../lib/cli/report';

/** The HTML report of one EOD chain run (`eod run --report`). */
export function eodReport(result: EodChainResult, schema: string): Report {
  const subtitle = `trade date ${result.tradeDate}, schema ${schema}, status ${result.status}${result.reason ? ` (${result.reason})` : ''}`;
  if (result.status === 'skipped' && !result.load) {
    return {
      title: 'EOD run',
      subtitle,
      sections: [{ title: 'Skipped', text: result.reason ?? 'no session' }],
    };
  }
  const steps: [string, number | undefined][] = [
    ['1 load', result.load?.seconds],
    ['2 IPO scan', result.ipoScan?.durationSeconds],
    ['3 quality', result.quality?.seconds],
    ['4 EOD signal', result.complete?.seconds],
    ['5 universe sync', result.sync?.seconds],
  ];
  const sections: ReportSection[] = [
    {
      title: 'Steps',
      text: 'Seconds per step of the chain, in order.',
      chart: countsChart(
        Object.fromEntries(steps.map(([s, v]) => [s, Number((v ?? 0).toFixed(3))])),
        'seconds',
      ),
      table: {
        header: ['step', 'seconds', 'outcome'],
        rows: [
          [
            '1 load',
            result.load?.seconds,
            result.load
              ? `${result.load.barsReceived} bars: ${result.load.inserted} inserted, ${result.load.updated} updated, ${result.load.unchanged} unchanged, ${result.load.barsRejected} rejected`
              : '',
          ],
          [
            '2 IPO scan',
            result.ipoScan?.durationSeconds,
            result.ipoScan
              ? `${result.ipoScan.processed} new, ${result.ipoScan.archived} archived, ${result.ipoScan.deferred} deferred`
              : '',
          ],
          [
            '3 quality',
            result.quality?.seconds,
            result.quality
              ? `${result.quality.totalAlerts} alerts, score ${result.quality.qualityScore}`
              : '',
          ],
          ['4 EOD signal', result.complete?.seconds, result.complete?.status ?? ''],
          [
            '5 universe sync',
            result.sync?.seconds,
            result.sync
              ? `${result.sync.totalChanges} changes in ${result.sync.universesChanged} universes`
              : '',
          ],
        ],
      },
    },
  ];
  if (result.load) {
    const l = result.load;
    sections.push({
      title: 'Bars loaded',
      chart: countsChart(
        { inserted: l.inserted, updated: l.updated, unchanged: l.unchanged, rejected: l.barsRejected },
        'bars',
      ),
      figures: [
        ['bars received', formatNumber(l.barsReceived)],
        ['coverage', formatPercent(l.validation?.coverage ?? 0, 2)],
      ],
    });
  }
  if (result.quality) {
    const q = result.quality;
    sections.push({
      title: 'Quality alerts by kind',
      chart: countsChart(q.kindCounts, 'alerts'),
      figures: [
        ['alerts', formatNumber(q.totalAlerts)],
        ['symbols with alerts', formatNumber(q.symbolsWithAlerts)],
        ['symbols checked', formatNumber(q.symbolsChecked)],
        ['quality score', String(q.qualityScore)],
      ],
      table: {
        header: ['kind', 'alerts'],
        rows: Object.entries(q.kindCounts).sort(([a], [b]) => a.localeCompare(b)),
      },
    });
  }
  if (result.sync && result.sync.status === 'synced') {
    const byTask = Object.entries(result.sync.byTask);
    sections.push({
      title: 'Universe changes by task',
      chart: {
        kind: 'bar',
        labels: byTask.map(([t]) => t),
        series: [
          { label: 'symbols added', data: byTask.map(([, n]) => n?.added ?? 0) },
          { label: 'symbols removed', data: byTask.map(([, n]) => n?.removed ?? 0) },
        ],
      },
      table: {
        header: ['task', 'universes', 'symbols added', 'symbols removed'],
        rows: byTask.map(([t, n]) => [t, n?.universes ?? 0, n?.added ?? 0, n?.removed ?? 0]),
      },
    });
  }
  return { title: 'EOD run', subtitle, sections };
}
