import type { RedisClient } from '../redis';
import { ALL_CHANNELS_PATTERN } from './channels';
import { decodeEnvelope, type Envelope } from './envelope';
import { InvalidEnvelopeError } from './errors';

export type LiveMessage =
  | { readonly channel: string; readonly raw: string; readonly envelope: Envelope }
  | { readonly channel: string; readonly raw: string; readonly error: InvalidEnvelopeError };

/**
 * Live pub/sub listener (PSUBSCRIBE). Pub/sub drops whatever arrives while disconnected; consumers
 * that must not miss messages read the streams (StreamConsumer). The client becomes a subscriber
 * connection, so pass a dedicated one. Returns a function that unsubscribes.
 */
export async function subscribeLive(
  client: RedisClient,
  listener: (message: LiveMessage) => void,
  pattern: string = ALL_CHANNELS_PATTERN,
): Promise<() => Promise<void>> {
  await client.pSubscribe(pattern, (raw, channel) => {
    try {
      listener({ channel, raw, envelope: decodeEnvelope(channel, raw) });
    } catch (error) {
      if (!(error instanceof InvalidEnvelopeError)) throw error;
      listener({ channel, raw, error });
    }
  });
  return () => client.pUnsubscribe(pattern);
}
