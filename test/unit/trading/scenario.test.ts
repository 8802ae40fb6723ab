import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError } from '../../../localstack/trading/scenario';

const base = {
  start: '2026-03-02T15:00:00Z',
  account: { cash: 1000 },
  timeline: [{ at: '+1.5s', prices: { AAPL: 10 } }],
};

function problems(input: unknown): string[] {
  try {
    parseScenario(input);
  } catch (error) {
    if (error instanceof ScenarioError) return error.problems;
    throw error;
  }
  return [];
}

describe('scenario validation', () => {
  it('reads offsets and ISO times into milliseconds and defaults the broker', () => {
    const s = parseScenario(base);
    expect(s.timeline[0]?.at).toBe(Date.parse('2026-03-02T15:00:01.500Z'));
    expect(s.broker).toEqual({ fill: 'immediate', latencyMs: 0 });
  });

  it('names every problem of a bad scenario, each with its path', () => {
    const found = problems({
      start: 'yesterday',
      account: { cash: 'lots' },
      limits: { maxOrderNotional: -1, unknownLimit: 1 },
      broker: { fill: 'sometimes' },
      timeline: [
        { prices: { AAPL: 10 } },
        { at: '+1s', submit: { clientOrderId: 'A', symbol: 'AAPL', side: 'buy', qty: 1, type: 'market' } },
        { at: '+2s', cancel: 'A', fill: { clientOrderId: 'A', qty: 1, price: 1 } },
        { at: '+3s', teleport: true },
        { at: 'soon', restart: true },
      ],
    });
    const joined = found.join('\n');
    for (const part of [
      'start:',
      'account.cash',
      'limits.maxOrderNotional',
      'unknownLimit',
      'broker.fill',
      'timeline[0].at',
      'timeline[1].submit.tif',
      'timeline[2]: one action per entry',
      'timeline[3].teleport: unknown action',
      'timeline[4].at',
    ])
      expect(joined).toContain(part);
  });

  it('refuses a timeline out of time order', () => {
    const found = problems({
      ...base,
      timeline: [
        { at: '+5s', prices: { AAPL: 10 } },
        { at: '+2s', prices: { AAPL: 11 } },
      ],
    });
    expect(found).toEqual(['timeline[1].at: before the previous entry (the timeline must be in time order)']);
  });
});
