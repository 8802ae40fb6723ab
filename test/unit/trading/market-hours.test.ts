import { describe, expect, it } from 'vitest';
import { easternToUtc, nextSessionChange, sessionAt } from '../../../lambdas/trading/market-hours';

const at = (iso: string) => sessionAt(Date.parse(iso));

describe('market sessions from the NYSE calendar', () => {
  it('splits a regular day into pre-market, open, after-hours and closed (EST and EDT)', () => {
    expect(at('2026-03-02T08:59:00Z')).toBe('closed'); // 03:59 EST
    expect(at('2026-03-02T09:00:00Z')).toBe('pre-market');
    expect(at('2026-03-02T14:30:00Z')).toBe('open');
    expect(at('2026-03-02T21:00:00Z')).toBe('after-hours');
    expect(at('2026-03-03T01:00:00Z')).toBe('closed');
    expect(at('2026-07-01T13:30:00Z')).toBe('open'); // 09:30 EDT
    expect(at('2026-07-01T13:29:00Z')).toBe('pre-market');
  });

  it('closes at 13:00 ET on an early-close day and all day on holidays and weekends', () => {
    expect(at('2026-11-27T17:59:00Z')).toBe('open');
    expect(at('2026-11-27T18:00:00Z')).toBe('after-hours');
    expect(at('2026-11-27T22:00:00Z')).toBe('closed'); // after-hours ends 17:00 ET on early closes
    expect(at('2026-04-03T15:00:00Z')).toBe('closed'); // Good Friday
    expect(at('2026-03-07T15:00:00Z')).toBe('closed'); // Saturday
  });

  it('finds the next change across a holiday weekend', () => {
    const change = nextSessionChange(Date.parse('2026-04-03T15:00:00Z'));
    expect(new Date(change.at).toISOString()).toBe('2026-04-06T08:00:00.000Z');
    expect(change.session).toBe('pre-market');
  });

  it('converts Eastern wall-clock times on both sides of daylight saving', () => {
    expect(new Date(easternToUtc('2026-03-06', 570)).toISOString()).toBe('2026-03-06T14:30:00.000Z');
    expect(new Date(easternToUtc('2026-03-09', 570)).toISOString()).toBe('2026-03-09T13:30:00.000Z');
  });
});
