/**
 * The router's Redis sink (lambdas/realtime-router/redis-sink.ts) on the real Redis, one namespace per
 * test: a full buffer (by count or by bytes) drops its oldest messages, counted and announced in the
 * stream by a `gap` entry where they were lost; the batch in flight is never among the dropped. The
 * same sinks on their worker thread (redis-sinks.ts, as the router runs them): same stream, and a
 * full hand-over to the worker is a gap in its place too.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SequencedMessage } from '../../../lambdas/market/realtime/types';
import { EventBus } from '../../../lambdas/platform/event-bus';
import { createRedisClient, type RedisClient } from '../../../lambdas/platform/redis';
import {
  BUS_CHANNEL,
  gapLine,
  RedisChannelSink,
  sinkLine,
} from '../../../lambdas/realtime-router/redis-sink';
import { openRedisSinks } from '../../../lambdas/realtime-router/redis-sinks';

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
    const sink = new RedisChannelSink('tick', bus, { capacity: 10, batch: 4 });
    // All offered before the send loop's first turn: 15 do not fit.
    for (let k = 0; k < 25; k += 1) sink.offer(sinkLine(trade(k)));

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
    const sink = new RedisChannelSink('tick', bus, { capacity: 10, batch: 4 });
    for (let k = 0; k < 10; k += 1) sink.offer(sinkLine(trade(k)));
    // The send loop's first turn takes 0-3 and waits for Redis; 10 more arrive meanwhile.
    await new Promise((r) => setImmediate(r));
    for (let k = 10; k < 20; k += 1) sink.offer(sinkLine(trade(k)));

    expect(await sink.flush(Date.now() + 10_000)).toBe(true);
    const entries = await stream(bus);

    expect(sink.health()).toMatchObject({ dropped: 6, gaps: 1, published: 14 });
    expect(
      entries.map((e) => (e.type === 'gap' ? `gap ${e.data.from}-${e.data.to}` : e.data.offset)),
    ).toEqual([0, 1, 2, 3, 'gap 4-9', 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('without an overflow writes every message once, in offset order, and no gap', async () => {
    const bus = new EventBus({ client, service: 'realtime-router', namespace: `sink-${randomUUID()}` });
    const sink = new RedisChannelSink('tick', bus, { capacity: 100, batch: 7 });
    for (let k = 0; k < 50; k += 1) sink.offer(sinkLine(trade(k)));

    expect(await sink.flush(Date.now() + 10_000)).toBe(true);
    const entries = await stream(bus);

    expect(sink.health()).toMatchObject({ dropped: 0, gaps: 0, published: 50 });
    expect(entries.map((e) => e.data.offset)).toEqual(Array.from({ length: 50 }, (_, k) => k));
  });
  it('bounds the buffer by bytes as well: the oldest go when the text would not fit', async () => {
    const bus = new EventBus({ client, service: 'realtime-router', namespace: `sink-${randomUUID()}` });
    const size = sinkLine(trade(10)).length;
    // Room for 5 lines of this size (offsets 10-99 have equal line lengths), far under the count cap.
    const sink = new RedisChannelSink('tick', bus, { capacity: 1_000, maxBytes: 5 * size, batch: 4 });
    for (let k = 10; k < 30; k += 1) sink.offer(sinkLine(trade(k)));
    expect(sink.health()).toMatchObject({ depth: 5, bytes: 5 * size, dropped: 15 });

    expect(await sink.flush(Date.now() + 10_000)).toBe(true);
    const entries = await stream(bus);
    expect(sink.health()).toMatchObject({ dropped: 15, gaps: 1, published: 5, bytes: 0 });
    expect(
      entries.map((e) =>
        e.type === 'gap' ? `gap ${e.data.from}-${e.data.to} ${e.data.missed}` : e.data.offset,
      ),
    ).toEqual(['gap 10-24 15', 25, 26, 27, 28, 29]);
  });

  it('a loss announced by the router (a gap line) is counted and written in its place, merged when dropped itself', async () => {
    const bus = new EventBus({ client, service: 'realtime-router', namespace: `sink-${randomUUID()}` });
    const sink = new RedisChannelSink('tick', bus, { capacity: 6, batch: 100 });
    sink.offer(sinkLine(trade(0)));
    sink.offer(sinkLine(trade(1)));
    sink.offer(gapLine({ epoch: 'e-sink', from: 2, to: 4, missed: 3 }));
    for (let k = 5; k < 10; k += 1) sink.offer(sinkLine(trade(k)));
    // 8 lines into 6: 0 and 1 dropped; the gap line stays, in its place.
    expect(await sink.flush(Date.now() + 10_000)).toBe(true);
    expect(sink.health()).toMatchObject({ dropped: 5, gaps: 2, published: 5 });
    expect(
      (await stream(bus)).map((e) =>
        e.type === 'gap' ? `gap ${e.data.from}-${e.data.to} ${e.data.missed}` : e.data.offset,
      ),
    ).toEqual(['gap 0-1 2', 'gap 2-4 3', 5, 6, 7, 8, 9]);

    const merged = new EventBus({ client, service: 'realtime-router', namespace: `sink-${randomUUID()}` });
    const small = new RedisChannelSink('tick', merged, { capacity: 3, batch: 100 });
    small.offer(sinkLine(trade(0)));
    small.offer(gapLine({ epoch: 'e-sink', from: 1, to: 4, missed: 4 }));
    for (let k = 5; k < 9; k += 1) small.offer(sinkLine(trade(k)));
    // 0, the gap line and 5 dropped: one run 0-5, one entry.
    expect(await small.flush(Date.now() + 10_000)).toBe(true);
    expect(small.health()).toMatchObject({ dropped: 6, gaps: 1, published: 3 });
    expect(
      (await stream(merged)).map((e) =>
        e.type === 'gap' ? `gap ${e.data.from}-${e.data.to} ${e.data.missed}` : e.data.offset,
      ),
    ).toEqual(['gap 0-5 6', 6, 7, 8]);
  });

  it('on the worker thread: every message once, in order, and the figures shared back', async () => {
    const namespace = `sink-${randomUUID()}`;
    const bus = new EventBus({ client, service: 'realtime-router', namespace });
    const sinks = openRedisSinks({ targets: { tick: { url: REDIS_URL, namespace } }, limits: { batch: 7 } });
    try {
      for (let k = 0; k < 50; k += 1) sinks.offer(trade(k));
      // A channel without a target is not published.
      sinks.offer({ ...trade(50), channel: 'fmv' });
      expect(await sinks.flush(Date.now() + 10_000)).toBe(true);
      expect(sinks.health().tick).toMatchObject({
        breaker: 'closed',
        depth: 0,
        published: 50,
        dropped: 0,
        gaps: 0,
      });
      expect(sinks.health().fmv).toBeUndefined();
    } finally {
      await sinks.close();
    }
    const entries = await stream(bus);
    expect(entries.map((e) => e.data.offset)).toEqual(Array.from({ length: 50 }, (_, k) => k));
    expect(entries[3]).toEqual({ type: 'trade', data: { ...trade(3).data, epoch: 'e-sink', offset: 3 } });
  });

  it('on the worker thread: what the hand-over cannot hold is dropped by the router and announced in its place', async () => {
    const namespace = `sink-${randomUUID()}`;
    const bus = new EventBus({ client, service: 'realtime-router', namespace });
    const size = sinkLine(trade(10)).length;
    const sinks = openRedisSinks({
      targets: { tick: { url: REDIS_URL, namespace } },
      handoffBytes: 10 * size,
    });
    try {
      // One synchronous burst: nothing is posted before it ends, so lines past 10 do not fit.
      for (let k = 10; k < 40; k += 1) sinks.offer(trade(k));
      expect(sinks.health().tick).toMatchObject({ dropped: 19 });
      expect(await sinks.flush(Date.now() + 10_000)).toBe(true);
      expect(sinks.health().tick).toMatchObject({ published: 11, dropped: 19, gaps: 1, depth: 0 });
    } finally {
      await sinks.close();
    }
    expect(
      (await stream(bus)).map((e) =>
        e.type === 'gap' ? `gap ${e.data.from}-${e.data.to} ${e.data.missed}` : e.data.offset,
      ),
    ).toEqual([...Array.from({ length: 11 }, (_, k) => k + 10), 'gap 21-39 19']);
  });
});
