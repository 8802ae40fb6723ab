import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as router from '../../bin/commands/router';
import * as trading from '../../bin/commands/trading';
import { benchReport } from '../../bin/reports/bench';
import { eodReport } from '../../bin/reports/eod';
import { loadTestReport } from '../../bin/reports/load';
import { replayReport } from '../../bin/reports/replay';
import type { EodChainResult } from '../../lambdas/market/eod/chain';
import type { ReplaySummary } from '../../lambdas/market/realtime/replay';
import type { Report } from '../../lib/cli/report';
import { writeReport } from '../../lib/cli/report';
import { runCommand } from '../../lib/cli/run';
import { REPO_ROOT } from '../../lib/paths';
import type { ReplayReport } from '../../localstack/replay';
import type { ReplayResult } from '../../localstack/trading/replay';

/**
 * Each report opened in a real headless Chromium (Debian's package; CI installs it): the charts
 * are drawn (painted canvas pixels), the page logs no error, loads nothing from the network, and
 * shows the expected figures. A screenshot of each stays in test/artifacts/.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');

const replayInput: ReplayReport = {
  files: [
    ...Array.from({ length: 24 }, (_, i) => ({
      file: `StepsRecord_${1762261227317 + i}.avro`,
      key: `raw/StepsRecord/StepsRecord_${1762261227317 + i}.avro`,
      recordType: 'StepsRecord',
      outcome: (i < 20 ? 'processed' : 'duplicate') as 'processed' | 'duplicate',
      latencyMs: 180 + i * 37,
      completedAtMs: 400 + i * 90,
    })),
    {
      file: 'truncated.avro',
      key: 'raw/truncated.avro',
      recordType: 'truncated.avro',
      outcome: 'quarantined',
      latencyMs: 95,
      completedAtMs: 300,
      reasons: ['avro decode failed: unexpected end of data after block 2 of 3 (header intact)'],
    },
  ],
  counts: { processed: 20, duplicate: 4, quarantined: 1, 'dead-lettered': 0, pending: 0 },
  byType: { StepsRecord: { processed: 20, duplicate: 4 }, 'truncated.avro': { quarantined: 1 } },
  uploaded: 25,
  identityHolds: true,
  seconds: 2.61,
  filesPerSecond: 9.6,
  latencyMs: { p50: 624, p95: 1031, p99: 1031 },
  sourceIds: [],
};

const eodInput = {
  tradeDate: '2025-07-03',
  status: 'COMPLETE',
  ok: true,
  load: {
    tradeDate: '2025-07-03',
    status: 'loaded',
    barsReceived: 500,
    barsRejected: 2,
    rejectedSample: [],
    inserted: 480,
    updated: 10,
    unchanged: 8,
    validation: { coverage: 0.992 },
    seconds: 1.2,
  },
  ipoScan: { processed: 3, archived: 1, deferred: 0, durationSeconds: 0.4 },
  quality: {
    totalAlerts: 17,
    symbolsWithAlerts: 12,
    symbolsChecked: 496,
    qualityScore: 96.6,
    kindCounts: { stale_price: 9, price_spike: 5, volume_anomaly: 3 },
    seconds: 0.8,
  },
  complete: { status: 'COMPLETE', seconds: 0.1 },
  sync: {
    status: 'synced',
    universesChanged: 4,
    totalChanges: 89,
    byTask: {
      ipo: { universes: 2, added: 60, removed: 0 },
      liquidity: { universes: 2, added: 20, removed: 9 },
    },
    seconds: 0.5,
  },
} as unknown as EodChainResult;

const REPORTS: { name: string; report: Report; charts: number; figures: string[] }[] = [
  {
    name: 'replay',
    report: replayReport(replayInput, 'test/fixtures/health on the test stage'),
    charts: 4,
    figures: [
      'holds',
      '624 ms',
      '1,031 ms'.replace(',', ''),
      '9.6 files/s',
      'avro decode failed: unexpected end of data after block 2 of 3 (header intact)',
    ],
  },
  {
    name: 'load',
    report: loadTestReport({
      files: 1000,
      redeliveries: 3000,
      firstPassSeconds: 84.2,
      filesPerSecond: 11.9,
      outcomes: { processed: 812, duplicate: 188 },
      trainingObjects: 812,
      latenciesMs: Array.from({ length: 1000 }, (_, i) => 200 + ((i * 7919) % 4000)),
      completedAtMs: Array.from({ length: 1000 }, (_, i) => i * 84),
      memory: Array.from({ length: 50 }, (_, i) => ({ atMs: i * 1700, rssMb: 180 + (i % 7) })),
      runnerHeapAfterGcMb: { baseline: 61.2, final: 63.9, growth: 2.7 },
    }),
    charts: 4,
    figures: ['1,000', '3,000', '812', '84.2 s', '11.9 files/s', '2.7 MiB'],
  },
  {
    name: 'bench',
    report: benchReport([
      { name: 'quality', seconds: 12.5, ok: true, lines: ['quality check, 500 symbols: 0.81 s'] },
      {
        name: 'replay',
        seconds: 31.2,
        ok: true,
        lines: ['replay 26 samples, cold: 2.95 s'],
        sections: replayReport(replayInput, 'bench').sections.slice(1, 2),
      },
    ]),
    charts: 2,
    figures: [
      '12.5',
      '31.2',
      'quality check, 500 symbols: 0.81 s',
      'replay: Latency, upload to terminal outcome',
    ],
  },
  {
    name: 'eod',
    report: eodReport(eodInput, 'market_local'),
    charts: 4,
    figures: ['trade date 2025-07-03, schema market_local', '99.20 %', 'stale_price', '96.6', '60'],
  },
];

describe('HTML reports in a real browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens a report file; what the page shows, logs and requests, and its screenshot. */
  async function open(file: string, name: string) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const network: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) network.push(r.url());
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(
      () => (globalThis as { reportRendered?: number }).reportRendered !== undefined,
    );
    const rendered = await page.evaluate(() => (globalThis as { reportRendered?: number }).reportRendered);
    const painted = await page.$$eval('canvas', (canvases) =>
      canvases.map((c) => {
        const data =
          c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
        let opaque = 0;
        for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) opaque += 1;
        return opaque;
      }),
    );
    const text = await page.innerText('body');
    const screenshot = join(ARTIFACTS, `${name}-report.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.close();
    return { errors, network, rendered, painted, text, screenshot };
  }

  function assess(seen: Awaited<ReturnType<typeof open>>, charts: number, figures: readonly string[]) {
    expect(seen.errors).toEqual([]);
    expect(seen.network).toEqual([]);
    expect(seen.rendered).toBe(charts);
    expect(seen.painted).toHaveLength(charts);
    for (const pixels of seen.painted) expect(pixels).toBeGreaterThan(500);
    for (const figure of figures) expect(seen.text).toContain(figure);
    expect(statSync(seen.screenshot).size).toBeGreaterThan(10_000);
  }

  for (const { name, report, charts, figures } of REPORTS) {
    it(`renders the ${name} report's charts and figures offline, without console errors`, async () => {
      // Prepare
      const file = join(ARTIFACTS, `${name}-report.html`);
      await writeReport(file, report);

      // Act
      const seen = await open(file, name);

      // Assess
      assess(seen, charts, figures);
    });
  }

  it('router replay --report: outcomes per channel, latency percentiles, rejections by reason', async () => {
    // Prepare
    const out = await mkdtemp(join(tmpdir(), 'router-report-'));
    const file = join(ARTIFACTS, 'router-report.html');
    const quiet = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const quietErr = vi.spyOn(console, 'error').mockImplementation(() => undefined);

    // Act: the command itself, over the recorded feed with its defects
    const feed = join(REPO_ROOT, 'test', 'fixtures', 'realtime', 'defects.jsonl');
    const code = await runCommand(router.run, ['replay', feed, '--out', out, '--report', file]).finally(
      () => {
        quiet.mockRestore();
        quietErr.mockRestore();
      },
    );
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as ReplaySummary;
    const seen = await open(file, 'router');
    await rm(out, { recursive: true, force: true });

    // Assess: the figures beside the charts are the run's own
    expect(code).toBe(0);
    const delivered = Object.values(summary.channels).reduce((a, c) => a + c.delivered, 0);
    const reasons = Object.entries(summary.channels).flatMap(([c, s]) =>
      Object.keys(s.rejected).map((r) => `${c}: ${r}`),
    );
    expect(reasons.length).toBeGreaterThan(0);
    assess(seen, 3, [
      'Outcomes per channel',
      `malformed lines\n${summary.malformed}`,
      `delivered\n${delivered}`,
      'p99 ms',
      ...reasons,
    ]);
  });

  it('trading replay --report: order outcomes, denials, alerts by kind, the account', async () => {
    // Prepare
    const out = await mkdtemp(join(tmpdir(), 'trading-report-'));
    const file = join(ARTIFACTS, 'trading-report.html');
    const quiet = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const quietErr = vi.spyOn(console, 'error').mockImplementation(() => undefined);

    // Act: a scenario with denials and breaker trips
    const scenario = join(REPO_ROOT, 'test', 'fixtures', 'trading', 'TC-MC-003.json');
    const code = await runCommand(trading.run, [
      'replay',
      scenario,
      '--out',
      out,
      '--store',
      'memory',
      '--report',
      file,
    ]).finally(() => {
      quiet.mockRestore();
      quietErr.mockRestore();
    });
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ReplayResult;
    const seen = await open(file, 'trading');
    await rm(out, { recursive: true, force: true });

    // Assess
    expect(code).toBe(0);
    const denials = Object.values(result.orders).flatMap((o) => (o.denial ? [o.denial] : []));
    expect(denials.length).toBeGreaterThan(0);
    assess(seen, 3, [
      'Denials by reason',
      `denied\n${denials.length}`,
      `breaker trips\n${result.breakers.length}`,
      ...denials.map((d) => d.detail),
      ...Object.keys(result.orders),
    ]);
  });
});
