import {
  ALL_CHANNELS,
  ALL_CHANNELS_PATTERN,
  channelsMatching,
  DEFAULT_NAMESPACE,
  subscribeLive,
  tailStreams,
} from '../../lambdas/platform/event-bus';
import { createRedisClient } from '../../lambdas/platform/redis';
import { EXIT, oneOf, parseCommandArgs, UsageError } from '../../lib/cli/args';

export const summary =
  'events tail [pattern] [--from-stream] [--namespace NS] [--json]: print app messages live, one line each (Ctrl-C stops)';

const USAGE = `usage: npm run pipeline -- ${summary}
  pattern        a channel or a glob over channels (default ${ALL_CHANNELS_PATTERN}), e.g. 'tickstock.quality.*'
  --from-stream  replay what the durable streams retain, then follow (default: live pub/sub only)
  --json         one JSON object per line (channel, stream_id, envelope fields) instead of the table lines`;

/** One message as printed: the JSON form (--json) is the object, the human form one aligned line. */
export type TailLine = Record<string, unknown> & { channel: string };

/** `HH:MM:SS.mmm  channel  service/event_type  severity  data` on one line (data cut at 160 characters). */
export function humanLine(line: TailLine): string {
  const time = typeof line.timestamp === 'string' ? line.timestamp.slice(11, 23) : '--:--:--.---';
  const channel = line.channel.replace(/^tickstock\./, '');
  if ('invalid' in line) return `${time}  ${channel.padEnd(30)}  INVALID  ${String(line.invalid)}`;
  const what = `${String(line.service ?? '?')}/${String(line.event_type ?? '?')}`;
  const severity = typeof line.severity === 'string' ? `${line.severity}  ` : '';
  const data = JSON.stringify(line.data ?? {});
  return `${time}  ${channel.padEnd(30)}  ${what.padEnd(32)}  ${severity}${data.length > 160 ? `${data.slice(0, 159)}…` : data}`;
}

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseCommandArgs(args, {
    allowPositionals: true,
    options: {
      'from-stream': { type: 'boolean', default: false },
      namespace: { type: 'string', default: process.env.EVENT_BUS_NAMESPACE ?? DEFAULT_NAMESPACE },
    },
    usage: USAGE,
  });
  const [sub, pattern = ALL_CHANNELS_PATTERN, extra] = positionals;
  oneOf('events action', sub, ['tail'] as const);
  if (extra !== undefined) throw new UsageError(`unexpected argument '${extra}': one pattern at most`, USAGE);
  const channels = channelsMatching(pattern);
  if (channels.length === 0) {
    throw new UsageError(
      `pattern '${pattern}' matches no channel: use ${ALL_CHANNELS_PATTERN}, a glob such as 'tickstock.quality.*' or one of ${ALL_CHANNELS.join(', ')}`,
      USAGE,
    );
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
  const print = (line: TailLine) =>
    process.stdout.write(`${values.json ? JSON.stringify(line) : humanLine(line)}\n`);
  console.error(
    `following ${channels.length} channel(s) matching ${pattern}${values['from-stream'] ? ` (streams, namespace ${values.namespace}, from the oldest retained)` : ' (live)'}; Ctrl-C stops`,
  );
  try {
    if (values['from-stream']) {
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
    return EXIT.ok;
  } finally {
    client.destroy();
  }
}
