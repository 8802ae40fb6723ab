import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSpeed, replayFile } from '../../../bin/commands/router';
import { parseFeedLine, replayFeed } from '../../../lambdas/market/realtime/replay';

const FIXTURE = fileURLToPath(new URL('../../fixtures/realtime/defects.jsonl', import.meta.url));
const T0 = Date.UTC(2026, 2, 2, 14, 30, 0);
const dirs: string[] = [];

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function outDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'router-replay-'));
  dirs.push(d);
  return d;
}

describe('router replay over the defects fixture', () => {
  it('delivers each trade, quote, bar, FMV and event exactly once, in priority order per frame', async () => {
    const out = await outDir();

    await replayFile(FIXTURE, out, 'max');
    const lines = (await readFile(join(out, 'delivered.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));

    expect(lines.map((l) => Object.keys(l))).toEqual(lines.map(() => ['channel', 'sym', 'data']));
    expect(
      lines.map((l) => {
        const d = l.data;
        if (d.ev === 'T') return `tick T ${l.sym} x${d.x} i${d.i} q${d.q}`;
        if (d.ev === 'Q') return `tick Q ${l.sym} ${d.bp}/${d.ap}`;
        if (d.ev === 'AM') return `ohlcv AM ${l.sym} ${d.s - T0} c${d.c}${d.correction ? ' correction' : ''}`;
        if (d.ev === 'FMV') return `fmv ${l.sym} ${d.fmv} confidence ${d.confidence}`;
        if (d.ev === 'minute_complete')
          return `ohlcv minute_complete ${d.s - T0} ${d.reason} ${d.bars}/${d.expected}`;
        return `${l.channel} ${d.type} ${l.sym} ${d.s - T0} ${d.source} ${d.price}`;
      }),
    ).toEqual([
      'tick T AAPL x4 i1 q10',
      'tick T AAPL x4 i2 q10',
      'tick T AAPL x11 i1 q9',
      'event session_high AAPL 0 tick 100.5',
      'tick Q AAPL 100.4/100.6',
      'ohlcv AM AAPL 0 c100.2',
      'ohlcv minute_complete 0 complete 1/1',
      'ohlcv AM AAPL 0 c100.3 correction',
      'fmv AAPL 100.52 confidence 0.996',
      'tick T AAPL x4 i3 q12',
      'event session_high AAPL 60000 tick 101',
      'event session_low AAPL 60000 ohlcv 99.5',
      'ohlcv AM AAPL 60000 c101',
      'ohlcv minute_complete 60000 complete 1/1',
    ]);
  });

  it('keeps the provider field names in data', async () => {
    const out = await outDir();

    await replayFile(FIXTURE, out, 'max');
    const first = JSON.parse((await readFile(join(out, 'delivered.jsonl'), 'utf8')).split('\n')[0] ?? '');

    expect(first).toEqual({
      channel: 'tick',
      sym: 'AAPL',
      data: { ev: 'T', sym: 'AAPL', x: 4, i: '1', z: 3, p: 100, s: 100, c: [12], t: T0 + 1000, q: 10 },
    });
  });

  it('writes summary.json with exactly the contract fields and the defect counts', async () => {
    const out = await outDir();

    await replayFile(FIXTURE, out, 'max');
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));

    expect(Object.keys(summary)).toEqual(['channels', 'malformed', 'latencyMs', 'peakRssMb']);
    expect(summary.channels).toEqual({
      tick: {
        received: 10,
        delivered: 5,
        duplicates: 4,
        corrections: 0,
        conflated: 0,
        rejected: { invalid_trade: 1 },
      },
      event: { received: 4, delivered: 3, duplicates: 1, corrections: 0, conflated: 0, rejected: {} },
      fmv: {
        received: 3,
        delivered: 1,
        duplicates: 1,
        corrections: 0,
        conflated: 0,
        rejected: { low_confidence: 1 },
      },
      ohlcv: {
        received: 9,
        delivered: 5,
        duplicates: 3,
        corrections: 1,
        conflated: 0,
        rejected: { high_below_open_close: 1 },
      },
    });
    expect(summary.malformed).toBe(2);
    expect(Object.keys(summary.latencyMs)).toEqual(['tick', 'event', 'fmv', 'ohlcv']);
    for (const l of Object.values(summary.latencyMs) as { p50: number; max: number }[]) {
      expect(Object.keys(l)).toEqual(['p50', 'p95', 'p99', 'max']);
      expect(l.p50).toBeLessThanOrEqual(l.max);
    }
    expect(summary.peakRssMb).toBeGreaterThan(0);
  });

  it('fails only when the run cannot happen (no feed file)', async () => {
    const out = await outDir();

    await expect(replayFile(join(out, 'missing.jsonl'), out, 'max')).rejects.toThrow(/ENOENT/);
  });
});

describe('feed lines', () => {
  it('counts lines that are not feed lines as malformed and keeps going', async () => {
    const good = JSON.stringify({
      source: 'ws',
      receivedAt: T0,
      frame: [{ ev: 'T', sym: 'A', x: 1, i: '1', p: 1, s: 1, t: T0 }],
    });
    const lines = [
      '{',
      '[]',
      JSON.stringify({ source: '', receivedAt: T0, frame: [] }),
      JSON.stringify({ source: 'ws', receivedAt: 'x', frame: [] }),
      JSON.stringify({ source: 'ws', receivedAt: T0, frame: {} }),
      '',
      good,
    ];
    const written: { channel: string; data: Record<string, unknown> }[] = [];

    const summary = await replayFeed(lines, (l) => written.push(l), { speed: 'max' });

    expect(summary.malformed).toBe(5);
    // The trade, then its minute announced when the feed ends (it never got a bar).
    expect(written.map((l) => [l.channel, l.data.ev, l.data.reason])).toEqual([
      ['tick', 'T', undefined],
      ['ohlcv', 'minute_complete', 'drain'],
    ]);
    expect(parseFeedLine(good)?.source).toBe('ws');
  });

  it('paces the feed by receivedAt divided by the speed', async () => {
    const lines = [0, 1000, 3000].map((dt) =>
      JSON.stringify({ source: 'ws', receivedAt: T0 + dt, frame: [] }),
    );
    const waits: number[] = [];

    await replayFeed(lines, () => {}, {
      speed: 10,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });

    expect(waits.length).toBe(2);
    expect(waits[0]).toBeLessThanOrEqual(100);
    expect(waits[1]).toBeLessThanOrEqual(300);
    expect(waits[1]).toBeGreaterThan(100);
  });

  it('reads --speed as a positive multiplier or max', () => {
    expect([
      parseSpeed(undefined),
      parseSpeed('max'),
      parseSpeed('2.5'),
      parseSpeed('0'),
      parseSpeed('x'),
    ]).toEqual(['max', 'max', 2.5, null, null]);
  });
});
