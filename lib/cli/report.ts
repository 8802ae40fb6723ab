import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Cell } from './output';

/**
 * Self-contained HTML reports with charts (`--report <file.html>` of replay, test:load, bench,
 * eod run; router/trading runs can call it too). Chart.js is inlined from node_modules, so the file
 * opens anywhere with no network. Every chart sits beside its numbers.
 *
 *   await writeReport('out/replay.html', {
 *     title: 'Health ETL replay',
 *     sections: [{ title: 'Latency', chart: histogram(latencies, { unit: 'ms' }), table: {...} }],
 *   });
 */

export type ChartKind = 'bar' | 'line' | 'doughnut';

export interface ChartSeries {
  readonly label: string;
  readonly data: readonly number[];
}

export interface ChartSpec {
  readonly kind: ChartKind;
  /** Category labels (bars, doughnut slices) or x values (lines). */
  readonly labels: readonly (string | number)[];
  readonly series: readonly ChartSeries[];
  readonly xLabel?: string;
  readonly yLabel?: string;
  /** Bars of several series stacked (outcomes per step). */
  readonly stacked?: boolean;
}

export interface ReportTable {
  readonly header: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
}

export interface ReportSection {
  readonly title: string;
  /** One short paragraph: what the section shows. */
  readonly text?: string;
  readonly chart?: ChartSpec;
  readonly table?: ReportTable;
  /** Headline figures shown beside the chart (label, value with its unit). */
  readonly figures?: readonly (readonly [string, string])[];
}

export interface Report {
  readonly title: string;
  /** A line under the title: what ran, where, when. */
  readonly subtitle?: string;
  readonly sections: readonly ReportSection[];
}

const require = createRequire(import.meta.url);

function chartJsSource(): string {
  // The UMD build defines window.Chart with every controller registered.
  return readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

/** JSON safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function cellText(c: Cell): string {
  if (c === null || c === undefined) return '';
  return typeof c === 'number' ? c.toLocaleString('en-US', { maximumFractionDigits: 2 }) : c;
}

function renderTable(table: ReportTable): string {
  const head = table.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = table.rows
    .map(
      (r) =>
        `<tr>${table.header
          .map(
            (_, i) =>
              `<td class="${typeof r[i] === 'number' ? 'num' : ''}">${escapeHtml(cellText(r[i]))}</td>`,
          )
          .join('')}</tr>`,
    )
    .join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function renderSection(section: ReportSection, index: number): string {
  const figures = section.figures?.length
    ? `<dl class="figures">${section.figures
        .map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`)
        .join('')}</dl>`
    : '';
  const chart = section.chart
    ? `<div class="chart"><canvas id="chart-${index}" data-chart="${index}" aria-label="${escapeHtml(section.title)}"></canvas></div>`
    : '';
  const side =
    figures || section.table
      ? `<div class="numbers">${figures}${section.table ? renderTable(section.table) : ''}</div>`
      : '';
  return `<section><h2>${escapeHtml(section.title)}</h2>${section.text ? `<p>${escapeHtml(section.text)}</p>` : ''}<div class="body">${chart}${side}</div></section>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}.subtitle{color:#57606a;margin:0 0 20px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:16px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 8px}p{margin:0 0 8px;color:#57606a}
.body{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.chart{position:relative;flex:1 1 520px;min-width:320px;height:280px}
.numbers{flex:0 1 420px}
dl.figures{display:grid;grid-template-columns:repeat(2,minmax(120px,1fr));gap:8px;margin:0 0 12px}
dl.figures div{background:#f6f8fa;border-radius:4px;padding:6px 8px}
dt{font-size:12px;color:#57606a}dd{margin:0;font-size:18px;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px 3px 0;text-align:left;border-bottom:1px solid #eaeef2}td.num{text-align:right}
`;

// Runs in the page: one Chart.js chart per section that has one; window.reportRendered counts them
// (the browser test waits for it). No animation, so a screenshot shows the final picture.
const RENDER = `
(function(){
  var sections = JSON.parse(document.getElementById('report-data').textContent);
  var palette = ['#2f81f7','#d1242f','#1a7f37','#9a6700','#8250df','#bf3989','#0969da','#57606a'];
  var rendered = 0;
  sections.forEach(function(s, i){
    if (!s.chart) return;
    var c = s.chart;
    var datasets = c.series.map(function(series, n){
      var color = palette[n % palette.length];
      return c.kind === 'doughnut'
        ? { label: series.label, data: series.data, backgroundColor: c.labels.map(function(_, k){ return palette[k % palette.length]; }) }
        : { label: series.label, data: series.data, backgroundColor: color, borderColor: color, pointRadius: 0, fill: false, tension: 0.2 };
    });
    var scales = c.kind === 'doughnut' ? {} : {
      x: { stacked: !!c.stacked, title: { display: !!c.xLabel, text: c.xLabel || '' } },
      y: { stacked: !!c.stacked, beginAtZero: true, title: { display: !!c.yLabel, text: c.yLabel || '' } }
    };
    new Chart(document.getElementById('chart-' + i), {
      type: c.kind,
      data: { labels: c.labels, datasets: datasets },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: scales,
        plugins: { legend: { display: c.series.length > 1 || c.kind === 'doughnut' } } }
    });
    rendered += 1;
  });
  window.reportRendered = rendered;
})();
`;

/** The report as one HTML document (Chart.js and the data inlined). */
export function renderReport(report: Report): string {
  const sections = report.sections.map((s) => ({ title: s.title, chart: s.chart }));
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(report.title)}</title>`,
    `<style>${STYLE}</style>`,
    `<script>${chartJsSource()}</script>`,
    '</head><body>',
    `<h1>${escapeHtml(report.title)}</h1>`,
    `<p class="subtitle">${escapeHtml(report.subtitle ?? '')} · written ${new Date().toISOString()}</p>`,
    ...report.sections.map(renderSection),
    `<script type="application/json" id="report-data">${scriptJson(sections)}</script>`,
    `<script>${RENDER}</script>`,
    '</body></html>',
  ].join('\n');
}

/** Writes the report to `file` (directories created). */
export async function writeReport(file: string, report: Report): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, renderReport(report));
}

// ---- chart builders for the usual pictures ----

/** A latency (or any value) histogram: `bins` equal-width buckets from the minimum to the maximum. */
export function histogram(
  values: readonly number[],
  options: { unit: string; bins?: number; label?: string },
): ChartSpec {
  const bins = Math.max(1, options.bins ?? 20);
  if (values.length === 0) {
    return {
      kind: 'bar',
      labels: [],
      series: [{ label: options.label ?? 'count', data: [] }],
      xLabel: options.unit,
      yLabel: 'count',
    };
  }
  const min = Math.min(...values);
  const max = Math.max(...values);
  const width = max > min ? (max - min) / bins : 1;
  const counts = new Array<number>(max > min ? bins : 1).fill(0);
  for (const v of values) {
    const i = Math.min(counts.length - 1, Math.floor((v - min) / width));
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const round = (n: number) => (width >= 10 ? Math.round(n) : Math.round(n * 10) / 10);
  return {
    kind: 'bar',
    labels: counts.map((_, i) => `${round(min + i * width)}–${round(min + (i + 1) * width)}`),
    series: [{ label: options.label ?? 'count', data: counts }],
    xLabel: options.unit,
    yLabel: 'count',
  };
}

/** Completions per time bucket from completion timestamps (ms since epoch). */
export function throughputOverTime(
  completedAtMs: readonly number[],
  options: { startMs?: number; bucketMs?: number; unit: string },
): ChartSpec {
  if (completedAtMs.length === 0)
    return { kind: 'line', labels: [], series: [{ label: options.unit, data: [] }] };
  const start = options.startMs ?? Math.min(...completedAtMs);
  const end = Math.max(...completedAtMs);
  const bucket = options.bucketMs ?? Math.max(100, Math.ceil((end - start) / 40 / 100) * 100);
  const counts = new Array<number>(Math.floor((end - start) / bucket) + 1).fill(0);
  for (const t of completedAtMs) {
    const i = Math.max(0, Math.floor((t - start) / bucket));
    counts[i] = (counts[i] ?? 0) + 1;
  }
  const perSecond = counts.map((c) => Math.round((c * 1_000 * 10) / bucket) / 10);
  return {
    kind: 'line',
    labels: counts.map((_, i) => Math.round(((i + 1) * bucket) / 100) / 10),
    series: [{ label: `${options.unit}/s`, data: perSecond }],
    xLabel: 'seconds since start',
    yLabel: `${options.unit}/s`,
  };
}

/** One bar per key of a count record (outcomes, alerts by kind). */
export function countsChart(counts: Readonly<Record<string, number>>, label = 'count'): ChartSpec {
  const entries = Object.entries(counts);
  return {
    kind: 'bar',
    labels: entries.map(([k]) => k),
    series: [{ label, data: entries.map(([, v]) => v) }],
  };
}

/** Stacked bars: one bar per row (a file type, a step), one colour per outcome. */
export function stackedCounts(
  rows: Readonly<Record<string, Readonly<Partial<Record<string, number>>>>>,
  outcomes: readonly string[],
): ChartSpec {
  const names = Object.keys(rows);
  return {
    kind: 'bar',
    stacked: true,
    labels: names,
    series: outcomes.map((o) => ({ label: o, data: names.map((n) => rows[n]?.[o] ?? 0) })),
  };
}
