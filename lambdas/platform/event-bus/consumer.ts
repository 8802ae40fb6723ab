import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorReply, MultiErrorReply } from '@redis/client';
import type { RedisClient } from '../redis';
import { ALL_CHANNELS, type Channel } from './channels';
import { decodeEnvelope, type Envelope } from './envelope';
import { InvalidEnvelopeError } from './errors';
import { parsePosition, type StreamGap, StreamGapError, trimmedEntries } from './gaps';
import { DEFAULT_NAMESPACE, epochKey, streamKey } from './keys';
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
  /**
   * Told when the group missed entries (trimmed at the length cap before it read them) or the
   * streams' history was lost (a new Redis epoch): the app resynchronises that channel from the
   * database. Called before the entries that follow the gap are handled; if it throws, the gap is
   * offered again on the next round. Without it, gaps go to onError as StreamGapError.
   */
  readonly onGap?: (gap: StreamGap) => Promise<void> | void;
  /**
   * The Redis epoch the app last read in (persisted by the app with its state, from `epoch`): when
   * Redis comes back with another one, every channel gets a `reset` gap.
   */
  readonly epoch?: string;
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
  private currentEpoch: string | null = null;
  /** Streams whose group this process has seen: a group that has to be created again was lost. */
  private readonly groupsSeen = new Set<string>();
  /** Reset gaps not yet taken by onGap. */
  private readonly resets = new Map<string, StreamGap>();
  /** The last trim gap told per stream: an emptied stream must not repeat it every round. */
  private readonly told = new Map<string, string>();
  private readonly namespace: string;

  constructor(private readonly options: StreamConsumerOptions) {
    const namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.namespace = namespace;
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

  /**
   * The Redis epoch this consumer reads in: a random id stored once per namespace, gone with the
   * data when Redis loses it. The app persists it with its state and passes it back as `epoch`.
   */
  get epoch(): string | null {
    return this.currentEpoch;
  }

  /**
   * Creates the group on every stream (MKSTREAM); existing groups keep their position. A changed
   * epoch, or a group this process had that must be created again, is a `reset` gap.
   */
  async ensureGroups(): Promise<void> {
    const key = epochKey(this.namespace);
    await this.options.client.sendCommand(['SET', key, randomUUID(), 'NX']);
    const epoch = (await this.options.client.sendCommand(['GET', key])) as string | null;
    const previous = this.currentEpoch ?? this.options.epoch ?? null;
    this.currentEpoch = epoch;
    const epochChanged = previous !== null && previous !== epoch;
    for (const key of this.keys) {
      let created = true;
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
        created = false;
      }
      if (epochChanged || (created && this.groupsSeen.has(key))) {
        this.resets.set(key, {
          kind: 'reset',
          channel: this.channelByKey.get(key) as string,
          streamKey: key,
          group: this.options.group,
          afterId: '0-0',
          resumeId: null,
          lost: null,
          epoch,
          previousEpoch: previous,
        });
      }
      this.groupsSeen.add(key);
    }
  }

  /** Offers queued reset gaps to onGap; one that fails stays queued and the round fails. */
  private async deliverResets(): Promise<void> {
    for (const [key, gap] of this.resets) {
      await this.tellGap(gap);
      this.resets.delete(key);
    }
  }

  private async tellGap(gap: StreamGap): Promise<void> {
    if (this.options.onGap) await this.options.onGap(gap);
    else this.options.onError?.(new StreamGapError(gap));
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

  /**
   * Reads entries never delivered to this group, waiting up to blockMs when there are none. Each
   * read checks for a gap in the same MULTI (see gaps.ts), so a trim cannot slip in between.
   */
  async readNew(blockMs: number = this.opts.blockMs): Promise<number> {
    const first = await this.readChecked();
    if (first.handled > 0 || first.read > 0 || blockMs <= 0) return first.handled;
    // Nothing new: wait for an entry after the group's positions without taking it (XREAD does not
    // move the group), then take it with the check.
    await this.options.client.sendCommand([
      'XREAD',
      'COUNT',
      '1',
      'BLOCK',
      String(blockMs),
      'STREAMS',
      ...this.keys,
      ...this.keys.map((k) => first.positions.get(k) ?? '$'),
    ]);
    return (await this.readChecked()).handled;
  }

  /** One MULTI: each stream's and group's position, then XREADGROUP (not blocking). */
  private async readChecked(): Promise<{ handled: number; read: number; positions: Map<string, string> }> {
    const multi = this.options.client.multi();
    // The epoch first: a new one (set by an operator after a restore, or Redis lost its data and a
    // publisher's consumer created it) sends this consumer through recovery, which reports it.
    multi.addCommand(['GET', epochKey(this.namespace)]);
    for (const key of this.keys) {
      multi.addCommand(['XINFO', 'STREAM', key]);
      multi.addCommand(['XINFO', 'GROUPS', key]);
    }
    multi.addCommand([
      'XREADGROUP',
      'GROUP',
      this.options.group,
      this.options.consumer,
      'COUNT',
      String(this.opts.count),
      'STREAMS',
      ...this.keys,
      ...this.keys.map(() => '>'),
    ]);
    let replies: unknown[];
    try {
      replies = (await multi.exec()) as unknown[];
    } catch (error) {
      // A stream or group that vanished (Redis lost its data): recover (and report) next round.
      if (
        error instanceof MultiErrorReply &&
        [...error.errors()].some((e) => /no such key|NOGROUP/.test(e.message))
      ) {
        this.recovered = false;
        return { handled: 0, read: 0, positions: new Map() };
      }
      throw error;
    }
    const epoch = replies.shift() as string | null;
    if (epoch !== this.currentEpoch) this.recovered = false;
    const batches = parseStreams(replies.at(-1));
    const positions = new Map<string, string>();
    let handled = 0;
    let read = 0;
    for (const [i, key] of this.keys.entries()) {
      const position = parsePosition(replies[2 * i], replies[2 * i + 1], this.options.group);
      if (!position) {
        this.recovered = false;
        continue;
      }
      positions.set(key, position.lastDeliveredId);
      const entries = batches.get(key) ?? [];
      read += entries.length;
      const trimmed = trimmedEntries(position);
      const mark = `${position.lastDeliveredId}/${position.entriesAdded}`;
      if (trimmed && this.told.get(key) !== mark) {
        const gap: StreamGap = {
          kind: 'trimmed',
          channel: this.channelByKey.get(key) as string,
          streamKey: key,
          group: this.options.group,
          afterId: position.lastDeliveredId,
          resumeId: position.firstId,
          lost: trimmed.lost,
          epoch: this.currentEpoch,
          previousEpoch: null,
        };
        try {
          await this.tellGap(gap);
        } catch (error) {
          // Put the group back where it was, so the gap is found (and offered) again next round;
          // the entries read with it are delivered again then.
          this.options.onError?.(error);
          await this.options.client.sendCommand([
            'XGROUP',
            'SETID',
            key,
            this.options.group,
            position.lastDeliveredId,
            ...(position.entriesRead === null ? [] : ['ENTRIESREAD', String(position.entriesRead)]),
          ]);
          continue;
        }
        this.told.set(key, mark);
      }
      handled += await this.handleEntries(key, entries, false);
    }
    return { handled, read, positions };
  }

  /**
   * One round: on the first call (and after a connection error) create groups and re-read own
   * pending entries; claim abandoned entries when due; then read new ones. Returns entries handled.
   */
  async poll(blockMs: number = this.opts.blockMs): Promise<number> {
    let handled = await this.recover();
    if (Date.now() >= this.nextClaimAt) {
      handled += await this.claimIdle();
      this.nextClaimAt = Date.now() + this.opts.claimIntervalMs;
    }
    handled += await this.readNew(blockMs);
    // A stream or group found missing by the read (Redis lost its data): recover and report now.
    if (!this.recovered) handled += (await this.recover()) + (await this.readNew(0));
    return handled;
  }

  /** Groups, own pending entries and reset gaps, when due (first round, after an error). */
  private async recover(): Promise<number> {
    let handled = 0;
    if (!this.recovered) {
      await this.ensureGroups();
      handled += await this.readOwnPending();
      this.recovered = true;
    }
    await this.deliverResets();
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
