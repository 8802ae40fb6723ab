import { randomUUID } from 'node:crypto';
import { ErrorReply } from '@redis/client';
import type { RedisClient } from '../redis';
import type { Channel } from './channels';
import { buildEnvelope, type Envelope, type EnvelopeInput } from './envelope';
import { EventBusUnavailableError } from './errors';
import { DEFAULT_NAMESPACE, streamKey } from './keys';

export interface EventBusOptions {
  /** A connected client (createRedisClient): no offline queue, so an outage surfaces at once. */
  readonly client: RedisClient;
  /** Default `service` field of envelopes this bus publishes. */
  readonly service: string;
  /** Stream key prefix; tests use a unique one. Default 'tickstock'. */
  readonly namespace?: string;
  /** Approximate cap per channel stream (XADD MAXLEN ~). Default 100,000. */
  readonly maxLen?: number;
}

export type PublishInput = Omit<EnvelopeInput, 'service'> & { readonly service?: string };

export interface Published {
  readonly channel: Channel;
  readonly streamKey: string;
  /** Stream entry id: where a consumer group will find it. */
  readonly streamId: string;
  /** Live pub/sub subscribers that received it (0 is normal: the stream keeps it). */
  readonly subscribers: number;
  readonly envelope: Envelope;
}

export const DEFAULT_MAX_LEN = 100_000;

/** What z.uuid() accepts (RFC 9562 layout, any version/variant digit as zod's default regex). */
const UUID =
  /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/;

/**
 * Publishes to the app: stream entry first (durable, catch-up for offline consumers), then pub/sub
 * (live), in one MULTI/EXEC so both happen or neither. A publish resolves only after Redis has
 * confirmed both; anything else rejects with EventBusUnavailableError and the caller retries.
 */
export class EventBus {
  readonly namespace: string;
  readonly maxLen: number;
  private readonly client: RedisClient;
  private readonly service: string;

  constructor(options: EventBusOptions) {
    this.client = options.client;
    this.service = options.service;
    this.namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.maxLen = options.maxLen ?? DEFAULT_MAX_LEN;
    if (!Number.isInteger(this.maxLen) || this.maxLen < 1) {
      throw new RangeError(`maxLen must be a positive integer, got ${options.maxLen}`);
    }
  }

  streamKey(channel: Channel): string {
    return streamKey(channel, this.namespace);
  }

  async publish(channel: Channel, input: PublishInput): Promise<Published> {
    // Validation errors are the caller's bug, not an outage: they propagate as InvalidEnvelopeError.
    const envelope = buildEnvelope(channel, { ...input, service: input.service ?? this.service });
    const key = this.streamKey(channel);
    const text = JSON.stringify(envelope);
    let replies: unknown[];
    try {
      replies = (await this.client
        .multi()
        .xAdd(
          key,
          '*',
          { channel, envelope: text },
          { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: this.maxLen } },
        )
        .publish(channel, text)
        .exec()) as unknown[];
    } catch (error) {
      throw new EventBusUnavailableError(
        `publish to ${channel} not confirmed by Redis (${describe(error)}); retry with message_id ${envelope.message_id}`,
        { cause: error },
      );
    }
    const [streamId, subscribers] = replies;
    if (typeof streamId !== 'string' || typeof subscribers !== 'number') {
      throw new EventBusUnavailableError(`unexpected MULTI reply publishing to ${channel}`);
    }
    return { channel, streamKey: key, streamId, subscribers, envelope };
  }

  /**
   * Publishes a batch to one channel in ONE MULTI/EXEC (one round trip, one transaction): every
   * message's stream entry (XADD, MAXLEN ~ as `publish`) then its pub/sub publish, in the given order,
   * so the stream holds them in that order. All or none: a failure rejects the whole batch with
   * EventBusUnavailableError and the caller retries it whole (same message_ids, so consumers can drop
   * a repeat). Resolves with one result per input, in order. For high-rate producers (the real-time
   * router): N single publishes are N transactions and N round trips.
   */
  async publishBatch(channel: Channel, inputs: readonly PublishInput[]): Promise<Published[]> {
    if (inputs.length === 0) return [];
    const key = this.streamKey(channel);
    // One timestamp for the batch (one transaction). The first envelope is validated in full; the
    // rest share its channel, service and timestamp, so each needs only its own fields checked (the
    // schema's rules, without a schema parse per message: this is the router's per-tick path).
    const timestamp = new Date().toISOString();
    const first = inputs[0] as PublishInput;
    const head = buildEnvelope(channel, { ...first, service: first.service ?? this.service, timestamp });
    const envelopes: Envelope[] = [head];
    for (let k = 1; k < inputs.length; k += 1) {
      const input = inputs[k] as PublishInput;
      if (
        (input.service ?? this.service) !== (first.service ?? this.service) ||
        input.timestamp !== undefined
      ) {
        envelopes.push(
          buildEnvelope(channel, { ...input, service: input.service ?? this.service, timestamp }),
        );
        continue;
      }
      const message_id = input.message_id ?? randomUUID();
      if (
        !UUID.test(message_id) ||
        typeof input.event_type !== 'string' ||
        input.event_type.length === 0 ||
        typeof input.data !== 'object' ||
        input.data === null ||
        Array.isArray(input.data) ||
        (input.severity === undefined) !== (head.severity === undefined)
      ) {
        // Not the fast shape: the full validation reports exactly what is wrong.
        envelopes.push(
          buildEnvelope(channel, { ...input, service: input.service ?? this.service, timestamp }),
        );
        continue;
      }
      envelopes.push({
        message_id,
        timestamp,
        service: head.service,
        event_type: input.event_type,
        data: input.data,
        ...(input.severity === undefined ? {} : { severity: input.severity }),
      });
    }
    const multi = this.client.multi();
    // The same commands as `publish` (XADD ... MAXLEN ~ n * channel <c> envelope <text>; PUBLISH), as
    // raw arguments: node-redis's per-command argument builders cost more than the rest of a batch.
    const maxLen = String(this.maxLen);
    for (const envelope of envelopes) {
      const text = JSON.stringify(envelope);
      multi.addCommand(['XADD', key, 'MAXLEN', '~', maxLen, '*', 'channel', channel, 'envelope', text]);
      multi.addCommand(['PUBLISH', channel, text]);
    }
    let replies: unknown[];
    try {
      replies = (await multi.exec()) as unknown[];
    } catch (error) {
      throw new EventBusUnavailableError(
        `batch of ${inputs.length} to ${channel} not confirmed by Redis (${describe(error)}); retry it (same message_ids)`,
        { cause: error },
      );
    }
    if (replies.length !== envelopes.length * 2) {
      throw new EventBusUnavailableError(`unexpected MULTI reply publishing a batch to ${channel}`);
    }
    return envelopes.map((envelope, k) => {
      const streamId = replies[2 * k];
      const subscribers = replies[2 * k + 1];
      if (typeof streamId !== 'string' || typeof subscribers !== 'number') {
        throw new EventBusUnavailableError(`unexpected MULTI reply publishing a batch to ${channel}`);
      }
      return { channel, streamKey: key, streamId, subscribers, envelope };
    });
  }

  /**
   * Publishes many messages concurrently; node-redis pipelines them on the one connection. Resolves
   * with one result per input, in order; each failure is an EventBusUnavailableError (or
   * InvalidEnvelopeError) in its slot so the caller can retry exactly the failed ones.
   */
  async publishAll(
    messages: readonly { readonly channel: Channel; readonly input: PublishInput }[],
  ): Promise<PromiseSettledResult<Published>[]> {
    return Promise.allSettled(messages.map((m) => this.publish(m.channel, m.input)));
  }
}

function describe(error: unknown): string {
  if (error instanceof ErrorReply) return `server error: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
