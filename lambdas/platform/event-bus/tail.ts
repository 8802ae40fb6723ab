import type { RedisClient } from '../redis';
import { ALL_CHANNELS, type Channel } from './channels';
import { decodeEnvelope, type Envelope } from './envelope';
import { InvalidEnvelopeError } from './errors';
import { DEFAULT_NAMESPACE, streamKey } from './keys';
import { fieldValue, parseStreams } from './stream-reply';

/** Channels whose names match a Redis glob pattern (*, ?), as PSUBSCRIBE would select them. */
export function channelsMatching(pattern: string): Channel[] {
  const regex = new RegExp(
    `^${pattern
      .split('')
      .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  return ALL_CHANNELS.filter((c) => regex.test(c));
}

export interface StreamTailOptions {
  /** Dedicated client: XREAD BLOCK holds the connection. */
  readonly client: RedisClient;
  readonly channels: readonly Channel[];
  readonly namespace?: string;
  /** '0' replays what the streams retain, '$' only new entries. */
  readonly fromId?: string;
  readonly blockMs?: number;
  readonly signal: AbortSignal;
  readonly onEvent: (
    event:
      | { channel: Channel; streamId: string; envelope: Envelope }
      | { channel: Channel; streamId: string; error: InvalidEnvelopeError },
  ) => void;
}

/**
 * Reads the channel streams without a consumer group (no acknowledgements, nothing pending): for
 * people watching, not for consumers that must process every message once.
 */
export async function tailStreams(options: StreamTailOptions): Promise<void> {
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const channelByKey = new Map(options.channels.map((c) => [streamKey(c, namespace), c]));
  const cursors = new Map([...channelByKey.keys()].map((k) => [k, options.fromId ?? '$']));
  while (!options.signal.aborted) {
    const keys = [...cursors.keys()];
    const reply = await options.client.sendCommand([
      'XREAD',
      'COUNT',
      '500',
      'BLOCK',
      String(options.blockMs ?? 1_000),
      'STREAMS',
      ...keys,
      ...keys.map((k) => cursors.get(k) ?? '$'),
    ]);
    for (const [key, entries] of parseStreams(reply)) {
      const channel = channelByKey.get(key);
      if (!channel) continue;
      for (const [id, fields] of entries) {
        cursors.set(key, id);
        if (!fields) continue;
        try {
          options.onEvent({
            channel,
            streamId: id,
            envelope: decodeEnvelope(channel, fieldValue(fields, 'envelope') ?? ''),
          });
        } catch (error) {
          if (!(error instanceof InvalidEnvelopeError)) throw error;
          options.onEvent({ channel, streamId: id, error });
        }
      }
    }
  }
}
