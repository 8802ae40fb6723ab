import { createClient, type RedisClientType } from '@redis/client';

export type RedisClient = RedisClientType;

export interface RedisOptions {
  /** redis://host:port locally; rediss://:token@host:port for ElastiCache (TLS + AUTH). */
  readonly url: string;
  /** Longest wait between reconnect attempts. */
  readonly maxReconnectDelayMs?: number;
}

/**
 * A Redis client that reconnects with capped exponential back-off. Commands issued while it is
 * disconnected fail at once (no offline queue) so a caller never believes a write happened that
 * did not: producers retry, consumers resume from their stream position.
 */
export function createRedisClient(options: RedisOptions): RedisClient {
  const maxDelay = options.maxReconnectDelayMs ?? 2_000;
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5_000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, maxDelay),
    },
  }) as RedisClient;
  // Errors surface on the commands that fail; the event keeps Node from crashing while it reconnects.
  client.on('error', () => undefined);
  return client;
}
