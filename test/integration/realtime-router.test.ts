/**
 * The live router on the local stage: its own provider feed (ephemeral port), the router service,
 * real WebSocket clients and the real Redis. Each test starts what it needs and stops it.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RouterChannel } from '../../lambdas/market/realtime/types';
import { EventBus } from '../../lambdas/platform/event-bus';
import { createRedisClient, type RedisClient } from '../../lambdas/platform/redis';
import { BUS_CHANNEL } from '../../lambdas/realtime-router/redis-sink';
import type { RedisSinksOptions } from '../../lambdas/realtime-router/redis-sinks';
import { RouterService, type RouterServiceOptions } from '../../lambdas/realtime-router/service';
import { type Feed, type FeedFaults, startFeed } from '../../localstack/feed/server';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PROFILE = {
  ohlcvSymbols: 30,
  tickSymbols: 12,
  fmvSymbols: 6,
  eventsPerMinute: 1_200,
  frameSize: 10,
  barFrameSize: 10,
  seed: 7,
};

interface Received {
  channel: RouterChannel;
  epoch: string;
  offset: number;
  sym: string;
  data: Record<string, unknown>;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0)
    await cleanups
      .pop()?.()
      .catch(() => undefined);
});

async function feedAt(speed: number, faults: FeedFaults = {}, profile = PROFILE): Promise<Feed> {
  const now = Date.now();
  const feed = await startFeed({ profile, speed, startAt: now - (now % 60_000), faults });
  cleanups.push(() => feed.close());
  return feed;
}

async function redis(url = REDIS_URL): Promise<RedisClient> {
  const c = createRedisClient({ url });
  await c.connect();
  cleanups.push(() => c.close());
  return c;
}

function providerFor(feed: Feed): RouterServiceOptions['provider'] {
  return {
    wsUrl: feed.wsUrl,
    restUrl: feed.restUrl,
    apiKey: 'local-key',
    subscriptions: 'T.*,Q.*,AM.*,FMV.*',
    minBackoffMs: 50,
  };
}

async function routerFor(feed: Feed, extra: Partial<RouterServiceOptions> = {}): Promise<RouterService> {
  const service = new RouterService({ provider: providerFor(feed), ...extra });
  await service.start();
  cleanups.push(() => service.stop(5_000));
  return service;
}

class TestClient {
  readonly messages: Received[] = [];
  readonly controls: Record<string, unknown>[] = [];
  socket!: WebSocket;

  static async open(port: number, subscribe: Record<string, unknown>): Promise<TestClient> {
    const c = new TestClient();
    await c.connect(port, subscribe);
    cleanups.push(async () => c.socket.terminate());
    return c;
  }

  async connect(port: number, subscribe: Record<string, unknown>): Promise<void> {
    this.socket = new WebSocket(`ws://127.0.0.1:${port}/stream`);
    this.socket.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.channel && typeof m.offset === 'number' && m.data) this.messages.push(m);
      else this.controls.push(m);
    });
    await new Promise((resolve, reject) => {
      this.socket.once('open', resolve);
      this.socket.once('error', reject);
    });
    this.socket.send(JSON.stringify({ action: 'subscribe', ...subscribe }));
  }

  trades(): Received[] {
    return this.messages.filter((m) => m.data.ev === 'T');
  }
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The test's streams are removed after it (the namespace is the test's own). */
function dropStreams(client: RedisClient, bus: EventBus): void {
  cleanups.push(() => client.del(Object.values(BUS_CHANNEL).map((c) => bus.streamKey(c))));
}

/** Every channel to the stage's Redis under the test's namespace (streams removed after). */
function streams(
  client: RedisClient,
  namespace: string,
  thread?: RedisSinksOptions['thread'],
): RedisSinksOptions {
  dropStreams(client, new EventBus({ client, service: 'realtime-router', namespace }));
  const target = { url: REDIS_URL, namespace };
  return {
    targets: { tick: target, event: target, fmv: target, ohlcv: target },
    ...(thread ? { thread } : {}),
  };
}

describe('real-time router on the local stage', () => {
  it.each(['worker', 'main'] as const)(
    'routes feed -> router -> client WebSocket and the Redis Streams, and loses nothing on shutdown (Redis sinks on the %s thread)',
    async (thread) => {
      const feed = await feedAt(60);
      const namespace = `rt-${randomUUID()}`;
      const r = await redis();
      const service = await routerFor(feed, { redis: streams(r, namespace, thread) });
      const client = await TestClient.open(service.port, { channel: '*', symbols: '*' });

      await until('a completed minute', () => client.messages.some((m) => m.data.ev === 'minute_complete'));
      const { drained } = await service.stop(10_000);
      await until('the close', () => client.socket.readyState === WebSocket.CLOSED, 10_000);

      const stats = service.router.stats;
      expect(drained).toBe(true);
      for (const channel of ['tick', 'ohlcv', 'fmv'] as const) {
        const offsets = client.messages.filter((m) => m.channel === channel).map((m) => m.offset);
        expect(offsets.length, channel).toBeGreaterThan(0);
        expect(offsets, `${channel} offsets contiguous from 1`).toEqual(offsets.map((_, k) => k + 1));
      }
      const bus = new EventBus({ client: r, service: 'x', namespace });
      for (const channel of ['tick', 'event', 'fmv', 'ohlcv'] as const) {
        expect(await r.xLen(bus.streamKey(BUS_CHANNEL[channel])), `${channel} stream`).toBe(
          stats[channel].delivered,
        );
      }
      const keys = client.trades().map((m) => `${m.sym}|${m.data.x}|${m.data.i}`);
      expect(new Set(keys).size).toBe(keys.length);
    },
  );

  it('a disconnect mid-surge resynchronised with no gap and no duplicate', async () => {
    // A surge (5x the usual rate, then a burst of frames at once) and the provider drops the socket
    // in the middle of it. The REST fill pages (5 trades a page) and the resumed socket is held until
    // the fill is done, so every trade produced around the disconnect reaches the client exactly once.
    const feed = await feedAt(30, {}, { ...PROFILE, eventsPerMinute: 6_000 });
    const service = await routerFor(feed, { provider: { ...providerFor(feed), restPageLimit: 5 } });
    const client = await TestClient.open(service.port, { channel: 'tick', symbols: '*' });
    // Subscribed for long enough that the window checked below starts after the subscription.
    await until(
      'trades flowing',
      () => client.trades().length > 50 && feed.marketNow() - (client.trades()[0]?.data.t as number) > 8_000,
    );

    feed.setFaults({ burstFrames: 300 });
    feed.dropConnections();
    const cutoffBefore = feed.marketNow();
    await until('reconnect and gap fill', () => service.health().provider.gapFillsDone >= 1);
    // Anything newer than what the feed had served when the fill ended came on the resumed socket,
    // after the fill: once the client has such a trade, it has every one before it.
    const fillEnd = feed.marketNow();
    const cutoff = cutoffBefore + 10_000;
    await until('trades past the cutoff and the fill', () =>
      client.trades().some((m) => (m.data.t as number) > Math.max(cutoff, fillEnd) + 5_000),
    );

    const key = (m: Received): string => `${m.sym}|${m.data.x}|${m.data.i}`;
    const delivered = client.trades().map(key);
    // From a little before the disconnect (the client was subscribed then) to the cutoff after it.
    const before = feed.tradeKeys(cutoffBefore - 5_000);
    const expected = [...feed.tradeKeys(cutoff)].filter((k) => !before.has(k));
    const got = new Set(delivered);
    const provider = service.health().provider;
    expect(provider.disconnects).toBeGreaterThanOrEqual(1);
    expect(provider.gapFillEvents).toBeGreaterThan(0);
    expect(provider.gapFillPages).toBeGreaterThan(provider.gapFills);
    expect(provider.gapFillErrors).toBe(0);
    expect(service.router.stats.tick.rejected).toEqual({});
    expect(got.size, 'no trade twice').toBe(delivered.length);
    expect(
      expected.filter((k) => !got.has(k)),
      'no trade missing',
    ).toEqual([]);
    expect(expected.length).toBeGreaterThan(300);
    // Per symbol the client sees trades in time order across the gap (REST before the resumed socket).
    const lastT = new Map<string, number>();
    const backwards = client.trades().filter((m) => {
      const t = m.data.t as number;
      const back = t < (lastT.get(m.sym) ?? 0) - 1_000;
      lastT.set(m.sym, Math.max(t, lastT.get(m.sym) ?? 0));
      return back;
    });
    expect(backwards.map(key)).toEqual([]);
  });

  it('a reconnecting client resumes from its offset with no gap and no duplicate, and an unknown epoch is told to resync', async () => {
    const feed = await feedAt(60);
    const service = await routerFor(feed);
    const first = await TestClient.open(service.port, { channel: 'tick', symbols: '*' });
    await until('ticks', () => first.messages.length > 30);
    first.socket.close();
    await until('closed', () => first.socket.readyState === WebSocket.CLOSED);
    const last = first.messages.at(-1) as Received;
    const offsetAtClose = service.router.hub.offset('tick');
    await until('more ticks while away', () => service.router.hub.offset('tick') > offsetAtClose + 20);

    const second = await TestClient.open(service.port, {
      channel: 'tick',
      symbols: '*',
      resume: { epoch: last.epoch, offset: last.offset },
    });
    await until('caught up', () => second.messages.some((m) => m.offset > offsetAtClose + 20));
    const stale = await TestClient.open(service.port, {
      channel: 'tick',
      symbols: '*',
      resume: { epoch: 'old-epoch', offset: 5 },
    });
    await until('resync answer', () => stale.controls.some((c) => c.ev === 'resync'));

    const offsets = [...first.messages, ...second.messages].map((m) => m.offset);
    expect(second.controls[0]).toMatchObject({ ev: 'resumed', channel: 'tick', from: last.offset });
    expect(offsets).toEqual(offsets.map((_, k) => k + 1));
    expect(stale.controls[0]).toMatchObject({ ev: 'resync', reason: 'epoch_changed' });
  });

  it('switches a slow client to conflation with a bounded queue, gives it gap notices for trades, and keeps its trades in order', async () => {
    const feed = await feedAt(240);
    const service = await routerFor(feed, {
      clientBuffer: { maxQueue: 300, highWater: 150, lowWater: 20, maxBufferedBytes: 8_192 },
    });
    const slow = await TestClient.open(service.port, { channel: '*', symbols: '*' });
    // The slow client stops reading: its socket buffers fill, then the router's queue for it.
    (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    let maxQueued = 0;
    await until('the slow client conflating', () => {
      const s = service.health().clients.find((c) => c.conflating);
      maxQueued = Math.max(maxQueued, ...service.health().clients.map((c) => c.queued));
      return s !== undefined && s.gapped.tick > 0;
    });
    for (let k = 0; k < 20; k += 1) {
      maxQueued = Math.max(maxQueued, ...service.health().clients.map((c) => c.queued));
      await new Promise((r) => setTimeout(r, 50));
    }
    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    await until('the gap notice', () => slow.messages.some((m) => m.data.ev === 'gap'), 30_000);

    const slowHealth = service.health().clients.find((c) => c.gapped.tick > 0);
    expect(maxQueued).toBeLessThanOrEqual(300 + PROFILE.ohlcvSymbols * 4);
    expect((slowHealth?.conflated.tick ?? 0) + (slowHealth?.conflated.fmv ?? 0)).toBeGreaterThan(0);
    // Trades it did get arrive in order; the ones it missed are in the notice, not silently gone.
    const trades = slow.trades().map((m) => m.offset);
    expect(trades).toEqual([...trades].sort((a, b) => a - b));
  });

  it('with Redis down for the FMV channel, its breaker opens and ticks keep flowing to Redis and clients', async () => {
    const feed = await feedAt(120);
    const namespace = `rt-${randomUUID()}`;
    const good = await redis();
    const bus = new EventBus({ client: good, service: 'realtime-router', namespace });
    const up = streams(good, namespace);
    // Nothing listens on port 1: the FMV channel's connection never comes up.
    const service = await routerFor(feed, {
      redis: { ...up, targets: { ...up.targets, fmv: { url: 'redis://127.0.0.1:1', namespace } } },
    });
    const client = await TestClient.open(service.port, { channel: '*', symbols: '*' });

    await until('the FMV breaker open', () => service.health().sinks.fmv?.breaker === 'open');
    const ticksAtOpen = service.health().sinks.tick?.published ?? 0;
    await until(
      'ticks still published',
      () => (service.health().sinks.tick?.published ?? 0) > ticksAtOpen + 20,
    );

    const h = service.health();
    expect(h.sinks.fmv?.failures).toBeGreaterThan(0);
    expect(h.sinks.fmv?.depth).toBeGreaterThan(0);
    expect(h.sinks.tick?.breaker).toBe('closed');
    expect(await good.xLen(bus.streamKey(BUS_CHANNEL.tick))).toBeGreaterThan(ticksAtOpen);
    expect(client.messages.filter((m) => m.channel === 'fmv').length).toBeGreaterThan(0);
  });
});
