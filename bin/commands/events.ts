import { parseArgs } from 'node:util';
import {
  ALL_CHANNELS_PATTERN,
  channelsMatching,
  DEFAULT_NAMESPACE,
  subscribeLive,
  tailStreams,
} from '../../lambdas/platform/event-bus';
import { createRedisClient } from '../../lambdas/platform/redis';

export const summary =
  'events tail [pattern] [--from-stream] [--namespace NS]: print app messages live, one JSON line each (Ctrl-C stops)';

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'from-stream': { type: 'boolean', default: false },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE ?? DEFAULT_NAMESPACE },
    },
  });
  const [sub, pattern = ALL_CHANNELS_PATTERN] = positionals;
  if (sub !== 'tail') {
    console.error(`usage: npm run pipeline -- ${summary}`);
    return 2;
  }
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set');
  const client = createRedisClient({ url });
  await client.connect();
  const stop = new AbortController();
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => {
      stop.abort();
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  const print = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
  try {
    if (values['from-stream']) {
      const channels = channelsMatching(pattern);
      if (channels.length === 0) {
        console.error(`no channel matches ${pattern}`);
        return 2;
      }
      // Replays what the streams retain, then follows; stops within one block interval of Ctrl-C.
      await tailStreams({
        client,
        channels,
        namespace: values.namespace,
        fromId: '0',
        signal: stop.signal,
        onEvent: (e) =>
          print(
            'envelope' in e
              ? { channel: e.channel, stream_id: e.streamId, ...e.envelope }
              : { channel: e.channel, stream_id: e.streamId, invalid: e.error.message },
          ),
      });
    } else {
      const unsubscribe = await subscribeLive(
        client,
        (m) =>
          print(
            'envelope' in m
              ? { channel: m.channel, ...m.envelope }
              : { channel: m.channel, invalid: m.error.message, raw: m.raw },
          ),
        pattern,
      );
      await stopped;
      await unsubscribe();
    }
    return 0;
  } finally {
    client.destroy();
  }
}
