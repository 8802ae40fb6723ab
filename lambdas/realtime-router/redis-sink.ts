/**
 * One channel's egress to the app's Redis Stream through the event bus, behind its own circuit
 * breaker and bounded buffer: Redis failing (or slow) for one channel never stalls the router core
 * or the other channels. Messages stay buffered while the breaker is open and go out when it closes;
 * only when the buffer is full (by count or by bytes) is the oldest dropped, and that is counted
 * (`dropped`) and announced in the stream itself by a `gap` entry (`{"ev":"gap","missed","from","to"}`
 * offsets) where they were lost, never silent. The batch in flight is out of the buffer, so an
 * overflow never drops it. What is buffered goes out in batches (up to `batch` messages, offset
 * order), each one MULTI on the channel's connection (EventBus.publishBatch): at the 10x surge one
 * transaction per message was the sink's whole cost.
 *
 * The buffer holds each message as one line of text (`sinkLine`: offset, event type, the client wire
 * text), not as objects: the backlog of a starved sink was the router's largest live set. The
 * envelope is built from the line when its batch is sent. In the router process the sinks run on a
 * worker thread (`redis-sink-worker.ts`, `RedisSinks`), so their serialisation, Redis client and
 * garbage never hold up the event loop that routes ticks.
 */
import { createHash } from 'node:crypto';
import { BoundedQueue } from '../market/realtime/queue';
import { type RouterChannel, type SequencedMessage, wireText } from '../market/realtime/types';
import { CHANNELS, type Channel, type EventBus, type PublishInput } from '../platform/event-bus';
import { SendLoop } from './send-loop';
import type { SinkHealth } from './sink-health';

export const BUS_CHANNEL: Record<RouterChannel, Channel> = {
  tick: CHANNELS.realtimeTick,
  event: CHANNELS.realtimeEvent,
  fmv: CHANNELS.realtimeFmv,
  ohlcv: CHANNELS.realtimeOhlcv,
};

export interface RedisSinkLimits {
  /** Messages buffered at most (default 100,000). */
  readonly capacity?: number;
  /** Text buffered at most, in characters of the lines (default 16 MiB: about 6 s of the 10x surge's ticks, ~330 characters a line). */
  readonly maxBytes?: number;
  /** Messages per MULTI (default 512). */
  readonly batch?: number;
}

export const DEFAULT_SINK_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A stable message_id per (epoch, channel, offset): a retried publish is recognisably the same. A
 * UUID-shaped id whose first 80 bits hash (epoch, channel), computed once per pair, and whose last 48
 * bits are the offset: no hash per message.
 */
const idPrefixes = new Map<string, string>();

export function messageId(epoch: string, channel: RouterChannel, offset: number): string {
  const pair = `${epoch}|${channel}`;
  let prefix = idPrefixes.get(pair);
  if (prefix === undefined) {
    prefix = sha1Uuid(pair).slice(0, 24);
    if (idPrefixes.size > 1_000) idPrefixes.clear();
    idPrefixes.set(pair, prefix);
  }
  return prefix + offset.toString(16).padStart(12, '0');
}

export function eventType(m: SequencedMessage): string {
  if (typeof m.data.type === 'string') return m.data.type;
  if (m.data.ev === 'minute_complete' || m.data.ev === 'gap') return m.data.ev;
  return m.kind;
}

/**
 * A message as the sink buffers it: `<offset>\t<event type>\t<client wire text>` (the wire text is
 * serialised once per message anyway, for the clients). JSON escapes tabs and newlines, so neither
 * occurs inside a line: lines can travel joined by `\n`.
 */
export function sinkLine(m: SequencedMessage): string {
  return `${m.offset}\t${eventType(m)}\t${wireText(m)}`;
}

/** Messages dropped before they reached the stream: contiguous offsets of one epoch. */
export interface Gap {
  epoch: string;
  from: number;
  to: number;
  missed: number;
}

/** A gap kept in the buffer in its place, as a line (announced where the loss happened). */
const GAP_LINE = 'gap\t';

export function gapLine(gap: Gap): string {
  return GAP_LINE + JSON.stringify(gap);
}

function readGap(line: string): Gap {
  return JSON.parse(line.slice(GAP_LINE.length)) as Gap;
}

/** The wire fields a stream entry is built from. */
interface Wire {
  readonly epoch: string;
  readonly offset: number;
  readonly sym: string;
  readonly data: Record<string, unknown>;
}

export class RedisChannelSink extends SendLoop {
  private readonly queue: BoundedQueue<string>;
  private readonly maxBytes: number;
  private readonly batch: number;
  /**
   * The batch being sent, out of the buffer: an overflow while it is in flight drops buffered
   * messages, never one of these (a batch taken from the buffer's head and shifted off after the
   * round trip would shift off the wrong messages once the head had been evicted meanwhile).
   */
  private inflight: string[] = [];
  /** The gap entry of the batch in flight (retried with it, same message_id). */
  private inflightGap: Gap | null = null;
  /** Messages dropped from the head of the buffer, not yet announced in the stream. */
  private gap: Gap | null = null;
  /** Characters of the lines in the buffer. */
  bytes = 0;
  published = 0;
  dropped = 0;
  /** Gap entries written to the stream (one per run of dropped messages). */
  gaps = 0;
  /** The deepest the buffer has been: how close the sink came to dropping. */
  peakDepth = 0;

  constructor(
    readonly channel: RouterChannel,
    private readonly bus: EventBus,
    limits: RedisSinkLimits = {},
    /** Called after each batch is confirmed or fails (the worker publishes its figures then). */
    private readonly onChange: () => void = () => undefined,
  ) {
    // Started on a later turn: lines arrive in bursts, a batch should take the whole burst.
    super({ deferStart: true });
    this.queue = new BoundedQueue(limits.capacity ?? 100_000);
    this.maxBytes = limits.maxBytes ?? DEFAULT_SINK_MAX_BYTES;
    this.batch = limits.batch ?? 512;
  }

  /**
   * A line from `sinkLine`, or from `gapLine`: messages lost before they reached this sink (the
   * router's hand-over to the sink's thread was full), counted as dropped here and announced by a gap
   * entry at this place in the stream.
   */
  offer(line: string): void {
    if (line.startsWith(GAP_LINE)) this.dropped += readGap(line).missed;
    this.makeRoom(line.length);
    this.queue.push(line);
    this.bytes += line.length;
    if (this.queue.length > this.peakDepth) this.peakDepth = this.queue.length;
    this.kick();
  }

  health(): SinkHealth {
    return {
      breaker: this.breakerState(),
      depth: this.queue.length + this.inflight.length,
      published: this.published,
      failures: this.failures,
      dropped: this.dropped,
      gaps: this.gaps,
      peakDepth: this.peakDepth,
      bytes: this.bytes,
    };
  }

  protected override pending(): boolean {
    return (
      this.queue.length > 0 || this.inflight.length > 0 || this.gap !== null || this.inflightGap !== null
    );
  }

  /** Drops the oldest until `size` more fits (by count and by bytes; one line always fits). */
  private makeRoom(size: number): void {
    while (this.queue.full || (this.queue.length > 0 && this.bytes + size > this.maxBytes)) {
      const oldest = this.queue.shift() as string;
      this.bytes -= oldest.length;
      this.drop(oldest);
    }
  }

  /**
   * A line the full buffer could not keep: counted, and announced in the stream by a `gap` entry
   * (missed, from, to offsets) written before the next message, so a consumer of the stream sees
   * the loss where it happened instead of an unexplained jump in offsets.
   */
  private drop(line: string): void {
    const g = this.gap;
    if (line.startsWith(GAP_LINE)) {
      // An announced loss reached the head: the runs are adjacent (everything between was dropped).
      const lost = readGap(line);
      if (g) {
        g.missed += lost.missed;
        g.to = lost.to;
      } else this.gap = lost;
      return;
    }
    this.dropped += 1;
    const offset = Number(line.slice(0, line.indexOf('\t')));
    // The buffer drops its oldest, so the run is contiguous (one router, one epoch, offsets rising).
    if (g) {
      g.missed += 1;
      g.to = offset;
    } else {
      this.gap = { epoch: parseWire(line).epoch, from: offset, to: offset, missed: 1 };
    }
  }

  protected override sent(): void {
    this.onChange();
  }

  protected override async sendBatch(): Promise<void> {
    if (this.inflight.length === 0 && this.inflightGap === null) {
      // Taken out of the buffer now: a gap comes before the messages that follow it.
      this.inflightGap = this.gap;
      this.gap = null;
      const batch: string[] = [];
      while (batch.length < this.batch && this.queue.length > 0) {
        const line = this.queue.shift() as string;
        this.bytes -= line.length;
        batch.push(line);
      }
      this.inflight = batch;
    }
    const batch = this.inflight;
    const gap = this.inflightGap;
    if (batch.length === 0 && gap === null) return;
    const inputs: PublishInput[] = [];
    let gapEntries = 0;
    if (gap) {
      inputs.push(this.gapEntry(gap));
      gapEntries += 1;
    }
    for (const line of batch) {
      if (line.startsWith(GAP_LINE)) {
        inputs.push(this.gapEntry(readGap(line)));
        gapEntries += 1;
        continue;
      }
      const t1 = line.indexOf('\t');
      const t2 = line.indexOf('\t', t1 + 1);
      const w = parseWire(line, t2);
      inputs.push({
        message_id: messageId(w.epoch, this.channel, w.offset),
        event_type: line.slice(t1 + 1, t2),
        data: { sym: w.sym, epoch: w.epoch, offset: w.offset, ...w.data },
      });
    }
    // One MULTI per batch (XADD + PUBLISH per message, in offset order): one round trip and one
    // transaction instead of one per message. The batch succeeds or is retried whole (a retry
    // repeats the same message_ids, so consumers can drop the repeat).
    await this.guarded(() => this.bus.publishBatch(BUS_CHANNEL[this.channel], inputs));
    this.inflight = [];
    this.inflightGap = null;
    this.published += inputs.length - gapEntries;
    this.gaps += gapEntries;
  }

  private gapEntry(gap: Gap): PublishInput {
    return {
      message_id: gapMessageId(gap, this.channel),
      event_type: 'gap',
      data: {
        sym: '*',
        epoch: gap.epoch,
        ev: 'gap',
        missed: gap.missed,
        from: gap.from,
        to: gap.to,
        reason: 'redis_sink_overflow',
      },
    };
  }
}

/** The wire text of a line (after its second tab). */
function parseWire(line: string, secondTab = line.indexOf('\t', line.indexOf('\t') + 1)): Wire {
  return JSON.parse(line.slice(secondTab + 1)) as Wire;
}

/** A stable message_id for a gap entry: the (epoch, channel) prefix hashed apart from the messages'. */
function gapMessageId(gap: Gap, channel: RouterChannel): string {
  return sha1Uuid(`${gap.epoch}|${channel}|gap|${gap.from}|${gap.to}`);
}

/** A name-based (version 5 shaped) UUID from the SHA-1 of `text`. */
function sha1Uuid(text: string): string {
  const h = createHash('sha1').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
