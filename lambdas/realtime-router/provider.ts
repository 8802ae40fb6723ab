/**
 * The provider connection: auth, subscribe, frames into the router; on any disconnect it reconnects
 * with capped back-off, resubscribes, and fills the gap from the provider's REST endpoints (trades
 * since each symbol's last trade, minute bars since its last bar). The router's exact dedup makes the
 * overlap between REST and the resumed socket harmless: nothing is delivered twice.
 *
 * The fill starts once every subscription is acknowledged (REST then covers up to a moment the socket
 * already streams from) and the resumed socket's frames are held until it is done, so the gap reaches
 * the router before anything newer: per symbol, time order is kept across the two sources. REST pages
 * are followed (`next_url`) and nanosecond timestamps converted exactly.
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
  /**
   * Socket frames held while a gap fill runs; past this they go through unheld (never dropped), and
   * only time order between the gap and the newest frames is lost.
   */
  readonly holdMaxFrames?: number;
  /** REST page size (the provider's maximum is 50,000). */
  readonly restPageLimit?: number;
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
  /** REST pages read during gap fills (a symbol's answer may take several). */
  gapFillPages: number;
  /** Socket frames held back while a fill ran (released after it, in order). */
  heldFrames: number;
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
    gapFillPages: 0,
    heldFrames: 0,
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
  /** Subscription acknowledgements still awaited on this connection. */
  private acksAwaited = 0;
  /**
   * Newest trade time in the first frame with trades on the resumed socket: from there on the socket
   * has everything, so a symbol's REST pages stop once they reach it (a fill never chases the market).
   */
  private socketFrom: number | null = null;
  /** Socket frames of the resumed connection waiting for the gap fill to finish; null when not holding. */
  private held: unknown[][] | null = null;

  constructor(
    private readonly options: ProviderOptions,
    private readonly onFrame: FrameHandler,
  ) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    // Frames already received are the router's to drain, even those held for a fill still running.
    this.release();
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
    // A second drop during a fill: what the socket brought still goes in (the next fill covers after it).
    this.fillPending = false;
    this.release();
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
    if (this.socketFrom === null) {
      for (const e of frame as { ev?: unknown; t?: unknown }[])
        if (e?.ev === 'T' && typeof e.t === 'number') this.socketFrom = Math.max(this.socketFrom ?? 0, e.t);
    }
    if (this.held && this.held.length < (this.options.holdMaxFrames ?? 100_000)) {
      this.held.push(frame);
      this.health.heldFrames += 1;
      return;
    }
    this.release();
    this.onFrame('ws', frame);
  }

  /** The held socket frames, in arrival order, after the gap (or when holding would overflow). */
  private release(): void {
    const held = this.held;
    if (!held) return;
    this.held = null;
    for (const frame of held) this.onFrame('ws', frame);
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
      // The provider acknowledges each subscription param on its own.
      this.acksAwaited = this.options.subscriptions.split(',').filter((p) => p.trim()).length;
      this.fillPending = this.everStreamed;
      this.everStreamed = true;
      // What the resumed socket brings waits for the gap: older items first, per symbol in time order.
      if (this.fillPending) this.held = [];
      this.socketFrom = null;
    } else if (status === 'success' && this.fillPending) {
      // Only once every channel is resubscribed (not the first acknowledgement: `Q.*` before `T.*`
      // would leave trades in neither source): REST then covers up to a moment the socket streams from.
      this.acksAwaited -= 1;
      if (this.acksAwaited > 0) return;
      this.fillPending = false;
      const hold = this.held;
      void this.fillGap().finally(() => {
        if (this.held === hold) this.release();
      });
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
    const limit = this.options.restPageLimit ?? 50_000;
    for (const sym of this.known) {
      const since = this.lastTrade.get(sym) ?? gapStart;
      jobs.push(async () => {
        // v3 takes nanoseconds; ascending with the largest page, then every next_url.
        const first = `${this.options.restUrl}/v3/trades/${encodeURIComponent(sym)}?timestamp.gte=${since}000000&order=asc&sort=timestamp&limit=${limit}`;
        await this.pages(first, key, true, (r) => ({
          ev: 'T',
          sym,
          x: r.exchange,
          i: String(r.id),
          z: r.tape,
          p: r.price,
          s: r.size,
          c: r.conditions,
          t: nanosToMillis(r.sip_timestamp),
          q: r.sequence_number,
        }));
      });
    }
    for (const sym of this.known) {
      const since = this.lastBar.get(sym) ?? lastBarOverall;
      jobs.push(async () => {
        const first = `${this.options.restUrl}/v2/aggs/ticker/${encodeURIComponent(sym)}/range/1/minute/${since}/${Date.now() + 86_400_000}?sort=asc&limit=${limit}`;
        await this.pages(first, key, false, (r) => ({
          ev: 'AM',
          sym,
          v: r.v,
          vw: r.vw,
          o: r.o,
          c: r.c,
          h: r.h,
          l: r.l,
          s: r.t,
          e: Number(r.t) + 60_000,
        }));
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

  /** One REST answer and its following pages, each page delivered as one frame. */
  private async pages(
    first: string,
    key: string,
    trades: boolean,
    toEvent: (r: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<void> {
    let url: string | undefined = first;
    for (let page = 0; url && !this.stopped; page += 1) {
      if (page >= 10_000) throw new Error('gap fill: too many pages');
      const body = (await getJson(withKey(url, key))) as {
        results?: Record<string, unknown>[];
        next_url?: string;
      };
      this.health.gapFillPages += 1;
      const frame = (body.results ?? []).map(toEvent);
      this.deliver(frame);
      url = typeof body.next_url === 'string' && body.next_url.length > 0 ? body.next_url : undefined;
      const reached = trades ? (frame.at(-1)?.t as number | undefined) : undefined;
      if (reached !== undefined && this.socketFrom !== null && reached >= this.socketFrom) url = undefined;
    }
  }

  private deliver(frame: Record<string, unknown>[]): void {
    if (frame.length === 0 || this.stopped) return;
    this.health.gapFillEvents += frame.length;
    this.track(frame);
    this.onFrame('rest', frame);
  }
}

/** The provider's `next_url` carries no key: every page gets it (once). */
export function withKey(url: string, encodedKey: string): string {
  const u = url.replace(/([?&])apiKey=[^&]*(&|$)/, (_m, p: string, q: string) => (q ? p : ''));
  return `${u}${u.includes('?') ? '&' : '?'}apiKey=${encodedKey}`;
}

/**
 * A SIP timestamp in nanoseconds -> epoch ms, exactly (floor). JSON numbers past 2^53 are already
 * rounded, so `getJson` turns `sip_timestamp` into a string first; `x / 1e6` on the rounded double
 * can land just under the millisecond and floor to the one before.
 */
export function nanosToMillis(value: unknown): number {
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(BigInt(value) / 1_000_000n);
  const n = Number(value);
  return Math.floor(Math.round(n / 1_000) / 1_000);
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url.replace(/apiKey=[^&]*/, 'apiKey=***')} -> ${res.status}`);
  // Nanosecond timestamps exceed 2^53: kept as strings so they convert exactly.
  return JSON.parse((await res.text()).replace(/"sip_timestamp":\s*(\d+)/g, '"sip_timestamp":"$1"'));
}
