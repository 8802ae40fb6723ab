import { describe, expect, it } from 'vitest';
import {
  type MinuteBarMessage,
  minuteBarMessage,
  newestPerBar,
  parseMinuteBarMessage,
} from '../../../lambdas/market/realtime/minute-bar-message';
import type { SequencedMessage } from '../../../lambdas/market/realtime/types';

const bar: MinuteBarMessage = {
  sym: 'AAPL',
  s: 1_700_000_040_000,
  e: 1_700_000_100_000,
  o: 10,
  h: 11,
  l: 9.5,
  c: 10.5,
  v: 1_000,
  vw: 10.2,
  correction: false,
  epoch: 'e1',
  offset: 7,
  publishedAt: 1_700_000_101_000,
};

function sequenced(data: Record<string, unknown>, kind: SequencedMessage['kind'] = 'bar'): SequencedMessage {
  return { channel: 'ohlcv', sym: 'AAPL', kind, data, receivedAtMono: 0, epoch: 'e1', offset: 7 };
}

describe('router minute-bar messages', () => {
  it('are built for delivered AM bars only (corrections flagged), not second bars or control messages', () => {
    const data = {
      ev: 'AM',
      sym: 'AAPL',
      s: bar.s,
      e: bar.e,
      o: 10,
      h: 11,
      l: 9.5,
      c: 10.5,
      v: 1_000,
      vw: 10.2,
    };
    expect(minuteBarMessage(sequenced(data), bar.publishedAt)).toEqual(bar);
    expect(minuteBarMessage(sequenced({ ...data, correction: true }), 1)?.correction).toBe(true);
    expect(minuteBarMessage(sequenced({ ...data, ev: 'A' }), 1)).toBeNull();
    expect(minuteBarMessage(sequenced({ ev: 'minute_complete' }, 'control'), 1)).toBeNull();
  });

  it('parse back exactly, and name why a body can never be stored', () => {
    expect(parseMinuteBarMessage(JSON.stringify(bar))).toEqual({ ok: true, bar });
    const reason = (body: unknown) => {
      const p = parseMinuteBarMessage(typeof body === 'string' ? body : JSON.stringify(body));
      return p.ok ? null : p.reason;
    };
    expect(reason('not json')).toBe('body is not JSON');
    expect(reason({ ...bar, h: 10.1 })).toBe('high_below_open_close');
    expect(reason({ ...bar, l: 10.6 })).toBe('low_above_open_close');
    expect(reason({ ...bar, v: -1 })).toBe('negative_value');
    expect(reason({ ...bar, e: bar.s + 1_000 })).toMatch(/not a minute bar/);
    expect(reason({ ...bar, sym: '' })).toMatch(/^sym:/);
    expect(reason({ ...bar, extra: 1 })).toMatch(/Unrecognized key/);
    expect(reason({ ...bar, offset: 0 })).toMatch(/^offset:/);
  });

  it('keep the newest version per (symbol, start): later publication, then the higher offset', () => {
    const correction = { ...bar, c: 10.9, h: 11.2, correction: true, publishedAt: bar.publishedAt + 5 };
    const sameTimeHigherOffset = { ...bar, c: 10.7, offset: 9 };
    const other = { ...bar, sym: 'MSFT' };
    const pick = (bars: MinuteBarMessage[]) => newestPerBar(bars.map((b) => ({ bar: b }))).map((x) => x.bar);
    expect(pick([correction, bar, other])).toEqual([correction, other]);
    expect(pick([bar, correction])).toEqual([correction]);
    expect(pick([sameTimeHigherOffset, bar])).toEqual([sameTimeHigherOffset]);
  });
});
