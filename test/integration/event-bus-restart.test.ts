import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHANNELS,
  EventBus,
  EventBusUnavailableError,
  StreamConsumer,
} from '../../lambdas/platform/event-bus';
import { createRedisClient, type RedisClient } from '../../lambdas/platform/redis';

/**
 * The shared local Redis keeps nothing on disk, so a restart there would lose the stream by design.
 * This test runs its own throwaway redis-server with an fsync-always append-only file, the way a
 * durable deployment is configured, and kills it with SIGKILL mid-stream.
 */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

class ThrowawayRedis {
  private process: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.process = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    // Ready when it answers PING (bounded: 200 attempts).
    for (let attempt = 0; attempt < 200; attempt++) {
      const probe = createRedisClient({ url: this.url });
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') {
          probe.destroy();
          return;
        }
      } catch {
        // not listening yet
      }
      if (probe.isOpen) probe.destroy();
      await sleep(25);
    }
    throw new Error(`throwaway redis-server on ${this.port} did not start`);
  }

  async kill(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

describe('event bus across a Redis restart', () => {
  let redis: ThrowawayRedis;
  let dir: string;
  const clients: RedisClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'evbus-redis-'));
    redis = new ThrowawayRedis(await freePort(), dir);
    await redis.start();
  });

  afterAll(async () => {
    for (const c of clients) if (c.isOpen) c.destroy();
    await redis.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('loses nothing acknowledged as published and reports every publish it could not confirm', async () => {
    // Prepare
    const namespace = `test-restart-${randomUUID()}`;
    const publisherClient = createRedisClient({ url: redis.url, maxReconnectDelayMs: 100 });
    clients.push(publisherClient);
    await publisherClient.connect();
    const bus = new EventBus({ client: publisherClient, service: 'restart-test', namespace });
    const channels = [CHANNELS.backfillProgress];
    const setupClient = createRedisClient({ url: redis.url });
    clients.push(setupClient);
    await setupClient.connect();
    await new StreamConsumer({
      client: setupClient,
      group: 'app',
      consumer: 'c',
      channels,
      namespace,
      handler: () => undefined,
    }).ensureGroups();
    setupClient.destroy();

    const confirmed: string[] = [];
    const failures: unknown[] = [];
    let restarted = false;
    let confirmedAfterRestart = 0;
    // Four concurrent publishers so some commands are in flight when the server dies.
    const worker = async (w: number) => {
      for (let i = 0; i < 20_000 && confirmedAfterRestart < 200; i++) {
        try {
          const p = await bus.publish(CHANNELS.backfillProgress, { event_type: 'progress', data: { w, i } });
          confirmed.push(p.envelope.message_id);
          if (restarted) confirmedAfterRestart++;
        } catch (error) {
          failures.push(error);
          await sleep(5);
        }
      }
    };

    // Act
    const workers = Promise.all([0, 1, 2, 3].map(worker));
    for (let i = 0; i < 2_000 && confirmed.length < 300; i++) await sleep(2);
    await redis.kill();
    const confirmedBeforeKill = confirmed.length;
    for (let i = 0; i < 2_000 && failures.length < 8; i++) await sleep(2);
    await redis.start();
    restarted = true;
    await workers;

    // Assess
    const reader = createRedisClient({ url: redis.url });
    clients.push(reader);
    await reader.connect();
    const entries = (await reader.xRange(bus.streamKey(CHANNELS.backfillProgress), '-', '+')) ?? [];
    const stored = new Set(
      entries.map((e) => (JSON.parse(e.message.envelope ?? '{}') as { message_id: string }).message_id),
    );
    const missing = confirmed.filter((id) => !stored.has(id));
    expect(confirmedBeforeKill).toBeGreaterThanOrEqual(300);
    expect(confirmedAfterRestart).toBeGreaterThanOrEqual(200);
    expect(missing).toEqual([]);
    expect(failures.length).toBeGreaterThanOrEqual(8);
    expect(failures.every((f) => f instanceof EventBusUnavailableError)).toBe(true);

    // The consumer group survived too: the offline consumer gets every stored entry exactly once.
    const delivered: string[] = [];
    const consumerClient = createRedisClient({ url: redis.url });
    clients.push(consumerClient);
    await consumerClient.connect();
    const consumer = new StreamConsumer({
      client: consumerClient,
      group: 'app',
      consumer: 'c',
      channels,
      namespace,
      count: 500,
      handler: (e) => {
        delivered.push(e.envelope.message_id);
      },
    });
    for (let round = 0; round < 100 && delivered.length < entries.length; round++) await consumer.poll(0);
    expect(delivered).toHaveLength(entries.length);
    expect(new Set(delivered).size).toBe(entries.length);
  });
});
