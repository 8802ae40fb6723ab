import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Feed, startFeed } from '../../../localstack/feed/server';

const PROFILE = {
  ohlcvSymbols: 20,
  tickSymbols: 5,
  fmvSymbols: 5,
  eventsPerMinute: 600,
  frameSize: 10,
  barFrameSize: 10,
  seed: 1,
};

let feed: Feed | null = null;
afterEach(async () => {
  await feed?.close();
  feed = null;
});

/** An authenticated provider client subscribed to trades; collects every event it receives. */
async function subscriber(f: Feed): Promise<{ events: Record<string, unknown>[]; close: () => void }> {
  const socket = new WebSocket(f.wsUrl);
  const events: Record<string, unknown>[] = [];
  let acked = false;
  socket.on('message', (data) => {
    for (const e of JSON.parse(String(data)) as Record<string, unknown>[]) {
      if (e.ev === 'status') acked ||= String(e.message).startsWith('subscribed');
      else events.push(e);
    }
  });
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ action: 'auth', params: 'k' }));
  socket.send(JSON.stringify({ action: 'subscribe', params: 'T.*' }));
  for (let k = 0; k < 200 && !acked; k += 1) await new Promise((r) => setTimeout(r, 10));
  return { events, close: () => socket.terminate() };
}

describe('local provider feed: benchmark knobs', () => {
  it('with startOnRequest sends nothing before POST /start, then stamps each event and counts it by type', async () => {
    // Fast market (600 market ms per ms): a minute's frames arrive within a fraction of a second.
    feed = await startFeed({
      profile: PROFILE,
      speed: 600,
      startAt: 0,
      startOnRequest: true,
      stampSentAt: true,
      minutes: 1,
    });
    const client = await subscriber(feed);
    await new Promise((r) => setTimeout(r, 150));
    const before = client.events.length;
    const idle = (await (await fetch(`${feed.restUrl}/stats`)).json()) as { started: boolean };

    const started = performance.timeOrigin + performance.now();
    await fetch(`${feed.restUrl}/start`, { method: 'POST' });
    let stats = { done: false, eventsByEv: {} as Record<string, number>, eventsSent: 0 };
    for (let k = 0; k < 100 && !stats.done; k += 1) {
      await new Promise((r) => setTimeout(r, 50));
      stats = (await (await fetch(`${feed.restUrl}/stats`)).json()) as typeof stats;
    }
    await new Promise((r) => setTimeout(r, 100));
    client.close();

    expect([before, idle.started]).toEqual([0, false]);
    expect(stats.done).toBe(true);
    expect(client.events.length).toBeGreaterThan(0);
    expect(stats.eventsByEv).toEqual({ T: client.events.length });
    expect(stats.eventsSent).toBe(client.events.length);
    expect(
      client.events.every((e) => typeof e.bench_sent_at === 'number' && e.bench_sent_at >= started),
    ).toBe(true);
  });
});
