import type { Channel } from './channels';

export const DEFAULT_NAMESPACE = 'tickstock';

/**
 * One stream per channel, so a consumer can follow only the channels it cares about and trimming of
 * a chatty channel (backfill.progress) never evicts a rare one (eod.completed). The namespace keeps
 * parallel test runs (and stages sharing a Redis) apart; pub/sub channel names are never prefixed.
 */
export function streamKey(channel: Channel, namespace: string = DEFAULT_NAMESPACE): string {
  return `${namespace}:events:${channel}`;
}

export function channelOfStreamKey(key: string, namespace: string = DEFAULT_NAMESPACE): string {
  const prefix = `${namespace}:events:`;
  return key.startsWith(prefix) ? key.slice(prefix.length) : key;
}

/** The namespace's Redis epoch (see StreamConsumer.epoch): a random id, lost with Redis's data. */
export function epochKey(namespace: string = DEFAULT_NAMESPACE): string {
  return `${namespace}:epoch`;
}
