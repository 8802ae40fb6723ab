/**
 * The router's Redis sinks, one per channel (own connection, breaker and bounded buffer each:
 * `RedisChannelSink`), run on a worker thread by default. The router's event loop then only turns
 * each message into its line (`sinkLine`: the client wire text it serialised anyway) and, once per
 * event-loop turn, hands each channel's lines to the worker as one string (`postMessage`). The
 * envelopes, their JSON, the Redis client and all their garbage live on the worker's own heap and
 * event loop: a slow Redis round trip or a collection there never delays a tick's routing.
 *
 * The hand-over is bounded too: text the worker has not yet taken (it counts what it took in a
 * SharedArrayBuffer) past `handoffBytes` is dropped on the router's side and handed over as a gap
 * line in its place, so the sink writes the `gap` entry where the loss happened. Per-channel order
 * holds (one port, lines in offset order). The sinks' figures (`/health`) are read from the same
 * shared memory: no round trip per health request.
 *
 * `thread: 'main'` runs the same sinks on the caller's event loop (the behaviour before, kept to
 * measure against).
 */
import type { Worker } from 'node:worker_threads';
import { CHANNELS, type RouterChannel, type SequencedMessage } from '../market/realtime/types';
import { EventBus } from '../platform/event-bus';
import { createRedisClient, type RedisClient } from '../platform/redis';
import { startWorker } from '../platform/worker';
import { type Gap, gapLine, RedisChannelSink, type RedisSinkLimits, sinkLine } from './redis-sink';
import { BREAKER_STATES, type SinkHealth } from './sink-health';

export interface RedisSinkTarget {
  /** redis://host:port (locally) or rediss://:token@host:port (ElastiCache). */
  readonly url: string;
  /** Stream key prefix (EventBus namespace). */
  readonly namespace?: string;
}

export interface RedisSinksOptions {
  /** The channels published to Redis, each with its own connection. */
  readonly targets: Partial<Record<RouterChannel, RedisSinkTarget>>;
  readonly limits?: RedisSinkLimits;
  /** 'worker' (default): the sinks on a worker thread; 'main': on the router's event loop. */
  readonly thread?: 'worker' | 'main';
  /** Text per channel handed to the worker and not yet taken, before the router drops (default 8 MiB). */
  readonly handoffBytes?: number;
  /**
   * The worker thread's nice value (Linux; default 10, 0 = as the router): when the CPU is short the
   * event loop that routes ticks gets it first and the sinks take what is left (their bounded buffers
   * absorb it, or drop with gap entries), the priority the issue sets (tick first).
   */
  readonly nice?: number;
}

export interface RedisSinks {
  offer(m: SequencedMessage): void;
  health(): Partial<Record<RouterChannel, SinkHealth>>;
  /** Publishes what is buffered; true when everything is in Redis before `deadline` (epoch ms). */
  flush(deadline: number): Promise<boolean>;
  /** Stops the send loops and closes the connections (and the worker). */
  close(): Promise<void>;
}

export function openRedisSinks(options: RedisSinksOptions): RedisSinks {
  return options.thread === 'main' ? new MainThreadSinks(options) : new WorkerSinks(options);
}

/** One connection, event bus and sink per target channel: the same on either thread. */
export function channelSinks(
  targets: RedisSinksOptions['targets'],
  limits: RedisSinkLimits | undefined,
  onChange: () => void = () => undefined,
): { sinks: Map<RouterChannel, RedisChannelSink>; close(): Promise<void> } {
  const sinks = new Map<RouterChannel, RedisChannelSink>();
  const clients: RedisClient[] = [];
  for (const c of CHANNELS) {
    const target = targets[c];
    if (!target) continue;
    // One connection per channel: a slow or failing stream on one never queues behind another.
    const client = createRedisClient({ url: target.url });
    client.connect().catch(() => undefined);
    clients.push(client);
    const bus = new EventBus({ client, service: 'realtime-router', namespace: target.namespace });
    sinks.set(c, new RedisChannelSink(c, bus, limits, onChange));
  }
  let closing: Promise<unknown> | null = null;
  return {
    sinks,
    async close() {
      for (const s of sinks.values()) s.stop();
      // A connection that never came up (Redis down) is destroyed: close() would wait for it.
      closing ??= Promise.allSettled(clients.map(async (c) => (c.isOpen ? c.close() : c.destroy())));
      await closing;
    },
  };
}

/** The figures a worker's sink shares with the router, per channel, in this order. */
export const FIGURES = [
  'breaker',
  'depth',
  'published',
  'failures',
  'dropped',
  'gaps',
  'peakDepth',
  'bytes',
  /** Characters of handed-over text the worker has taken off its port. */
  'taken',
] as const;
export const BREAKER_CODES = Object.values(BREAKER_STATES);

export function figureSlot(channel: RouterChannel, figure: (typeof FIGURES)[number]): number {
  return CHANNELS.indexOf(channel) * FIGURES.length + FIGURES.indexOf(figure);
}

/** What the router posts to the worker. */
export type ToWorker =
  | { readonly kind: 'lines'; readonly channel: RouterChannel; readonly text: string }
  | { readonly kind: 'flush'; readonly id: number; readonly deadline: number }
  | { readonly kind: 'close'; readonly id: number };

export interface FromWorker {
  readonly id: number;
  readonly ok: boolean;
}

export interface WorkerInput {
  readonly targets: RedisSinksOptions['targets'];
  readonly limits?: RedisSinkLimits;
  readonly figures: SharedArrayBuffer;
}

class MainThreadSinks implements RedisSinks {
  private readonly opened: ReturnType<typeof channelSinks>;

  constructor(options: RedisSinksOptions) {
    this.opened = channelSinks(options.targets, options.limits);
  }

  offer(m: SequencedMessage): void {
    this.opened.sinks.get(m.channel)?.offer(sinkLine(m));
  }

  health(): Partial<Record<RouterChannel, SinkHealth>> {
    const out: Partial<Record<RouterChannel, SinkHealth>> = {};
    for (const [c, s] of this.opened.sinks) out[c] = s.health();
    return out;
  }

  async flush(deadline: number): Promise<boolean> {
    let drained = true;
    for (const s of this.opened.sinks.values()) drained = (await s.flush(deadline)) && drained;
    return drained;
  }

  close(): Promise<void> {
    return this.opened.close();
  }
}

/** A channel's lines not yet posted to the worker. */
interface Handoff {
  lines: string[];
  /** Characters posted to the worker so far (compared with what it took). */
  posted: number;
  /** Characters in `lines`. */
  size: number;
  /** Messages dropped since the last line, announced by a gap line before the next. */
  gap: Gap | null;
  /** Where the worker counts the characters it took. */
  readonly takenSlot: number;
}

class WorkerSinks implements RedisSinks {
  private readonly worker: Worker;
  private readonly figures: Float64Array;
  private readonly handoff = new Map<RouterChannel, Handoff>();
  private readonly handoffBytes: number;
  private readonly replies = new Map<number, (ok: boolean) => void>();
  private nextId = 0;
  private postScheduled = false;
  private recheck: NodeJS.Timeout | null = null;
  private failed: Error | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(options: RedisSinksOptions) {
    const shared = new SharedArrayBuffer(CHANNELS.length * FIGURES.length * 8);
    this.figures = new Float64Array(shared);
    this.handoffBytes = options.handoffBytes ?? 8 * 1024 * 1024;
    for (const c of CHANNELS)
      if (options.targets[c])
        this.handoff.set(c, { lines: [], posted: 0, size: 0, gap: null, takenSlot: figureSlot(c, 'taken') });
    this.worker = startWorker(
      './redis-sink-worker',
      import.meta.url,
      { targets: options.targets, limits: options.limits, figures: shared } satisfies WorkerInput,
      // A small young generation: the router's --max-semi-space-size (sized for its own event loop)
      // would otherwise apply to this isolate too, tens of MB of RSS for a heap of short-lived lines.
      { nice: options.nice ?? 10, resourceLimits: { maxYoungGenerationSizeMb: 24 } },
    );
    this.worker.on('message', (m: FromWorker) => {
      this.replies.get(m.id)?.(m.ok);
      this.replies.delete(m.id);
    });
    const fail = (error: Error) => {
      if (this.failed || this.closed) return;
      this.failed = error;
      // The sinks are gone: /health shows their breakers open, the router and its clients go on.
      console.error(`redis sink worker stopped: ${error.message}`);
      for (const resolve of this.replies.values()) resolve(false);
      this.replies.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  offer(m: SequencedMessage): void {
    const h = this.handoff.get(m.channel);
    if (!h) return;
    if (h.posted - this.taken(h) + h.size > this.handoffBytes || this.failed) {
      // The worker is not keeping up with the hand-over: the loss is announced in its place.
      const g = h.gap;
      if (g) {
        g.missed += 1;
        g.to = m.offset;
      } else h.gap = { epoch: m.epoch, from: m.offset, to: m.offset, missed: 1 };
      return;
    }
    if (h.gap) this.push(h, gapLine(h.gap));
    h.gap = null;
    this.push(h, sinkLine(m));
  }

  health(): Partial<Record<RouterChannel, SinkHealth>> {
    const out: Partial<Record<RouterChannel, SinkHealth>> = {};
    for (const [c, h] of this.handoff) {
      const f = (name: (typeof FIGURES)[number]) => this.figures[figureSlot(c, name)] as number;
      out[c] = {
        breaker: this.failed ? 'open' : (BREAKER_CODES[f('breaker')] ?? 'closed'),
        // Buffered in the worker, plus handed over and not yet taken (lines posted this turn).
        depth: f('depth') + h.lines.length,
        published: f('published'),
        failures: f('failures'),
        dropped: f('dropped') + (h.gap?.missed ?? 0),
        gaps: f('gaps'),
        peakDepth: f('peakDepth'),
        bytes: f('bytes') + h.posted - this.taken(h) + h.size,
      };
    }
    return out;
  }

  async flush(deadline: number): Promise<boolean> {
    this.post(true);
    return this.request({ kind: 'flush', id: 0, deadline }, deadline - Date.now() + 1_000);
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    if (this.recheck) clearTimeout(this.recheck);
    // The worker stops its send loops and closes its connections, then it is ended.
    if (!this.failed) await this.request({ kind: 'close', id: 0 }, 5_000);
    this.closed = true;
    await this.worker.terminate();
  }

  private push(h: Handoff, line: string): void {
    h.lines.push(line);
    h.size += line.length;
    if (this.postScheduled) return;
    this.postScheduled = true;
    // Once per event-loop turn: the lines of a whole drain leave in one message per channel.
    setImmediate(() => this.post());
  }

  /** `final`: announce an open loss now (a flush), not only once the worker has caught up. */
  private post(final = false): void {
    if (!final) this.postScheduled = false;
    if (this.failed) return;
    let open = false;
    for (const [channel, h] of this.handoff) {
      if (h.gap && (final || (h.lines.length === 0 && h.posted - this.taken(h) <= this.handoffBytes / 2))) {
        // A loss with nothing after it yet: announced once there is room again (or now, on a flush),
        // so a sustained overload is one gap entry per run, not one per event-loop turn.
        h.lines.push(gapLine(h.gap));
        h.gap = null;
      }
      if (h.gap) open = true;
      if (h.lines.length === 0) continue;
      const text = h.lines.join('\n');
      h.lines = [];
      h.size = 0;
      h.posted += text.length;
      this.worker.postMessage({ kind: 'lines', channel, text } satisfies ToWorker);
    }
    // A loss still open is looked at again even if no message comes (the feed stopped).
    if (open && this.recheck === null) {
      this.recheck = setTimeout(() => {
        this.recheck = null;
        this.post();
      }, 100);
      this.recheck.unref();
    }
  }

  private taken(h: Handoff): number {
    return this.figures[h.takenSlot] as number;
  }

  private request(message: ToWorker, timeoutMs: number): Promise<boolean> {
    if (this.failed) return Promise.resolve(false);
    this.nextId += 1;
    const id = this.nextId;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        resolve(false);
      }, timeoutMs);
      this.replies.set(id, (ok) => {
        clearTimeout(timer);
        resolve(ok);
      });
      this.worker.postMessage({ ...message, id });
    });
  }
}
