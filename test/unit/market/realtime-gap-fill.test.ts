import { describe, expect, it } from 'vitest';
import { nanosToMillis, withKey } from '../../../lambdas/realtime-router/provider';

describe('REST gap fill helpers', () => {
  it('converts nanosecond SIP timestamps to milliseconds exactly, whole milliseconds included', () => {
    // 1700000047514 ms * 1e6 as a double divides to just under the millisecond: the old floor(x / 1e6)
    // gave t - 1 (one whole-millisecond timestamp in eight in this range).
    const t = 1_700_000_047_514;
    expect(Math.floor((t * 1e6) / 1e6)).toBe(t - 1);
    expect(nanosToMillis(`${t}000000`)).toBe(t);
    expect(nanosToMillis(`${t}999999`)).toBe(t);
    expect(nanosToMillis(t * 1e6)).toBe(t);
    for (let k = 0; k < 2_000; k += 1) {
      const ms = 1_700_000_000_000 + k * 7_919;
      expect(nanosToMillis(ms * 1e6)).toBe(ms);
      expect(nanosToMillis(`${ms}000123`)).toBe(ms);
    }
  });

  it('puts the key on every page, once, whether next_url has a query or not', () => {
    expect(withKey('http://h/v3/trades/A?cursor=1.2', 'k%2F')).toBe(
      'http://h/v3/trades/A?cursor=1.2&apiKey=k%2F',
    );
    expect(withKey('http://h/v3/trades/A', 'k')).toBe('http://h/v3/trades/A?apiKey=k');
    expect(withKey('http://h/v3/trades/A?apiKey=old&cursor=3', 'k')).toBe(
      'http://h/v3/trades/A?cursor=3&apiKey=k',
    );
    expect(withKey('http://h/v3/trades/A?cursor=3&apiKey=old', 'k')).toBe(
      'http://h/v3/trades/A?cursor=3&apiKey=k',
    );
  });
});
