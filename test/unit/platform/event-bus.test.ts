import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALERT_CHANNELS,
  ALL_CHANNELS,
  buildEnvelope,
  CHANNEL_NAME_PATTERN,
  CHANNELS,
  type Channel,
  compareIds,
  type DeliveredEvent,
  decodeEnvelope,
  EventBus,
  EventBusUnavailableError,
  InvalidEnvelopeError,
  type LiveMessage,
  parseEnvelope,
  StreamConsumer,
  subscribeLive,
  UnknownChannelError,
} from '../../../lambdas/platform/event-bus';
import { createRedisClient, type RedisClient } from '../../../lambdas/platform/redis';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const valid = {
  message_id: '6f1c1c3e-2b7a-4d7e-9a53-0c3c1d2e9f10',
  timestamp: '2026-03-02T21:05:00.000Z',
  service: 'ipo-scan',
  event_type: 'symbol_added',
  data: { symbol: 'NEWCO' },
};

describe('channel names', () => {
  it('every constant matches the naming rule and is unique', () => {
    const names = Object.values(CHANNELS);

    const offending = names.filter((n) => !CHANNEL_NAME_PATTERN.test(n));

    expect(names.length).toBe(23);
    expect(offending).toEqual([]);
    expect(new Set(names).size).toBe(names.length);
    expect(ALL_CHANNELS).toEqual(names);
  });

  it('the rule rejects names outside the tickstock namespace or with bad segments', () => {
    for (const bad of [
      'tickstock',
      'tickstock.',
      'tickstock.Universe.updated',
      'other.universe.updated',
      'tickstock.eod-completed',
      'tickstock.eod',
    ]) {
      expect(CHANNEL_NAME_PATTERN.test(bad), bad).toBe(false);
    }
  });
});

describe('envelope', () => {
  it('accepts a well-formed message', () => {
    expect(parseEnvelope(CHANNELS.symbolsNew, valid)).toEqual(valid);
  });

  it.each([
    ['missing service', { ...valid, service: undefined }],
    ['empty event_type', { ...valid, event_type: '' }],
    ['timestamp with an offset (not UTC)', { ...valid, timestamp: '2026-03-02T16:05:00-05:00' }],
    ['timestamp not ISO', { ...valid, timestamp: 'Mon, 02 Mar 2026 21:05:00 GMT' }],
    ['data is an array', { ...valid, data: ['NEWCO'] }],
    ['data missing', { ...valid, data: undefined }],
    ['message id not a uuid', { ...valid, message_id: '42' }],
    ['unknown severity', { ...valid, severity: 'urgent' }],
  ])('rejects %s', (_label, message) => {
    expect(() => parseEnvelope(CHANNELS.symbolsNew, message)).toThrow(InvalidEnvelopeError);
  });

  it('requires a severity on alert channels only', () => {
    for (const channel of ALERT_CHANNELS) {
      expect(() => parseEnvelope(channel, valid)).toThrow(InvalidEnvelopeError);
      expect(parseEnvelope(channel, { ...valid, severity: 'high' }).severity).toBe('high');
    }
    expect(parseEnvelope(CHANNELS.qualityDailySummary, valid).severity).toBeUndefined();
  });

  it('rejects unknown channels and non-JSON text', () => {
    expect(() => parseEnvelope('tickstock.eod.finished', valid)).toThrow(UnknownChannelError);
    expect(() => decodeEnvelope(CHANNELS.eodCompleted, '{not json')).toThrow(InvalidEnvelopeError);
  });
});

describe("envelope service per channel (the seeds' producer names)", () => {
  const expected: Record<string, string> = {
    'tickstock.automation.symbols.new': 'ipo_monitor',
    'tickstock.automation.symbols.changed': 'ipo_monitor',
    'tickstock.automation.symbols.archived': 'ipo_monitor',
    'tickstock.automation.backfill.started': 'ipo_monitor',
    'tickstock.automation.backfill.progress': 'ipo_monitor',
    'tickstock.automation.backfill.completed': 'ipo_monitor',
    'tickstock.automation.maintenance.started': 'ipo_monitor',
    'tickstock.automation.maintenance.completed': 'ipo_monitor',
    'tickstock.quality.price_anomaly': 'data_quality_monitor',
    'tickstock.quality.volume_anomaly': 'data_quality_monitor',
    'tickstock.quality.data_gap': 'data_quality_monitor',
    'tickstock.quality.stale_data': 'data_quality_monitor',
    'tickstock.quality.daily_summary': 'data_quality_monitor',
    'tickstock.universe.updated': 'cache_sync',
    'tickstock.cache.sync_complete': 'cache_sync',
    'tickstock.cache.ipo_assignment': 'cache_sync',
    'tickstock.cache.delisting_cleanup': 'cache_sync',
    'tickstock.etf.correlation_update': 'etf_universe_manager',
    'tickstock.eod.completed': 'eod_pipeline',
  };

  it.each(ALL_CHANNELS.map((c) => [c]))('%s', (channel) => {
    // Whatever job relays the outbox row (its bus's own service), a seed channel says its producer.
    const envelope = buildEnvelope(channel, {
      service: 'backfill',
      event_type: 'x',
      data: {},
      severity: 'low',
    });
    expect(envelope.service).toBe(expected[channel] ?? 'backfill');
  });

  it("covers every market channel, and only the real-time router's are left to the bus", () => {
    const free = ALL_CHANNELS.filter((c) => expected[c] === undefined);
    expect(free.every((c) => c.startsWith('tickstock.realtime.'))).toBe(true);
    expect(Object.keys(expected).every((c) => (ALL_CHANNELS as readonly string[]).includes(c))).toBe(true);
  });
});

describe('EventBus with a real Redis', () => {
  let publisherClient: RedisClient;
  const clients: RedisClient[] = [];

  async function connected(): Promise<RedisClient> {
    const client = createRedisClient({ url: REDIS_URL });
    await client.connect();
    clients.push(client);
    return client;
  }

  function newBus(namespace: string, maxLen?: number): EventBus {
    return new EventBus({
      client: publisherClient,
      service: 'test',
      namespace,
      ...(maxLen ? { maxLen } : {}),
    });
  }

  async function drain(consumer: StreamConsumer, expected: number): Promise<void> {
    // Bounded: a missing message fails the count assertion instead of hanging the test.
    let seen = 0;
    for (let round = 0; round < 50 && seen < expected; round++) seen += await consumer.poll(0);
  }

  beforeAll(async () => {
    publisherClient = await connected();
  });

  afterAll(async () => {
    const namespaces = await publisherClient.keys('test-evbus-*');
    if (namespaces.length > 0) await publisherClient.del(namespaces);
    for (const c of clients) if (c.isOpen) c.destroy();
  });

  it('writes the stream entry and the pub/sub message with the same envelope', async () => {
    const namespace = `test-evbus-${randomUUID()}`;
    const bus = newBus(namespace);
    const subscriber = await connected();
    const live: LiveMessage[] = [];
    const unsubscribe = await subscribeLive(subscriber, (m) => live.push(m), 'tickstock.universe.*');

    const published = await bus.publish(CHANNELS.universeUpdated, {
      event_type: 'universe_changed',
      data: { universe: 'top_100', added: ['NEWCO'], removed: [] },
    });
    for (let i = 0; i < 200 && live.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await unsubscribe();

    const entries = (await publisherClient.xRange(bus.streamKey(CHANNELS.universeUpdated), '-', '+')) ?? [];
    expect(entries).toHaveLength(1);
    expect(entries[0]?.id).toBe(published.streamId);
    expect(JSON.parse(entries[0]?.message.envelope ?? '')).toEqual(published.envelope);
    const received = live.find(
      (m) => 'envelope' in m && m.envelope.message_id === published.envelope.message_id,
    );
    expect(received?.channel).toBe(CHANNELS.universeUpdated);
    expect(published.subscribers).toBeGreaterThanOrEqual(1);
  });

  it('rejects an invalid message without writing anything', async () => {
    const bus = newBus(`test-evbus-${randomUUID()}`);

    const attempt = bus.publish(CHANNELS.qualityPriceAnomaly, {
      event_type: 'price_anomaly',
      data: { symbol: 'X' },
    });

    await expect(attempt).rejects.toBeInstanceOf(InvalidEnvelopeError);
    expect(await publisherClient.exists(bus.streamKey(CHANNELS.qualityPriceAnomaly))).toBe(0);
  });

  it('fails loudly with EventBusUnavailableError when Redis cannot be reached', async () => {
    const closed = await connected();
    closed.destroy();
    const neverConnected = createRedisClient({ url: REDIS_URL });
    const input = { event_type: 'eod_completed', data: { date: '2026-03-02' } };

    const a = new EventBus({ client: closed, service: 'eod' }).publish(CHANNELS.eodCompleted, input);
    const b = new EventBus({ client: neverConnected, service: 'eod' }).publish(CHANNELS.eodCompleted, input);

    await expect(a).rejects.toBeInstanceOf(EventBusUnavailableError);
    await expect(b).rejects.toBeInstanceOf(EventBusUnavailableError);
  });

  it('keeps each channel stream bounded (MAXLEN ~)', async () => {
    const bus = newBus(`test-evbus-${randomUUID()}`, 50);
    const nodeSize = Number(
      (await publisherClient.configGet('stream-node-max-entries'))['stream-node-max-entries'],
    );

    await bus.publishAll(
      Array.from({ length: 600 }, (_, i) => ({
        channel: CHANNELS.backfillProgress,
        input: { event_type: 'backfill_progress', data: { i } },
      })),
    );

    const length = await publisherClient.xLen(bus.streamKey(CHANNELS.backfillProgress));
    expect(length).toBeGreaterThanOrEqual(50);
    // Approximate trimming removes whole radix-tree nodes, so up to one node more than the cap remains.
    expect(length).toBeLessThanOrEqual(50 + nodeSize);
  });

  it('publishBatch writes a batch in one MULTI: stream entries and pub/sub in the given order, trimmed', async () => {
    const namespace = `test-evbus-${randomUUID()}`;
    const bus = newBus(namespace, 50);
    const subscriber = await connected();
    const live: LiveMessage[] = [];
    const unsubscribe = await subscribeLive(subscriber, (m) => live.push(m), CHANNELS.realtimeTick);
    const inputs = Array.from({ length: 300 }, (_, i) => ({
      message_id: `6f1c1c3e-2b7a-4d7e-9a53-${String(i).padStart(12, '0')}`,
      event_type: 'trade',
      data: { sym: 'AAPL', offset: i + 1 },
    }));

    // Pub/sub channels are not namespaced: keep only this test's messages (a stage router may publish).
    const ours = new Set(inputs.map((m) => m.message_id));
    const mine = (): LiveMessage[] => live.filter((m) => 'envelope' in m && ours.has(m.envelope.message_id));

    const published = await bus.publishBatch(CHANNELS.realtimeTick, inputs);
    for (let i = 0; i < 200 && mine().length < inputs.length; i++) await new Promise((r) => setTimeout(r, 5));
    await unsubscribe();

    const entries = (await publisherClient.xRange(bus.streamKey(CHANNELS.realtimeTick), '-', '+')) ?? [];
    const tail = entries.map((e) => JSON.parse(e.message.envelope ?? '{}').data.offset as number);
    expect(published.map((p) => p.envelope.data.offset)).toEqual(inputs.map((m) => m.data.offset));
    expect(published.map((p) => p.streamId)).toEqual([...published.map((p) => p.streamId)].sort(compareIds));
    // MAXLEN ~ 50 applied as `publish` does: the newest entries remain, in order, ending with the last.
    expect(tail.at(-1)).toBe(300);
    expect(tail).toEqual(Array.from({ length: tail.length }, (_, k) => 301 - tail.length + k));
    expect(tail.length).toBeLessThan(300);
    expect(mine().map((m) => ('envelope' in m ? m.envelope.data.offset : null))).toEqual(
      inputs.map((m) => m.data.offset),
    );
  });

  it('publishBatch validates every message, not only the first, and then writes nothing', async () => {
    const bus = newBus(`test-evbus-${randomUUID()}`);
    const good = { event_type: 'trade', data: { sym: 'A' } };

    const badId = bus.publishBatch(CHANNELS.realtimeTick, [good, { ...good, message_id: 'not-a-uuid' }]);
    const badType = bus.publishBatch(CHANNELS.realtimeTick, [good, good, { ...good, event_type: '' }]);
    const badData = bus.publishBatch(CHANNELS.realtimeTick, [
      good,
      { event_type: 'trade', data: [1] as unknown as Record<string, unknown> },
    ]);

    await expect(badId).rejects.toBeInstanceOf(InvalidEnvelopeError);
    await expect(badType).rejects.toBeInstanceOf(InvalidEnvelopeError);
    await expect(badData).rejects.toBeInstanceOf(InvalidEnvelopeError);
    expect(await publisherClient.exists(bus.streamKey(CHANNELS.realtimeTick))).toBe(0);
  });

  it('publishBatch fails whole with EventBusUnavailableError when Redis cannot be reached', async () => {
    const neverConnected = createRedisClient({ url: REDIS_URL });
    const bus = new EventBus({ client: neverConnected, service: 'realtime-router' });

    const attempt = bus.publishBatch(CHANNELS.realtimeTick, [{ event_type: 'trade', data: { sym: 'A' } }]);

    await expect(attempt).rejects.toBeInstanceOf(EventBusUnavailableError);
  });

  it('an offline consumer receives everything published while it was down, exactly once', async () => {
    const namespace = `test-evbus-${randomUUID()}`;
    const bus = newBus(namespace);
    const channels: Channel[] = [CHANNELS.symbolsNew, CHANNELS.universeUpdated, CHANNELS.eodCompleted];
    const offline = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels,
      namespace,
      handler: () => undefined,
    });
    await offline.ensureGroups();
    const publishedIds: string[] = [];
    for (let i = 0; i < 60; i++) {
      const channel = channels[i % channels.length] as Channel;
      publishedIds.push((await bus.publish(channel, { event_type: 'e', data: { i } })).envelope.message_id);
    }

    const received: DeliveredEvent[] = [];
    const back = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels,
      namespace,
      handler: (e) => {
        received.push(e);
      },
    });
    await drain(back, 60);
    const extra = await back.poll(0);

    expect(received.map((e) => e.envelope.message_id).sort()).toEqual([...publishedIds].sort());
    expect(extra).toBe(0);
    const pending = await publisherClient.xPending(bus.streamKey(CHANNELS.symbolsNew), 'app');
    expect(pending.pending).toBe(0);
  });

  it('two groups each get every message; consumers within a group share them', async () => {
    const namespace = `test-evbus-${randomUUID()}`;
    const bus = newBus(namespace);
    const channels: Channel[] = [CHANNELS.cacheSyncComplete];
    const byConsumer = new Map<string, string[]>();
    const make = async (group: string, consumer: string) => {
      const c = new StreamConsumer({
        client: await connected(),
        group,
        consumer,
        channels,
        namespace,
        startId: '0',
        count: 7,
        handler: (e) => {
          const key = `${group}/${consumer}`;
          byConsumer.set(key, [...(byConsumer.get(key) ?? []), e.envelope.message_id]);
        },
      });
      await c.ensureGroups();
      return c;
    };
    const [a1, a2, b1] = [
      await make('ui', 'ui-1'),
      await make('ui', 'ui-2'),
      await make('alerts', 'alerts-1'),
    ];
    const ids = (
      await bus.publishAll(
        Array.from({ length: 40 }, (_, i) => ({
          channel: CHANNELS.cacheSyncComplete,
          input: { event_type: 'sync', data: { i } },
        })),
      )
    ).map((r) => (r.status === 'fulfilled' ? r.value.envelope.message_id : 'failed'));

    // Non-blocking polls, alternating, until a round brings nothing new (bounded).
    for (let round = 0; round < 50; round++) {
      const got = (await a1.poll(0)) + (await a2.poll(0)) + (await b1.poll(0));
      if (got === 0) break;
    }

    const ui = [...(byConsumer.get('ui/ui-1') ?? []), ...(byConsumer.get('ui/ui-2') ?? [])];
    expect(ui.sort()).toEqual([...ids].sort());
    expect(byConsumer.get('ui/ui-1')?.length).toBeGreaterThan(0);
    expect(byConsumer.get('ui/ui-2')?.length).toBeGreaterThan(0);
    expect([...(byConsumer.get('alerts/alerts-1') ?? [])].sort()).toEqual([...ids].sort());
  });

  it("claims a crashed consumer's pending messages once they are idle long enough", async () => {
    const namespace = `test-evbus-${randomUUID()}`;
    const bus = newBus(namespace);
    const channels: Channel[] = [CHANNELS.backfillCompleted];
    const crashingClient = await connected();
    const crashing = new StreamConsumer({
      client: crashingClient,
      group: 'worker',
      consumer: 'w-1',
      channels,
      namespace,
      handler: () => {
        throw new Error('process died before acknowledging');
      },
    });
    await crashing.ensureGroups();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      ids.push(
        (await bus.publish(CHANNELS.backfillCompleted, { event_type: 'done', data: { i } })).envelope
          .message_id,
      );
    }
    await crashing.readNew(0);
    crashingClient.destroy();

    const received: DeliveredEvent[] = [];
    const survivorOptions = {
      group: 'worker',
      consumer: 'w-2',
      channels,
      namespace,
      handler: (e: DeliveredEvent) => {
        received.push(e);
      },
    };
    const patient = new StreamConsumer({
      ...survivorOptions,
      client: await connected(),
      claimMinIdleMs: 3_600_000,
    });
    const claimedTooEarly = await patient.claimIdle();
    const survivor = new StreamConsumer({ ...survivorOptions, client: await connected(), claimMinIdleMs: 0 });
    const claimed = await survivor.claimIdle();
    const newOnes = await survivor.readNew(0);

    expect(claimedTooEarly).toBe(0);
    expect(claimed).toBe(12);
    expect(newOnes).toBe(0);
    expect(received.map((e) => e.envelope.message_id).sort()).toEqual([...ids].sort());
    expect(received.every((e) => e.redelivered)).toBe(true);
    expect(
      (await publisherClient.xPending(bus.streamKey(CHANNELS.backfillCompleted), 'worker')).pending,
    ).toBe(0);
  });

  it('acknowledges an entry that is not an envelope so it cannot block the group', async () => {
    const namespace = `test-evbus-${randomUUID()}`;
    const bus = newBus(namespace);
    const channels: Channel[] = [CHANNELS.symbolsChanged];
    const invalid: string[] = [];
    const received: string[] = [];
    const consumer = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels,
      namespace,
      startId: '0',
      handler: (e) => {
        received.push(e.envelope.message_id);
      },
      onInvalid: ({ streamId }) => invalid.push(streamId),
    });
    const garbageId = await publisherClient.xAdd(bus.streamKey(CHANNELS.symbolsChanged), '*', {
      envelope: '{"oops":1}',
    });
    const good = await bus.publish(CHANNELS.symbolsChanged, {
      event_type: 'changed',
      data: { symbol: 'AAA' },
    });

    await drain(consumer, 1);

    expect(invalid).toEqual([garbageId]);
    expect(received).toEqual([good.envelope.message_id]);
    expect((await publisherClient.xPending(bus.streamKey(CHANNELS.symbolsChanged), 'app')).pending).toBe(0);
  });

  it('a consumer restarted under the same name gets back what it held unacknowledged', async () => {
    const namespace = `test-evbus-${randomUUID()}`;
    const bus = newBus(namespace);
    const channels: Channel[] = [CHANNELS.maintenanceCompleted];
    const first = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels,
      namespace,
      handler: () => {
        throw new Error('crash');
      },
    });
    await first.ensureGroups();
    const p = await bus.publish(CHANNELS.maintenanceCompleted, { event_type: 'done', data: {} });
    await first.readNew(0);

    const received: DeliveredEvent[] = [];
    const restarted = new StreamConsumer({
      client: await connected(),
      group: 'app',
      consumer: 'app-1',
      channels,
      namespace,
      handler: (e) => {
        received.push(e);
      },
    });
    await restarted.poll(0);

    expect(received.map((e) => [e.envelope.message_id, e.redelivered])).toEqual([
      [p.envelope.message_id, true],
    ]);
  });
});
