/**
 * Outbox delivery for the market jobs: app messages through the event bus (stream + pub/sub),
 * jobs onto SQS. Shared by the IPO scan, backfill and equity-processing handlers and the CLI.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type Channel, type EventBus, SeveritySchema } from './event-bus';
import type { OutboxTransport, PendingMessage } from './outbox';
import type { RedisClient } from './redis';

export interface TransportOptions {
  readonly bus: EventBus;
  /** The bus's connection, used to look for a message in its stream. */
  readonly redis: RedisClient;
  readonly sqs: SQSClient;
  /** Queue URL of a consumer id of lib/topology.ts (platform queueUrl in handlers; a test queue in tests). */
  readonly queueUrl: (queue: string) => Promise<string>;
  /** How far back in a stream to look for a message an earlier attempt may have published. */
  readonly lookback?: number;
}

export function outboxTransport(options: TransportOptions): OutboxTransport {
  const lookback = options.lookback ?? 5_000;
  return {
    async publish(channel: Channel, message: PendingMessage): Promise<void> {
      // Alert channels require an envelope severity; an alert's payload carries it (data.severity).
      const severity = SeveritySchema.safeParse(message.payload.severity);
      await options.bus.publish(channel, {
        ...(severity.success ? { severity: severity.data } : {}),
        event_type: message.eventType,
        data: message.payload,
        message_id: message.messageId,
        timestamp: message.createdAt,
      });
    },
    async alreadyPublished(channel: Channel, messageId: string): Promise<boolean> {
      // Newest first: a crashed attempt is recent. The stream is capped, so this is bounded.
      const reply = await options.redis.sendCommand([
        'XREVRANGE',
        options.bus.streamKey(channel),
        '+',
        '-',
        'COUNT',
        String(lookback),
      ]);
      if (!Array.isArray(reply)) return false;
      const needle = `"message_id":"${messageId}"`;
      return reply.some(
        (entry) =>
          Array.isArray(entry) &&
          Array.isArray(entry[1]) &&
          (entry[1] as unknown[]).some((v) => typeof v === 'string' && v.includes(needle)),
      );
    },
    async sendToQueue(queue: string, message: PendingMessage): Promise<void> {
      await options.sqs.send(
        new SendMessageCommand({
          QueueUrl: await options.queueUrl(queue),
          MessageBody: JSON.stringify(message.payload),
          MessageAttributes: {
            message_id: { DataType: 'String', StringValue: message.messageId },
            event_type: { DataType: 'String', StringValue: message.eventType },
          },
        }),
      );
    },
  };
}
