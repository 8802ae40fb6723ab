/**
 * The router process: provider socket -> router core -> clients (WebSocket, `/stream`) and the app's
 * Redis Streams (one sink and breaker per channel); `/health` answers with every counter. The core
 * runs on the event loop; draining is scheduled after each frame with a budget, so a flood of one
 * channel yields to the loop (and to ticks, drained first) instead of starving it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { type WebSocket, WebSocketServer } from 'ws';
import { ClientSession } from '../market/realtime/client';
import { LatencyRecorder, type LatencySummary } from '../market/realtime/latency';
import { type MinuteBarMessage, minuteBarMessage } from '../market/realtime/minute-bar-message';
import { Router, type RouterHealth, type RouterOptions } from '../market/realtime/router';
import {
  CHANNELS,
  isRouterChannel,
  type RouterChannel,
  type SequencedMessage,
  wireText,
} from '../market/realtime/types';
import type { ArchivedFrame } from './archive';
import type { BatchSink } from './batch-sink';
import { MetricsWindow, publishSnapshot } from './metrics';
import { type ProcessFigures, ProcessMonitor } from './process-figures';
import { ProviderConnection, type ProviderHealth, type ProviderOptions } from './provider';
import { openRedisSinks, type RedisSinks, type RedisSinksOptions } from './redis-sinks';
import type { SinkHealth } from './sink-health';

/**
 * Node flags the router process runs with (`router up`, the container's CMD, the live benchmark): the
 * young generation's semi-space at 16 MB, stated rather than left to Node's default. It was 64 while
 * the Redis sinks ran on the event loop (their garbage was promoted and collected by full GCs: 16 %
 * of the router's CPU at 10x); with the sinks on their worker thread, 16 against 64 in one surge
 * run: peak RSS 341 against 418 MB, tick p99 9.2 against 10.3 ms, CPU per event 0.95x, GC time 1.13x.
 */
export const ROUTER_NODE_ARGS: readonly string[] = ['--max-semi-space-size=16'];

/**
 * The container's flags (the Dockerfile's CMD, and the surge benchmark's run of the same bundles):
 * ROUTER_NODE_ARGS, and source maps so that a stack trace names the TypeScript file and line.
 */
export const ROUTER_CONTAINER_NODE_ARGS: readonly string[] = ['--enable-source-maps', ...ROUTER_NODE_ARGS];

/** Client sends per write while corked (about 4 KB of ticks): few enough that the first tick of a batch waits well under a millisecond for the last. */
const FLUSH_EVERY = 16;

/** The TCP socket under a ws WebSocket (ws keeps it as `_socket`; null once closed). */
function netSocket(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket | null })._socket ?? undefined;
}

export interface RouterServiceOptions {
  readonly provider: ProviderOptions;
  readonly port?: number;
  readonly host?: string;
  /** The app's Redis Streams per channel (own connection each; on a worker thread), or none. */
  readonly redis?: RedisSinksOptions;
  readonly router?: Partial<RouterOptions>;
  /** Messages published per drain turn before yielding to the event loop. */
  readonly drainBudget?: number;
  readonly clientBuffer?: { maxQueue: number; highWater: number; lowWater: number; maxBufferedBytes: number };
  /** Completed minute bars (corrections included) to persistence: the RouterBars queue. */
  readonly bars?: BatchSink<MinuteBarMessage>;
  /** Every provider frame as ingested, in the replay feed format: the S3 archive. */
  readonly archive?: BatchSink<ArchivedFrame>;
  /**
   * Client sends of one routing turn leave in one write per FLUSH_EVERY messages (default true);
   * false: one write per message (the behaviour before, kept to measure the difference).
   */
  readonly clientWriteBatching?: boolean;
  /** EMF metrics (lambdas/realtime-router/metrics.ts) every `intervalMs`; none by default. */
  readonly metrics?: { readonly publisher: Metrics; readonly intervalMs: number };
}

export interface ServiceHealth {
  readonly status: 'running' | 'draining' | 'stopped';
  readonly router: RouterHealth;
  readonly latencyMs: Record<RouterChannel, LatencySummary>;
  readonly provider: ProviderHealth;
  readonly sinks: Partial<Record<RouterChannel, SinkHealth>>;
  /** The AWS egress: minute bars to SQS (`bars`). */
  readonly egress: { bars?: SinkHealth; archive?: SinkHealth };
  readonly clients: {
    id: string;
    queued: number;
    conflating: boolean;
    sent: Record<RouterChannel, number>;
    snapshot: Record<RouterChannel, number>;
    gapped: Record<RouterChannel, number>;
    conflated: Record<RouterChannel, number>;
  }[];
  readonly lastEventAgeMs: Record<RouterChannel, number | null>;
  /** Event-loop delay, GC pauses, RSS and CPU time of the process (since start). */
  readonly process?: ProcessFigures;
}

interface ClientRequest {
  action?: unknown;
  channel?: unknown;
  symbols?: unknown;
  resume?: { epoch?: unknown; offset?: unknown };
}

export class RouterService {
  readonly router: Router;
  readonly latency = new LatencyRecorder();
  /** The current metrics interval: its tick p99 and feed lag. */
  private readonly intervalLatency = new LatencyRecorder();
  private readonly metricsWindow = new MetricsWindow();
  private metricsTimer: NodeJS.Timeout | null = null;
  private readonly provider: ProviderConnection;
  private readonly sinks: RedisSinks | null;
  private readonly sessions = new Map<WebSocket, ClientSession>();
  private http: Server | null = null;
  private wss: WebSocketServer | null = null;
  private drainScheduled = false;
  private pumpTimer: NodeJS.Timeout | null = null;
  private clockTimer: NodeJS.Timeout | null = null;
  private status: ServiceHealth['status'] = 'running';
  private readonly monitor = new ProcessMonitor();
  /** The client sockets corked by `batched` (null: not corked), and the messages sent meanwhile. */
  private corked: Socket[] | null = null;
  private readonly sentCorked: SequencedMessage[] = [];
  port = 0;

  constructor(private readonly options: RouterServiceOptions) {
    this.router = new Router({
      epoch: `e${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`,
      ...options.router,
    });
    const sinks = options.redis ? openRedisSinks(options.redis) : null;
    this.sinks = sinks;
    if (sinks) this.router.tap((m) => sinks.offer(m));
    const bars = options.bars;
    if (bars) {
      this.router.tap((m) => {
        const bar = minuteBarMessage(m, Date.now());
        if (bar) bars.offer(bar);
      });
    }
    this.provider = new ProviderConnection(options.provider, (source, frame) => {
      const mono = performance.now();
      const now = Date.now();
      this.batched(() => {
        // The frame's ticks leave before its other work starts; what is left drains in the same
        // turn (budgeted): ticks never wait behind the socket's next frames.
        this.router.ingest(source, now, frame, mono, this.flushClients);
        this.drainNow();
      });
      options.archive?.offer({ source, receivedAt: now, frame });
      if (source === 'ws') this.metricsWindow.observeFrame(frame, now);
    });
  }

  async start(): Promise<void> {
    const http = createServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(this.health()));
        return;
      }
      res.writeHead(404).end();
    });
    this.http = http;
    this.wss = new WebSocketServer({ server: http, path: '/stream' });
    this.wss.on('connection', (socket) => this.connection(socket));
    await new Promise<void>((resolve) =>
      http.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', resolve),
    );
    this.port = (http.address() as AddressInfo).port;
    // Clients whose socket buffer drained get their queue; a quiet feed still reaches minute deadlines.
    this.pumpTimer = setInterval(() => this.batched(() => this.router.hub.pumpAll()), 10);
    this.clockTimer = setInterval(() => {
      this.router.advance(Date.now());
      this.scheduleDrain();
    }, 250);
    const metrics = this.options.metrics;
    if (metrics) this.metricsTimer = setInterval(() => this.publishMetrics(), metrics.intervalMs);
    this.provider.start();
  }

  /** Publishes the interval's metrics (EMF) and starts the next interval. */
  publishMetrics(): void {
    const publisher = this.options.metrics?.publisher;
    if (!publisher) return;
    const tick = this.intervalLatency.count('tick') > 0 ? this.intervalLatency.summary('tick').p99 : null;
    publishSnapshot(publisher, this.metricsWindow.take(this.health(), tick));
    this.intervalLatency.reset();
  }

  /** Graceful: stop the feed, announce open minutes, drain every buffer to clients and Redis. */
  async stop(timeoutMs = 10_000): Promise<{ drained: boolean; clients: ServiceHealth['clients'] }> {
    this.status = 'draining';
    this.provider.stop();
    if (this.clockTimer) clearInterval(this.clockTimer);
    this.router.closeMinutes();
    while (this.router.pending() > 0) this.router.drain();
    const deadline = Date.now() + timeoutMs;
    let drained = true;
    if (this.sinks) drained = (await this.sinks.flush(deadline)) && drained;
    for (const sink of [this.options.bars, this.options.archive])
      if (sink) drained = (await sink.flush(deadline)) && drained;
    for (;;) {
      this.router.hub.pumpAll();
      const waiting = [...this.sessions.entries()].some(([s, c]) => c.queued > 0 && s.readyState === s.OPEN);
      if (!waiting || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    if (this.pumpTimer) clearInterval(this.pumpTimer);
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    this.publishMetrics();
    await this.sinks?.close();
    this.options.bars?.stop();
    this.options.archive?.stop();
    // Each client's final counters, taken before the sockets close (a closed session is forgotten).
    const clients = this.clientFigures();
    for (const socket of this.sessions.keys()) socket.close(1001, 'router shutting down');
    this.wss?.close();
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()));
    this.status = 'stopped';
    this.monitor.stop();
    return { drained, clients };
  }

  health(): ServiceHealth {
    const sinks = this.sinks?.health() ?? {};
    const router = this.router.health();
    const now = Date.now();
    const lastEventAgeMs = {} as Record<RouterChannel, number | null>;
    for (const c of CHANNELS) {
      const at = router.lastEventAt[c];
      lastEventAgeMs[c] = at === null ? null : now - at;
    }
    return {
      status: this.status,
      router,
      latencyMs: this.latency.all(),
      provider: this.provider.health,
      sinks,
      egress: {
        ...(this.options.bars ? { bars: this.options.bars.health() } : {}),
        ...(this.options.archive ? { archive: this.options.archive.health() } : {}),
      },
      clients: this.clientFigures(),
      lastEventAgeMs,
      process: this.monitor.figures(),
    };
  }

  private clientFigures(): ServiceHealth['clients'] {
    return [...this.sessions.values()].map((c) => ({
      id: c.id,
      queued: c.queued,
      conflating: c.conflating,
      sent: c.counters.sent,
      snapshot: c.counters.snapshot,
      gapped: c.counters.gapped,
      conflated: c.counters.conflated,
    }));
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.batched(() => this.drainNow());
    });
  }

  /**
   * Runs `work` with every client socket corked, so its sends leave in one write per FLUSH_EVERY
   * messages instead of one system call each: at the 10x surge the per-message write was the router's
   * largest cost (a fifth of its CPU), and the CPU it frees is what keeps ticks from queueing. Latency
   * is recorded when the bytes go to the kernel (the flush), not when the message was queued.
   */
  private batched(work: () => void): void {
    if (this.corked !== null || this.options.clientWriteBatching === false) {
      work();
      return;
    }
    this.cork();
    try {
      work();
    } finally {
      this.uncork();
    }
  }

  /** Sends what the corked client sockets hold now, and goes on batching. */
  private readonly flushClients = (): void => {
    if (this.corked === null) return;
    this.uncork();
    this.cork();
  };

  private cork(): void {
    const sockets: Socket[] = [];
    for (const ws of this.sessions.keys()) {
      const raw = netSocket(ws);
      if (raw) {
        raw.cork();
        sockets.push(raw);
      }
    }
    this.corked = sockets;
  }

  private uncork(): void {
    for (const raw of this.corked ?? []) raw.uncork();
    this.corked = null;
    const now = performance.now();
    for (const m of this.sentCorked) this.recordLatency(m, now);
    this.sentCorked.length = 0;
  }

  private recordLatency(m: SequencedMessage, now: number): void {
    const ms = now - m.receivedAtMono;
    this.latency.record(m.channel, ms);
    this.intervalLatency.record(m.channel, ms);
  }

  /** One budgeted drain turn now; what is left over goes in a later turn, after pending I/O. */
  private drainNow(): void {
    this.router.drain(this.options.drainBudget ?? 2_000);
    if (this.router.pending() > 0) this.scheduleDrain();
  }

  private connection(socket: WebSocket): void {
    const session = new ClientSession(
      randomUUID(),
      {
        // Serialised once per message, however many clients receive it.
        send: (m: SequencedMessage) => socket.send(wireText(m)),
        bufferedAmount: () => socket.bufferedAmount,
      },
      this.options.clientBuffer,
      (m) => {
        // Control messages and snapshots (sent on subscribe, received long before) are not latency.
        if (m.kind === 'control' || m.snapshot) return;
        if (this.corked === null) {
          this.recordLatency(m, performance.now());
          return;
        }
        this.sentCorked.push(m);
        // A bounded batch: the first message of a long frame does not wait for its last.
        if (this.sentCorked.length >= FLUSH_EVERY) this.flushClients();
      },
    );
    this.sessions.set(socket, session);
    this.router.hub.attach(session);
    socket.on('message', (data) => this.request(socket, session, String(data)));
    socket.on('close', () => {
      this.router.hub.detach(session);
      this.sessions.delete(socket);
    });
    socket.on('error', () => undefined);
  }

  /**
   * `{"action":"subscribe","channel":"tick"|"*","symbols":["AAPL"]|"*","resume":{"epoch","offset"}}`.
   * With a resume position the client gets what it missed, or `resync` and the snapshot.
   */
  private request(socket: WebSocket, session: ClientSession, text: string): void {
    const reply = (body: Record<string, unknown>) => socket.send(JSON.stringify(body));
    let req: ClientRequest;
    try {
      req = JSON.parse(text) as ClientRequest;
    } catch {
      reply({ ev: 'error', message: 'invalid JSON' });
      return;
    }
    if (req.action !== 'subscribe') {
      reply({ ev: 'error', message: 'expected {"action":"subscribe","channel":...,"symbols":...}' });
      return;
    }
    const channels =
      req.channel === '*' ? [...CHANNELS] : isRouterChannel(req.channel) ? [req.channel] : null;
    const symbols =
      req.symbols === '*' || req.symbols === undefined
        ? '*'
        : Array.isArray(req.symbols) && req.symbols.every((s) => typeof s === 'string')
          ? (req.symbols as string[])
          : null;
    if (!channels || !symbols) {
      reply({
        ev: 'error',
        message: `channel must be one of ${CHANNELS.join(', ')} or *; symbols "*" or a list`,
      });
      return;
    }
    for (const channel of channels) {
      const resume = req.resume;
      if (resume && typeof resume.epoch === 'string' && typeof resume.offset === 'number') {
        session.subscribe(channel, symbols);
        const result = this.router.hub.resume(session, channel, resume.epoch, resume.offset);
        if (result.status === 'resumed') {
          reply({
            ev: 'resumed',
            channel,
            epoch: this.router.hub.epoch,
            from: resume.offset,
            replayed: result.replayed,
          });
          continue;
        }
        reply({ ev: 'resync', channel, epoch: this.router.hub.epoch, reason: result.reason });
      }
      const snapshot = this.router.hub.subscribe(session, channel, symbols);
      reply({
        ev: 'subscribed',
        channel,
        epoch: this.router.hub.epoch,
        offset: this.router.hub.offset(channel),
        snapshot,
      });
    }
    session.pump();
  }
}
