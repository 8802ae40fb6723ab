/**
 * Gap notices (lambdas/platform/event-bus/gaps.ts): a consumer group that fell behind the stream's
 * length cap, or whose Redis lost its data, is told so, with what was lost. On the real Redis, one
 * namespace (unique stream keys) per test.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  type Channel,
  compareIds,
  type DeliveredEvent,
  EventBus,
  epochKey,
  StreamConsumer,
  type StreamGap,
  StreamGapError,
} from '../../../lambdas/platform/event-bus';
import { trimmedEntries } from '../../../lambdas/platform/event-bus/gaps';
import { createRedisClient, type RedisClient } from '../../../lambdas/platform/redis';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('trim gap arithmetic', () => {
  const at = (p: Partial<Parameters<typeof trimmedEntries>[0]>) =>
    trimmedEntries({
      length: 10,
      entriesAdded: 100,
      firstId: '200-0',
      lastDeliveredId: '100-0',
      entriesRead: 40,
      lag: 60,
      ...p,
    });

  it('counts the entries after the group position that the stream no longer holds', () => {
    expect(at({})).toEqual({ lost: 50 });
    expect(at({ lag: 10 })).toBeNull();
    // Read up to the first retained entry or beyond: nothing missed
    expect(at({ lastDeliveredId: '200-0' })).toBeNull();
    expect(at({ lastDeliveredId: '250-3' })).toBeNull();
  });

  it('a group at 0-0 missed every entry ever added that is no longer there', () => {
    // Redis estimates the lag from the retained entries when entries-read is unknown
    expect(at({ lastDeliveredId: '0-0', entriesRead: null, lag: 10 })).toEqual({ lost: 90 });
    expect(at({ lastDeliveredId: '0-0', entriesRead: null, lag: 10, entriesAdded: 10 })).toBeNull();
  });

  it('without a count, reports a gap of unknown size only when entries were removed', () => {
    expect(at({ lag: null, entriesRead: null })).toEqual({ lost: null });
    expect(at({ lag: 10, entriesRead: null })).toEqual({ lost: null });
    expect(at({ lag: null, entriesRead: null, entriesAdded: 10 })).toBeNull();
  });

  it('compares ids numerically, milliseconds first', () => {
    expect(compareIds('9-0', '10-0')).toBe(-1);
    expect(compareIds('10-2', '10-10')).toBe(-1);
    expect(compareIds('1796058059268-5', '1796058059268-5')).toBe(0);
    expect(compareIds('1796058059269-0', '1796058059268-9')).toBe(1);
  });
});

describe('StreamConsumer gap notices on a real Redis', () => {
  let publisher: RedisClient;
  const clients: RedisClient[] = [];
  const namespaces: string[] = [];

  async function connected(): Promise<RedisClient> {
    const client = createRedisClient({ url: REDIS_URL });
    await client.connect();
    clients.push(client);
    return client;
  }

  function newNamespace(): string {
    const namespace = `test-evgap-${randomUUID()}`;
    namespaces.push(namespace);
    return namespace;
  }

  async function publish(bus: EventBus, channel: Channel, n: number): Promise<string[]> {
    const results = await bus.publishAll(
      Array.from({ length: n }, (_, i) => ({ channel, input: { event_type: 'e', data: { i } } })),
    );
    return results.map((r) => {
      if (r.status !== 'fulfilled') throw r.reason;
      return r.value.envelope.message_id;
    });
  }

  async function drain(consumer: StreamConsumer): Promise<void> {
    for (let round = 0; round < 50; round++) if ((await consumer.poll(0)) === 0) return;
  }

  beforeAll(async () => {
    publisher = await connected();
  });

  afterAll(async () => {
    for (const namespace of namespaces) {
      const keys = await publisher.keys(`${namespace}:*`);
      if (keys.length > 0) await publisher.del(keys);
    }
    for (const c of clients) if (c.isOpen) c.destroy();
  });

  it('an offline consumer that fell behind the cap is told how many entries of which channel it lost, then gets the rest', async () => {
    // Prepare: the app's group exists, the app goes offline, 400 progress messages pass a cap of 20
    const namespace = newNamespace();
    const bus = new EventBus({ client: publisher, service: 'test', namespace, maxLen: 20 });
    const channels: Channel[] = [CHANNELS.backfillProgress, CHANNELS.eodCompleted];
    const gaps: StreamGap[] = [];
    const received: DeliveredEvent[] = [];
    const options = {
      group: 'app',
      consumer: 'app-1',
      channels,
      namespace,
      onGap: (g: StreamGap) => {
        gaps.push(g);
      },
      handler: (e: DeliveredEvent) => {
        received.push(e);
      },
    };
    const before = new StreamConsumer({ ...options, client: await connected() });
    await before.poll(0);
    const firstRead = await publish(bus, CHANNELS.backfillProgress, 5);
    await drain(before);
    const lastSeen = received.at(-1)?.streamId as string;
    const missed = await publish(bus, CHANNELS.backfillProgress, 400);
    const eod = await publish(bus, CHANNELS.eodCompleted, 3);

    // Act: the app comes back
    const back = new StreamConsumer({ ...options, client: await connected() });
    await drain(back);

    // Assess: one gap, on the trimmed channel, with what was lost; the retained entries follow it
    const key = bus.streamKey(CHANNELS.backfillProgress);
    const retained = (await publisher.xRange(key, '-', '+')) ?? [];
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({
      kind: 'trimmed',
      channel: CHANNELS.backfillProgress,
      streamKey: key,
      group: 'app',
      afterId: lastSeen,
      resumeId: retained[0]?.id,
      lost: missed.length - retained.length,
    });
    const progress = received.filter((e) => e.channel === CHANNELS.backfillProgress);
    expect(progress.map((e) => e.envelope.message_id)).toEqual([
      ...firstRead,
      ...missed.slice(-retained.length),
    ]);
    expect(
      received.filter((e) => e.channel === CHANNELS.eodCompleted).map((e) => e.envelope.message_id),
    ).toEqual(eod);
    // Nothing is told twice
    await back.poll(0);
    expect(gaps).toHaveLength(1);
  });

  it('a consumer that keeps up is told nothing, however far past the cap the stream goes', async () => {
    const namespace = newNamespace();
    const bus = new EventBus({ client: publisher, service: 'test', namespace, maxLen: 10 });
    const gaps: StreamGap[] = [];
    let received = 0;
    const consumer = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels: [CHANNELS.backfillProgress],
      namespace,
      onGap: (g) => {
        gaps.push(g);
      },
      handler: () => {
        received++;
      },
    });
    await consumer.poll(0);

    for (let batch = 0; batch < 30; batch++) {
      await publish(bus, CHANNELS.backfillProgress, 8);
      await drain(consumer);
    }

    expect(received).toBe(240);
    expect(gaps).toEqual([]);
  });

  it('a gap the app fails to take is offered again, and no entry after it is handled before it is taken', async () => {
    const namespace = newNamespace();
    const bus = new EventBus({ client: publisher, service: 'test', namespace, maxLen: 10 });
    const told: StreamGap[] = [];
    const errors: unknown[] = [];
    const received: string[] = [];
    let refuse = true;
    const consumer = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels: [CHANNELS.symbolsNew],
      namespace,
      onGap: (g) => {
        told.push(g);
        if (refuse) throw new Error('the app could not resync yet');
      },
      onError: (e) => errors.push(e),
      handler: (e) => {
        received.push(e.envelope.message_id);
      },
    });
    await consumer.poll(0);
    const published = await publish(bus, CHANNELS.symbolsNew, 200);

    const refused = await consumer.poll(0);
    refuse = false;
    await drain(consumer);

    const retained = (await publisher.xLen(bus.streamKey(CHANNELS.symbolsNew))) as number;
    expect(refused).toBe(0);
    expect(errors).toHaveLength(1);
    expect(told).toHaveLength(2);
    expect(told[1]).toEqual(told[0]);
    expect(told[1]?.lost).toBe(200 - retained);
    expect(received).toEqual(published.slice(-retained));
  });

  it('without onGap the gap reaches onError as a StreamGapError', async () => {
    const namespace = newNamespace();
    const bus = new EventBus({ client: publisher, service: 'test', namespace, maxLen: 10 });
    const errors: unknown[] = [];
    const consumer = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels: [CHANNELS.eodCompleted],
      namespace,
      onError: (e) => errors.push(e),
      handler: () => undefined,
    });
    await consumer.poll(0);
    await publish(bus, CHANNELS.eodCompleted, 150);

    await drain(consumer);

    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StreamGapError);
    expect((errors[0] as StreamGapError).gap.channel).toBe(CHANNELS.eodCompleted);
    expect((errors[0] as StreamGapError).message).toMatch(/resynchronise from the database/);
  });

  it('Redis losing its data is a reset of every channel (new epoch), for a running consumer and for an app that kept its epoch', async () => {
    // Prepare
    const namespace = newNamespace();
    const bus = new EventBus({ client: publisher, service: 'test', namespace });
    const channels: Channel[] = [CHANNELS.symbolsNew, CHANNELS.eodCompleted];
    const gaps: StreamGap[] = [];
    const received: string[] = [];
    const consumer = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels,
      namespace,
      onGap: (g) => {
        gaps.push(g);
      },
      handler: (e) => {
        received.push(e.envelope.message_id);
      },
    });
    await consumer.poll(0);
    const epochBefore = consumer.epoch;
    await publish(bus, CHANNELS.symbolsNew, 3);
    await drain(consumer);

    // Act: the namespace's data is gone (what a Redis restart without persistence does), then new
    // messages are published before the consumer reads again
    const keys = await publisher.keys(`${namespace}:*`);
    await publisher.del(keys);
    const after = await publish(bus, CHANNELS.eodCompleted, 2);
    await drain(consumer);

    // Assess: every channel is reset, with the old and the new epoch
    expect(epochBefore).toMatch(/^[0-9a-f-]{36}$/);
    expect(consumer.epoch).not.toBe(epochBefore);
    expect(await publisher.get(epochKey(namespace))).toBe(consumer.epoch);
    expect(gaps.map((g) => [g.kind, g.channel, g.previousEpoch, g.epoch])).toEqual(
      channels.map((c) => ['reset', c, epochBefore, consumer.epoch]),
    );
    expect(gaps.every((g) => g.lost === null)).toBe(true);
    expect(received).toHaveLength(3);
    expect(after).toHaveLength(2);

    // Act: an app restarted with the epoch it persisted before the loss
    const restartedGaps: StreamGap[] = [];
    const restarted = new StreamConsumer({
      client: await connected(),
      group: 'app2',
      consumer: 'app2-1',
      channels,
      namespace,
      epoch: epochBefore as string,
      onGap: (g) => {
        restartedGaps.push(g);
      },
      handler: () => undefined,
    });
    await restarted.poll(0);
    // ... and one that persisted the current epoch
    const currentGaps: StreamGap[] = [];
    const current = new StreamConsumer({
      client: await connected(),
      group: 'app3',
      consumer: 'app3-1',
      channels,
      namespace,
      epoch: consumer.epoch as string,
      onGap: (g) => {
        currentGaps.push(g);
      },
      handler: () => undefined,
    });
    await current.poll(0);

    expect(restartedGaps.map((g) => g.kind)).toEqual(['reset', 'reset']);
    expect(currentGaps).toEqual([]);
  });

  it('an operator giving the namespace a new epoch (after a snapshot restore) resets running consumers', async () => {
    const namespace = newNamespace();
    const gaps: StreamGap[] = [];
    const consumer = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels: [CHANNELS.eodCompleted],
      namespace,
      onGap: (g) => {
        gaps.push(g);
      },
      handler: () => undefined,
    });
    await consumer.poll(0);
    const before = consumer.epoch;

    await publisher.set(epochKey(namespace), 'restored-2026-11-30');
    await consumer.poll(0);
    await consumer.poll(0);

    expect(gaps.map((g) => [g.kind, g.previousEpoch, g.epoch])).toEqual([
      ['reset', before, 'restored-2026-11-30'],
    ]);
    expect(consumer.epoch).toBe('restored-2026-11-30');
  });
});
