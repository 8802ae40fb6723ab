import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorReply } from '@redis/client';
import type { RedisClient } from '../redis';
import { ALL_CHANNELS, type Channel } from './channels';
import { decodeEnvelope, type Envelope } from './envelope';
import { InvalidEnvelopeError } from './errors';
import { DEFAULT_NAMESPACE, streamKey } from './keys';
import { fieldValue, parseEntries, parseStreams, type RawEntry, StreamReplyError } from './stream-reply';

export interface DeliveredEvent {
  readonly channel: Channel;
  readonly streamKey: string;
  readonly streamId: string;
  readonly envelope: Envelope;
  /**
   * True when the entry had been delivered before (own pending list after a restart, or claimed from
   * a crashed consumer): the handler may already have acted on it, so it should be idempotent on
   * envelope.message_id.
   */
  readonly redelivered: boolean;
}

export interface StreamConsumerOptions {
  /** A dedicated client: XREADGROUP BLOCK holds its connection for up to blockMs. */
  readonly client: RedisClient;
  readonly group: string;
  /** Unique per running process; a restarted process reusing its name gets its own pending list back. */
  readonly consumer: string;
  readonly channels?: readonly Channel[];
  readonly namespace?: string;
  /** Where a newly created group starts: '$' only messages after creation, '0' all retained ones. */
  readonly startId?: string;
  readonly blockMs?: number;
  readonly count?: number;
  /** Entries pending this long on another consumer are presumed abandoned and claimed (XAUTOCLAIM). */
  readonly claimMinIdleMs?: number;
  readonly claimIntervalMs?: number;
  readonly maxBackoffMs?: number;
  readonly handler: (event: DeliveredEvent) => Promise<void> | void;
  /** An entry that can never be handled (not an envelope); it is acknowledged so it cannot block the group. */
  readonly onInvalid?: (info: { streamKey: string; streamId: string; error: InvalidEnvelopeError }) => void;
  /** Handler failures (entry stays pending, claimed again later) and connection errors (loop backs off). */
  readonly onError?: (error: unknown) => void;
}

/**
 * Consumer-group reader: at-least-once delivery, once per group in normal operation (each entry goes
 * to one consumer of the group and is acknowledged after its handler succeeds). A crashed consumer's
 * unacknowledged entries are claimed by another after claimMinIdleMs.
 */
export class StreamConsumer {
  readonly keys: readonly string[];
  private readonly channelByKey: ReadonlyMap<string, Channel>;
  private readonly opts: Required<
    Pick<
      StreamConsumerOptions,
      'startId' | 'blockMs' | 'count' | 'claimMinIdleMs' | 'claimIntervalMs' | 'maxBackoffMs'
    >
  >;
  private running = false;
  private loop: Promise<void> | undefined;
  private recovered = false;
  private nextClaimAt = 0;

  constructor(private readonly options: StreamConsumerOptions) {
    const namespace = options.namespace ?? DEFAULT_NAMESPACE;
    const channels = options.channels ?? ALL_CHANNELS;
    if (channels.length === 0) throw new RangeError('a consumer needs at least one channel');
    this.channelByKey = new Map(channels.map((c) => [streamKey(c, namespace), c]));
    this.keys = [...this.channelByKey.keys()];
    const claimMinIdleMs = options.claimMinIdleMs ?? 30_000;
    this.opts = {
      startId: options.startId ?? '$',
      blockMs: options.blockMs ?? 2_000,
      count: options.count ?? 100,
      claimMinIdleMs,
      claimIntervalMs: options.claimIntervalMs ?? claimMinIdleMs,
      maxBackoffMs: options.maxBackoffMs ?? 2_000,
    };
  }

  /** Creates the group on every stream (MKSTREAM); existing groups keep their position. */
  async ensureGroups(): Promise<void> {
    for (const key of this.keys) {
      try {
        await this.options.client.sendCommand([
          'XGROUP',
          'CREATE',
          key,
          this.options.group,
          this.opts.startId,
          'MKSTREAM',
        ]);
      } catch (error) {
        if (!(error instanceof ErrorReply && error.message.startsWith('BUSYGROUP'))) throw error;
      }
    }
  }

  /** Re-reads this consumer's own unacknowledged entries (what it held when it last stopped). */
  async readOwnPending(): Promise<number> {
    let handled = 0;
    const cursors = new Map(this.keys.map((k) => [k, '0-0']));
    while (cursors.size > 0) {
      const keys = [...cursors.keys()];
      const reply = await this.options.client.sendCommand([
        'XREADGROUP',
        'GROUP',
        this.options.group,
        this.options.consumer,
        'COUNT',
        String(this.opts.count),
        'STREAMS',
        ...keys,
        ...keys.map((k) => cursors.get(k) ?? '0-0'),
      ]);
      const batches = parseStreams(reply);
      for (const key of keys) {
        const entries = batches.get(key) ?? [];
        const last = entries.at(-1);
        if (entries.length === 0 || !last) {
          cursors.delete(key);
          continue;
        }
        // Advance past what we saw even if a handler failed, so one bad entry cannot loop us here.
        cursors.set(key, last[0]);
        handled += await this.handleEntries(key, entries, true);
      }
    }
    return handled;
  }

  /** Claims entries idle for claimMinIdleMs on any consumer of the group and handles them. */
  async claimIdle(): Promise<number> {
    let handled = 0;
    for (const key of this.keys) {
      let cursor = '0-0';
      // Each XAUTOCLAIM call scans a bounded slice of the pending list; the cursor wraps to 0-0 at the end.
      for (let round = 0; round < 10_000; round++) {
        const reply = await this.options.client.sendCommand([
          'XAUTOCLAIM',
          key,
          this.options.group,
          this.options.consumer,
          String(this.opts.claimMinIdleMs),
          cursor,
          'COUNT',
          String(this.opts.count),
        ]);
        if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) {
          throw new StreamReplyError('unexpected XAUTOCLAIM reply');
        }
        handled += await this.handleEntries(key, parseEntries(reply[1]), true);
        cursor = reply[0];
        if (cursor === '0-0') break;
      }
    }
    return handled;
  }

  /** Reads entries never delivered to this group, blocking up to blockMs when there are none. */
  async readNew(blockMs: number = this.opts.blockMs): Promise<number> {
    const reply = await this.options.client.sendCommand([
      'XREADGROUP',
      'GROUP',
      this.options.group,
      this.options.consumer,
      'COUNT',
      String(this.opts.count),
      ...(blockMs > 0 ? ['BLOCK', String(blockMs)] : []),
      'STREAMS',
      ...this.keys,
      ...this.keys.map(() => '>'),
    ]);
    let handled = 0;
    for (const [key, entries] of parseStreams(reply)) {
      handled += await this.handleEntries(key, entries, false);
    }
    return handled;
  }

  /**
   * One round: on the first call (and after a connection error) create groups and re-read own
   * pending entries; claim abandoned entries when due; then read new ones. Returns entries handled.
   */
  async poll(blockMs: number = this.opts.blockMs): Promise<number> {
    let handled = 0;
    if (!this.recovered) {
      await this.ensureGroups();
      handled += await this.readOwnPending();
      this.recovered = true;
    }
    if (Date.now() >= this.nextClaimAt) {
      handled += await this.claimIdle();
      this.nextClaimAt = Date.now() + this.opts.claimIntervalMs;
    }
    handled += await this.readNew(blockMs);
    return handled;
  }

  /** Polls until stop(); connection errors back off (capped, jittered) and never end the loop. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.runLoop();
  }

  /** Stops after the current blocking read returns (at most blockMs). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.loop = undefined;
  }

  private async runLoop(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        await this.poll();
        failures = 0;
      } catch (error) {
        if (!this.running) break;
        this.options.onError?.(error);
        // After an outage the group may be gone (Redis without persistence) and pending entries may
        // have been redelivered: redo recovery on the next round.
        this.recovered = false;
        failures++;
        const delay = Math.min(50 * 2 ** failures, this.opts.maxBackoffMs);
        await sleep(delay / 2 + Math.random() * (delay / 2));
      }
    }
  }

  private async handleEntries(
    key: string,
    entries: readonly RawEntry[],
    redelivered: boolean,
  ): Promise<number> {
    const channel = this.channelByKey.get(key);
    if (!channel) throw new StreamReplyError(`reply for a stream this consumer does not read: ${key}`);
    let handled = 0;
    // Each ack is sent as soon as its handler succeeds but not awaited one by one: node-redis
    // pipelines them, so a slow round trip never holds up the next handler. A failed ack leaves the
    // entry pending (redelivered later): still at-least-once.
    const acks: Promise<void>[] = [];
    const ack = (id: string) => {
      const p = this.ack(key, id);
      p.catch(() => undefined); // surfaced by Promise.all below; avoid an unhandled-rejection crash meanwhile
      acks.push(p);
    };
    for (const [id, fields] of entries) {
      // A pending entry trimmed away by MAXLEN has no fields: nothing left to deliver, just release it.
      if (fields === null) {
        ack(id);
        continue;
      }
      let envelope: Envelope;
      try {
        envelope = decodeEnvelope(channel, fieldValue(fields, 'envelope') ?? '');
      } catch (error) {
        if (!(error instanceof InvalidEnvelopeError)) throw error;
        this.options.onInvalid?.({ streamKey: key, streamId: id, error });
        ack(id);
        continue;
      }
      try {
        await this.options.handler({ channel, streamKey: key, streamId: id, envelope, redelivered });
      } catch (error) {
        // Left pending: claimed again (by this or another consumer) after claimMinIdleMs.
        this.options.onError?.(error);
        continue;
      }
      ack(id);
      handled++;
    }
    await Promise.all(acks);
    return handled;
  }

  private async ack(key: string, id: string): Promise<void> {
    await this.options.client.sendCommand(['XACK', key, this.options.group, id]);
  }
}
