/**
 * The provider connection: auth, subscribe, frames into the router; on any disconnect it reconnects
 * with capped back-off, resubscribes, and fills the gap from the provider's REST endpoints (trades
 * since each symbol's last trade, minute bars since its last bar). The router's exact dedup makes the
 * overlap between REST and the resumed socket harmless: nothing is delivered twice.
 */
import WebSocket from 'ws';

export interface ProviderOptions {
  readonly wsUrl: string;
  readonly restUrl: string;
  readonly apiKey: string;
  /** Provider subscription params, e.g. `T.*,Q.*,AM.*,FMV.*`. */
  readonly subscriptions: string;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * The symbols a `*` subscription covers (the universe): a symbol not yet seen on the socket may
   * still have traded during the gap, so the fill asks for these too.
   */
  readonly universe?: readonly string[];
  /** Concurrent REST requests while filling a gap. */
  readonly gapFillConcurrency?: number;
}

export interface ProviderHealth {
  state: 'connecting' | 'authenticating' | 'streaming' | 'backoff' | 'stopped';
  connects: number;
  disconnects: number;
  authFailures: number;
  gapFills: number;
  /** Gap fills finished (every REST request answered or failed). */
  gapFillsDone: number;
  gapFillEvents: number;
  gapFillErrors: number;
  /** Wall clock of the last data frame, epoch ms. */
  lastFrameAt: number | null;
}

export type FrameHandler = (source: 'ws' | 'rest', frame: unknown[]) => void;

export class ProviderConnection {
  readonly health: ProviderHealth = {
    state: 'connecting',
    connects: 0,
    disconnects: 0,
    authFailures: 0,
    gapFills: 0,
    gapFillsDone: 0,
    gapFillEvents: 0,
    gapFillErrors: 0,
    lastFrameAt: null,
  };
  private socket: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Per symbol: newest trade time and newest minute-bar start seen (ms). */
  private readonly lastTrade = new Map<string, number>();
  private readonly lastBar = new Map<string, number>();
  /** Every symbol seen on any channel, and the newest event time seen overall (ms). */
  private readonly known = new Set<string>();
  private newest = 0;
  private everStreamed = false;
  private fillPending = false;

  constructor(
    private readonly options: ProviderOptions,
    private readonly onFrame: FrameHandler,
  ) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.health.state = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    this.socket?.terminate();
  }

  private connect(): void {
    if (this.stopped) return;
    this.health.state = 'connecting';
    const socket = new WebSocket(this.options.wsUrl);
    this.socket = socket;
    socket.on('message', (data) => this.message(String(data)));
    socket.on('close', () => this.closed(socket));
    socket.on('error', () => undefined);
  }

  private closed(socket: WebSocket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    if (this.stopped) return;
    this.health.disconnects += 1;
    this.health.state = 'backoff';
    const min = this.options.minBackoffMs ?? 100;
    const max = this.options.maxBackoffMs ?? 5_000;
    const delay = Math.min(max, min * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private message(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(frame)) return;
    const statuses = frame.filter((e) => (e as { ev?: unknown })?.ev === 'status') as { status?: string }[];
    for (const s of statuses) this.status(s.status);
    if (statuses.length === frame.length) return;
    this.health.lastFrameAt = Date.now();
    this.track(frame);
    this.onFrame('ws', frame);
  }

  private status(status: string | undefined): void {
    const socket = this.socket;
    if (!socket) return;
    if (status === 'connected') {
      this.health.state = 'authenticating';
      socket.send(JSON.stringify({ action: 'auth', params: this.options.apiKey }));
    } else if (status === 'auth_success') {
      socket.send(JSON.stringify({ action: 'subscribe', params: this.options.subscriptions }));
      this.health.state = 'streaming';
      this.health.connects += 1;
      this.attempt = 0;
      this.fillPending = this.everStreamed;
      this.everStreamed = true;
    } else if (status === 'success' && this.fillPending) {
      // After the provider confirmed the resubscription: REST then covers everything up to a moment
      // the socket already streams from, so no item falls between the two.
      this.fillPending = false;
      void this.fillGap();
    } else if (status === 'auth_failed') {
      this.health.authFailures += 1;
    }
  }

  private track(frame: unknown[]): void {
    for (const raw of frame) {
      const e = raw as { ev?: unknown; sym?: unknown; t?: unknown; s?: unknown };
      if (typeof e.sym !== 'string') continue;
      this.known.add(e.sym);
      if (e.ev === 'T' && typeof e.t === 'number') {
        if (e.t > this.newest) this.newest = e.t;
        if (e.t > (this.lastTrade.get(e.sym) ?? 0)) this.lastTrade.set(e.sym, e.t);
      } else if (e.ev === 'AM' && typeof e.s === 'number') {
        if (e.s > (this.lastBar.get(e.sym) ?? 0)) this.lastBar.set(e.sym, e.s);
      }
    }
  }

  /** Everything since each symbol's last seen item, from REST; overlaps are removed by the router. */
  private async fillGap(): Promise<void> {
    this.health.gapFills += 1;
    const key = encodeURIComponent(this.options.apiKey);
    const jobs: (() => Promise<void>)[] = [];
    // A symbol with no trade before the disconnect may have traded during it: from the newest time seen.
    const gapStart = this.newest;
    const lastBarOverall = Math.max(0, ...this.lastBar.values());
    for (const sym of this.options.universe ?? []) this.known.add(sym);
    for (const sym of this.known) {
      const since = this.lastTrade.get(sym) ?? gapStart;
      jobs.push(async () => {
        const url = `${this.options.restUrl}/v3/trades/${encodeURIComponent(sym)}?timestamp.gte=${since}&apiKey=${key}`;
        const body = (await getJson(url)) as { results?: Record<string, unknown>[] };
        const frame = (body.results ?? []).map((r) => ({
          ev: 'T',
          sym,
          x: r.exchange,
          i: String(r.id),
          z: r.tape,
          p: r.price,
          s: r.size,
          c: r.conditions,
          t: Math.floor(Number(r.sip_timestamp) / 1e6),
          q: r.sequence_number,
        }));
        this.deliver(frame);
      });
    }
    for (const sym of this.known) {
      const since = this.lastBar.get(sym) ?? lastBarOverall;
      jobs.push(async () => {
        const url = `${this.options.restUrl}/v2/aggs/ticker/${encodeURIComponent(sym)}/range/1/minute/${since}/${Date.now() + 86_400_000 * 365}?apiKey=${key}`;
        const body = (await getJson(url)) as { results?: Record<string, number>[] };
        const frame = (body.results ?? []).map((r) => ({
          ev: 'AM',
          sym,
          v: r.v,
          vw: r.vw,
          o: r.o,
          c: r.c,
          h: r.h,
          l: r.l,
          s: r.t,
          e: (r.t as number) + 60_000,
        }));
        this.deliver(frame);
      });
    }
    const concurrency = this.options.gapFillConcurrency ?? 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < jobs.length && !this.stopped) {
          const job = jobs[next] as () => Promise<void>;
          next += 1;
          try {
            await job();
          } catch {
            this.health.gapFillErrors += 1;
          }
        }
      }),
    );
    this.health.gapFillsDone += 1;
  }

  private deliver(frame: Record<string, unknown>[]): void {
    if (frame.length === 0 || this.stopped) return;
    this.health.gapFillEvents += frame.length;
    this.track(frame);
    this.onFrame('rest', frame);
  }
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url.replace(/apiKey=[^&]*/, 'apiKey=***')} -> ${res.status}`);
  return res.json();
}
