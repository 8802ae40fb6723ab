/**
 * The provider's stocks WebSocket on the local stage (`/stocks`), plus the REST endpoints a client
 * fills a gap from (`/v3/trades/{sym}`, `/v2/aggs/ticker/{sym}/range/1/minute/{from}/{to}`), serving
 * the synthetic market of scenario.ts at a chosen speed. Protocol as the provider's: a `connected`
 * status on open, `{"action":"auth","params":KEY}`, `{"action":"subscribe","params":"T.*,AM.AAPL"}`,
 * every frame a JSON array. Fault knobs reproduce the provider's known defects and failure modes:
 * duplicate frames, reordered events, disconnects, the reader-too-slow kill, bursts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { RealtimeMarket, type RealtimeProfile } from './scenario';

export interface FeedFaults {
  /** Every Nth frame is sent twice (byte-identical duplicates across frames). */
  readonly duplicateEvery?: number;
  /** Events inside each frame are sent in reverse order. */
  readonly reorder?: boolean;
  /** Each connection is closed (code 1006-like: terminated) after this many data frames. */
  readonly disconnectAfterFrames?: number;
  /** A connection whose unsent bytes exceed this is killed, as the provider kills slow readers. */
  readonly slowReaderBytes?: number;
  /** The next N frames go out at once, ignoring the pace. */
  readonly burstFrames?: number;
}

export interface FeedOptions {
  readonly port?: number;
  readonly host?: string;
  readonly profile: RealtimeProfile;
  /** Market milliseconds per real millisecond (60 = one market minute per second). */
  readonly speed: number;
  /** Epoch ms of the first market minute. */
  readonly startAt: number;
  readonly faults?: FeedFaults;
  /** Minutes of market to serve; the feed then stays connected and silent. */
  readonly minutes?: number;
  /**
   * Benchmarks: the market clock starts at `POST /start` (ignoring `startAt`), so every event goes to
   * a router whose clients are already subscribed.
   */
  readonly startOnRequest?: boolean;
  /**
   * Benchmarks: each event sent carries `bench_sent_at` (epoch ms, microsecond fraction, taken as its
   * frame is written): a client measures feed send -> client receipt across processes.
   */
  readonly stampSentAt?: boolean;
}

export interface FeedStats {
  connections: number;
  authenticated: number;
  framesSent: number;
  eventsSent: number;
  disconnects: number;
  slowReaderKills: number;
  restRequests: number;
  /** Events sent per provider event type (`T`, `Q`, `AM`, `FMV`), each counted once per frame sent. */
  eventsByEv: Record<string, number>;
  /** Events sent again by the `duplicateEvery` fault (not in `eventsSent`). */
  duplicateEvents: number;
}

export interface Feed {
  readonly port: number;
  readonly wsUrl: string;
  readonly restUrl: string;
  readonly stats: FeedStats;
  /** Market time served so far (epoch ms). */
  marketNow(): number;
  setFaults(faults: FeedFaults): void;
  /** Keys (sym|x|i) of every trade the market produced with t <= untilT, sent or not. */
  tradeKeys(untilT: number): Set<string>;
  /** Closes every client connection now (a provider-side disconnect). */
  dropConnections(): void;
  close(): Promise<void>;
}

interface Conn {
  readonly socket: WebSocket;
  authed: boolean;
  readonly subs: Set<string>;
  frames: number;
}

type Event = Record<string, unknown> & { ev: string; sym: string };

export async function startFeed(options: FeedOptions): Promise<Feed> {
  const market = new RealtimeMarket(options.profile);
  const stats: FeedStats = {
    connections: 0,
    authenticated: 0,
    framesSent: 0,
    eventsSent: 0,
    disconnects: 0,
    slowReaderKills: 0,
    restRequests: 0,
    eventsByEv: {},
    duplicateEvents: 0,
  };
  let faults: FeedFaults = options.faults ?? {};
  let burstLeft = faults.burstFrames ?? 0;
  const conns = new Set<Conn>();
  const trades = new Map<string, Event[]>();
  const bars = new Map<string, Event[]>();
  const pending: { t: number; frame: Event[] }[] = [];
  let nextMinute = 0;
  const lastMinute = options.minutes ?? Number.POSITIVE_INFINITY;
  let realStart = Date.now();
  let startAt = options.startAt;
  let started = !options.startOnRequest;
  let served = startAt;
  const marketNow = (): number => startAt + (Date.now() - realStart) * options.speed;

  const remember = (e: Event): void => {
    const store = e.ev === 'T' ? trades : e.ev === 'AM' ? bars : null;
    if (!store) return;
    const list = store.get(e.sym) ?? [];
    list.push(e);
    if (list.length > 20_000) list.splice(0, list.length - 20_000);
    store.set(e.sym, list);
  };

  const wanted = (c: Conn, e: Event): boolean => c.subs.has(`${e.ev}.*`) || c.subs.has(`${e.ev}.${e.sym}`);

  const sendFrame = (frame: Event[]): void => {
    for (const e of frame) remember(e);
    const ordered = faults.reorder ? [...frame].reverse() : frame;
    for (const c of conns) {
      if (!c.authed || c.socket.readyState !== c.socket.OPEN) continue;
      const mine = ordered.filter((e) => wanted(c, e));
      if (mine.length === 0) continue;
      if (faults.slowReaderBytes !== undefined && c.socket.bufferedAmount > faults.slowReaderBytes) {
        stats.slowReaderKills += 1;
        c.socket.close(1008, 'reader too slow: server buffer full');
        continue;
      }
      if (options.stampSentAt) {
        const at = performance.timeOrigin + performance.now();
        for (const e of mine) e.bench_sent_at = at;
      }
      const text = JSON.stringify(mine);
      c.socket.send(text);
      c.frames += 1;
      stats.framesSent += 1;
      stats.eventsSent += mine.length;
      for (const e of mine) stats.eventsByEv[e.ev] = (stats.eventsByEv[e.ev] ?? 0) + 1;
      if (faults.duplicateEvery && stats.framesSent % faults.duplicateEvery === 0) {
        c.socket.send(text);
        stats.framesSent += 1;
        stats.duplicateEvents += mine.length;
      }
      if (faults.disconnectAfterFrames !== undefined && c.frames >= faults.disconnectAfterFrames) {
        stats.disconnects += 1;
        c.socket.terminate();
      }
    }
  };

  const pump = (): void => {
    if (!started) return;
    const now = marketNow();
    while (nextMinute < lastMinute && startAt + nextMinute * 60_000 <= now + 61_000) {
      const start = startAt + nextMinute * 60_000;
      for (const f of market.minute(start)) pending.push({ t: start + f.at, frame: f.frame as Event[] });
      pending.sort((a, b) => a.t - b.t);
      nextMinute += 1;
    }
    while (pending.length > 0) {
      const head = pending[0] as { t: number; frame: Event[] };
      if (head.t > now && burstLeft <= 0) break;
      if (head.t > now) burstLeft -= 1;
      pending.shift();
      served = Math.max(served, head.t);
      sendFrame(head.frame);
    }
  };
  const timer = setInterval(pump, 5);

  const http: Server = createServer((req, res) => rest(req, res));
  const wss = new WebSocketServer({ server: http, path: '/stocks' });
  wss.on('connection', (socket) => {
    stats.connections += 1;
    const conn: Conn = { socket, authed: false, subs: new Set(), frames: 0 };
    conns.add(conn);
    socket.send(JSON.stringify([{ ev: 'status', status: 'connected', message: 'Connected Successfully' }]));
    socket.on('message', (data) => {
      let msg: { action?: unknown; params?: unknown };
      try {
        msg = JSON.parse(String(data));
      } catch {
        socket.send(JSON.stringify([{ ev: 'status', status: 'error', message: 'invalid JSON' }]));
        return;
      }
      if (msg.action === 'auth') {
        if (typeof msg.params === 'string' && msg.params.length > 0) {
          conn.authed = true;
          stats.authenticated += 1;
          socket.send(JSON.stringify([{ ev: 'status', status: 'auth_success', message: 'authenticated' }]));
        } else {
          socket.send(
            JSON.stringify([{ ev: 'status', status: 'auth_failed', message: 'authentication failed' }]),
          );
          socket.close(1008, 'auth failed');
        }
        return;
      }
      if (!conn.authed) {
        socket.send(JSON.stringify([{ ev: 'status', status: 'error', message: 'not authorized' }]));
        return;
      }
      if ((msg.action === 'subscribe' || msg.action === 'unsubscribe') && typeof msg.params === 'string') {
        for (const p of msg.params
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          if (msg.action === 'subscribe') conn.subs.add(p);
          else conn.subs.delete(p);
          socket.send(
            JSON.stringify([{ ev: 'status', status: 'success', message: `${msg.action}d to: ${p}` }]),
          );
        }
      }
    });
    socket.on('close', () => conns.delete(conn));
    socket.on('error', () => conns.delete(conn));
  });

  function rest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://feed');
    if (url.pathname === '/start' && req.method === 'POST') {
      // Benchmarks (startOnRequest): the market starts now.
      if (!started) {
        started = true;
        realStart = Date.now();
        startAt = realStart;
        served = startAt;
      }
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/stats') {
      // The feed's own counters (not a provider endpoint): what a benchmark compares deliveries with.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...stats,
          started,
          done: started && nextMinute >= lastMinute && pending.length === 0,
        }),
      );
      return;
    }
    stats.restRequests += 1;
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!url.searchParams.get('apiKey')) {
      json(401, { status: 'ERROR', error: 'apiKey required' });
      return;
    }
    const tradesPath = /^\/v3\/trades\/([A-Z0-9.]+)$/.exec(url.pathname);
    if (tradesPath) {
      // As the provider: timestamps in nanoseconds, `limit` (default 1,000, at most 50,000), `order`
      // (default desc), and a `next_url` (without the key) while more results remain.
      const sym = tradesPath[1] as string;
      const nanos = (name: string, fallback: bigint): bigint => {
        const v = url.searchParams.get(name);
        return v && /^\d+$/.test(v) ? BigInt(v) : fallback;
      };
      const gte = nanos('timestamp.gte', 0n);
      const lte = nanos('timestamp.lte', 2n ** 63n);
      const limit = Math.min(50_000, Math.max(1, Number(url.searchParams.get('limit') ?? 1_000) || 1_000));
      const asc = url.searchParams.get('order') === 'asc';
      // The cursor is the last item returned (its time and how many of that time were returned), not
      // an index: the store drops its oldest items while a client pages.
      const [ct, cn] = (url.searchParams.get('cursor') ?? '').split('.').map(Number) as [number, number];
      const matching = (trades.get(sym) ?? [])
        .filter((e) => {
          const ns = BigInt(e.t as number) * 1_000_000n;
          return ns >= gte && ns <= lte;
        })
        .sort((a, b) => (asc ? 1 : -1) * ((a.t as number) - (b.t as number)));
      let start = 0;
      if (Number.isFinite(ct)) {
        while (
          start < matching.length &&
          (asc ? (matching[start]?.t as number) < ct : (matching[start]?.t as number) > ct)
        )
          start += 1;
        start += cn || 0;
      }
      const page = matching.slice(start, start + limit);
      const last = page.at(-1);
      let sameT = 0;
      if (last)
        for (let k = start; k < start + page.length; k += 1) if (matching[k]?.t === last.t) sameT += 1;
      if (last && Number.isFinite(ct) && last.t === ct) sameT += cn || 0;
      // Nanosecond integers written exactly (a JS number past 2^53 would be rounded in the text).
      const results = page.map((e) => ({
        sip_timestamp: `${e.t as number}000000`,
        exchange: e.x,
        id: e.i,
        price: e.p,
        size: e.s,
        conditions: e.c,
        tape: e.z,
        sequence_number: e.q,
      }));
      const body: Record<string, unknown> = { status: 'OK', results };
      if (last && start + limit < matching.length) {
        const next = new URL(url.toString());
        next.searchParams.delete('apiKey');
        next.searchParams.set('cursor', `${last.t as number}.${sameT}`);
        body.next_url = `http://${req.headers.host ?? '127.0.0.1'}${next.pathname}${next.search}`;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body).replace(/"sip_timestamp":"(\d+)"/g, '"sip_timestamp":$1'));
      return;
    }
    const aggsPath = /^\/v2\/aggs\/ticker\/([A-Z0-9.]+)\/range\/1\/minute\/(\d+)\/(\d+)$/.exec(url.pathname);
    if (aggsPath) {
      const [, sym, from, to] = aggsPath as unknown as [string, string, string, string];
      const results = (bars.get(sym) ?? [])
        .filter((e) => (e.s as number) >= Number(from) && (e.s as number) <= Number(to))
        .map((e) => ({ o: e.o, h: e.h, l: e.l, c: e.c, v: e.v, vw: e.vw, t: e.s, n: 1 }));
      json(200, { ticker: sym, status: 'OK', resultsCount: results.length, results });
      return;
    }
    json(404, { status: 'NOT_FOUND' });
  }

  await new Promise<void>((resolve) => http.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    port,
    wsUrl: `ws://127.0.0.1:${port}/stocks`,
    restUrl: `http://127.0.0.1:${port}`,
    stats,
    marketNow: () => served,
    tradeKeys(untilT) {
      const keys = new Set<string>();
      for (const [sym, list] of trades) {
        for (const e of list) if ((e.t as number) <= untilT) keys.add(`${sym}|${e.x}|${e.i}`);
      }
      return keys;
    },
    setFaults(next) {
      faults = next;
      burstLeft = next.burstFrames ?? 0;
    },
    dropConnections() {
      for (const c of conns) {
        stats.disconnects += 1;
        c.socket.terminate();
      }
    },
    async close() {
      clearInterval(timer);
      for (const c of conns) c.socket.terminate();
      wss.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
