/**
 * Event bus benchmark on the local Redis: publish-to-receive latency over the pub/sub path and the
 * stream consumer-group path, and publish throughput. Targets (print only): p99 < 5 ms (floor 100 ms),
 * >= 20,000 messages/s (floor 1,000).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { CHANNELS, EventBus, StreamConsumer, subscribeLive } from '../../lambdas/platform/event-bus';
import { createRedisClient, type RedisClient } from '../../lambdas/platform/redis';

const MESSAGES = 10_000;
const THROUGHPUT_MESSAGES = 50_000;
const BATCH = 1_000;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function summary(label: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return `${label}: n=${s.length} mean=${mean.toFixed(3)} ms p50=${percentile(s, 50).toFixed(3)} ms p99=${percentile(s, 99).toFixed(3)} ms max=${(s.at(-1) ?? Number.NaN).toFixed(3)} ms`;
}

export async function bench(): Promise<void> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const namespace = `bench-evbus-${randomUUID()}`;
  const clients: RedisClient[] = [];
  const connect = async () => {
    const c = createRedisClient({ url });
    await c.connect();
    clients.push(c);
    return c;
  };
  const publisher = await connect();
  const bus = new EventBus({ client: publisher, service: 'bench', namespace, maxLen: 200_000 });
  const channel = CHANNELS.backfillProgress;
  try {
    // Latency: one publish at a time, both receivers listening to the same messages.
    const sentAt = new Map<string, number>();
    const pubsubLatency: number[] = [];
    const streamLatency: number[] = [];
    const unsubscribe = await subscribeLive(
      await connect(),
      (m) => {
        const t0 = 'envelope' in m ? sentAt.get(m.envelope.message_id) : undefined;
        if (t0 !== undefined) pubsubLatency.push(performance.now() - t0);
      },
      channel,
    );
    const consumer = new StreamConsumer({
      client: await connect(),
      group: 'bench',
      consumer: 'bench-1',
      channels: [channel],
      namespace,
      blockMs: 1_000,
      count: 500,
      handler: (e) => {
        const t0 = sentAt.get(e.envelope.message_id);
        if (t0 !== undefined) streamLatency.push(performance.now() - t0);
      },
    });
    await consumer.ensureGroups();
    consumer.start();
    for (let i = 0; i < MESSAGES; i++) {
      const id = randomUUID();
      sentAt.set(id, performance.now());
      await bus.publish(channel, { message_id: id, event_type: 'progress', data: { i } });
    }
    for (let i = 0; i < 500 && (streamLatency.length < MESSAGES || pubsubLatency.length < MESSAGES); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await consumer.stop();
    await unsubscribe();
    console.log(summary('event-bus latency pub/sub', pubsubLatency));
    console.log(summary('event-bus latency stream consumer group', streamLatency));

    // Throughput: concurrent publishes pipelined on one connection, in batches of BATCH.
    const t0 = performance.now();
    let failed = 0;
    for (let sent = 0; sent < THROUGHPUT_MESSAGES; sent += BATCH) {
      const results = await bus.publishAll(
        Array.from({ length: BATCH }, (_, i) => ({
          channel,
          input: { event_type: 'progress', data: { i: sent + i } },
        })),
      );
      failed += results.filter((r) => r.status === 'rejected').length;
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `event-bus publish throughput: ${Math.round(THROUGHPUT_MESSAGES / seconds)} messages/s (${THROUGHPUT_MESSAGES} in ${seconds.toFixed(2)} s, ${failed} failed)`,
    );

    // Consumer-group drain rate over the same backlog (handler does nothing; one XACK per entry).
    let drained = 0;
    const drainer = new StreamConsumer({
      client: await connect(),
      group: 'bench-drain',
      consumer: 'd-1',
      channels: [channel],
      namespace,
      startId: '0',
      count: 1_000,
      handler: () => undefined,
    });
    const d0 = performance.now();
    for (let round = 0; round < 1_000; round++) {
      const n = await drainer.poll(0);
      drained += n;
      if (n === 0) break;
    }
    const dSeconds = (performance.now() - d0) / 1000;
    console.log(
      `event-bus consumer drain: ${Math.round(drained / dSeconds)} messages/s (${drained} in ${dSeconds.toFixed(2)} s)`,
    );
  } finally {
    const keys = await publisher.keys(`${namespace}:*`);
    if (keys.length > 0) await publisher.del(keys);
    for (const c of clients) if (c.isOpen) c.destroy();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await bench();
