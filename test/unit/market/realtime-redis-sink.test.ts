/**
 * The router's Redis sink (lambdas/realtime-router/redis-sink.ts) on the real Redis, one namespace per
 * test: a full buffer drops its oldest messages, counted and announced in the stream by a `gap` entry
 * where they were lost; the batch in flight is never among the dropped.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SequencedMessage } from '../../../lambdas/market/realtime/types';
import { EventBus } from '../../../lambdas/platform/event-bus';
import { createRedisClient, type RedisClient } from '../../../lambdas/platform/redis';
import { BUS_CHANNEL, RedisChannelSink } from '../../../lambdas/realtime-router/redis-sink';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const trade = (offset: number): SequencedMessage => ({
  channel: 'tick',
  sym: 'AAPL',
  kind: 'trade',
  epoch: 'e-sink',
  offset,
  receivedAtMono: 0,
  data: { ev: 'T', sym: 'AAPL', x: 4, i: String(offset), p: 100, s: 10, t: 1_764_500_000_000 + offset },
});

describe('RedisChannelSink overflow', () => {
  let client: RedisClient;
  const keys: string[] = [];

  beforeAll(async () => {
    client = createRedisClient({ url: REDIS_URL });
    await client.connect();
  });

  afterAll(async () => {
    if (keys.length > 0) await client.del(keys);
    await client.close();
  });

  /** The stream's entries as (event_type, data). */
  async function stream(bus: EventBus): Promise<{ type: string; data: Record<string, unknown> }[]> {
    const key = bus.streamKey(BUS_CHANNEL.tick);
    keys.push(key);
    const entries = await client.xRange(key, '-', '+');
    return (entries ?? []).map((e) => {
      const envelope = JSON.parse(String(e.message.envelope)) as {
        event_type: string;
        data: Record<string, unknown>;
      };
      return { type: envelope.event_type, data: envelope.data };
    });
  }

  it('drops the oldest when full, counts them, and writes a gap entry where they were lost', async () => {
    const bus = new EventBus({ client, service: 'realtime-router', namespace: `sink-${randomUUID()}` });
    const sink = new RedisChannelSink('tick', bus, 10, 4);
    // All offered before the send loop's first turn: 15 do not fit.
    for (let k = 0; k < 25; k += 1) sink.offer(trade(k));

    expect(await sink.flush(Date.now() + 10_000)).toBe(true);
    const entries = await stream(bus);

    expect(sink.health()).toMatchObject({ dropped: 15, gaps: 1, published: 10, depth: 0, peakDepth: 10 });
    expect(entries[0]).toEqual({
      type: 'gap',
      data: {
        sym: '*',
        epoch: 'e-sink',
        ev: 'gap',
        missed: 15,
        from: 0,
        to: 14,
        reason: 'redis_sink_overflow',
      },
    });
    expect(entries.slice(1).map((e) => e.data.offset)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
  });

  it('never drops the batch in flight: an overflow meanwhile drops buffered messages, announced in order', async () => {
    const bus = new EventBus({ client, service: 'realtime-router', namespace: `sink-${randomUUID()}` });
    const sink = new RedisChannelSink('tick', bus, 10, 4);
    for (let k = 0; k < 10; k += 1) sink.offer(trade(k));
    // The send loop's first turn takes 0-3 and waits for Redis; 10 more arrive meanwhile.
    await new Promise((r) => setImmediate(r));
    for (let k = 10; k < 20; k += 1) sink.offer(trade(k));

    expect(await sink.flush(Date.now() + 10_000)).toBe(true);
    const entries = await stream(bus);

    expect(sink.health()).toMatchObject({ dropped: 6, gaps: 1, published: 14 });
    expect(
      entries.map((e) => (e.type === 'gap' ? `gap ${e.data.from}-${e.data.to}` : e.data.offset)),
    ).toEqual([0, 1, 2, 3, 'gap 4-9', 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('without an overflow writes every message once, in offset order, and no gap', async () => {
    const bus = new EventBus({ client, service: 'realtime-router', namespace: `sink-${randomUUID()}` });
    const sink = new RedisChannelSink('tick', bus, 100, 7);
    for (let k = 0; k < 50; k += 1) sink.offer(trade(k));

    expect(await sink.flush(Date.now() + 10_000)).toBe(true);
    const entries = await stream(bus);

    expect(sink.health()).toMatchObject({ dropped: 0, gaps: 0, published: 50 });
    expect(entries.map((e) => e.data.offset)).toEqual(Array.from({ length: 50 }, (_, k) => k));
  });
});
