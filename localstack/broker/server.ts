/**
 * The broker simulator: a local stand-in for a retail broker's trading API (modelled on Alpaca's v2:
 * account, positions, orders by id and by client order id, submit, cancel, replace, clock, calendar,
 * and the `trade_updates` WebSocket), so the live broker adapter is exercised over real HTTP and a
 * real WebSocket. Accounts are separate per API key (a shared simulator on the stage serves every
 * checkout without mixing them); `/_control` creates accounts and turns the fault knobs.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { addDays, closeTime, isTradingDay } from '../../lambdas/market/calendar';
import { easternParts, nextSessionChange, sessionAt } from '../../lambdas/trading/market-hours';
import {
  type AccountSetup,
  activityJson,
  FAULT_KINDS,
  type FaultKind,
  type Frame,
  isOpenStatus,
  orderJson,
  REJECT_REASONS,
  SimAccount,
  SimError,
} from './account';

export interface BrokerSimOptions {
  readonly port?: number;
  readonly host?: string;
  /** Accounts created at start (the stage's default key). */
  readonly accounts?: readonly AccountSetup[];
  /** WebSocket ping interval (the stream's heartbeat). */
  readonly heartbeatMs?: number;
}

export interface BrokerSim {
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  account(keyId: string): SimAccount | undefined;
  close(): Promise<void>;
}

const ORDER_BY_ID = /^\/v2\/orders\/([^/:]+)$/;
const POSITION = /^\/v2\/positions\/([^/]+)$/;
const CONTROL_ACCOUNT = /^\/_control\/accounts\/([^/]+)$/;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    const value = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new HttpError(422, 40010000, 'request body must be a JSON object');
  }
}

function clockJson(ms: number): Record<string, unknown> {
  const session = sessionAt(ms);
  let nextOpen = ms;
  let nextClose = ms;
  for (let t = ms, i = 0; i < 40; i++) {
    const c = nextSessionChange(t);
    if (c.session === 'open' && nextOpen === ms) nextOpen = c.at;
    if (c.session === 'after-hours' && nextClose === ms) nextClose = c.at;
    if (nextOpen !== ms && nextClose !== ms) break;
    t = c.at;
  }
  return {
    timestamp: new Date(ms).toISOString(),
    is_open: session === 'open',
    next_open: new Date(nextOpen).toISOString(),
    next_close: new Date(nextClose).toISOString(),
  };
}

function calendarJson(start: string, end: string): Record<string, unknown>[] {
  const days: Record<string, unknown>[] = [];
  for (let d = start, i = 0; d <= end && i < 400; d = addDays(d, 1), i++) {
    if (!isTradingDay(d)) continue;
    const close = closeTime(d) ?? '16:00';
    days.push({
      date: d,
      open: '09:30',
      close,
      session_open: '0400',
      session_close: close === '13:00' ? '1700' : '2000',
    });
  }
  return days;
}

export async function startBrokerSim(options: BrokerSimOptions = {}): Promise<BrokerSim> {
  const accounts = new Map<string, SimAccount>();
  const streams = new Map<string, WebSocket>();
  /** Sockets of requests accepted and never answered (`timeout`), destroyed at close. */
  const held = new Set<Socket>();
  /**
   * Stream handshakes (HTTP upgrades to /stream) still to be held: accepted over TCP and never
   * answered (`POST /_control/stream {"holdHandshakes": N}`; simulator-wide, since the key is only
   * sent once the WebSocket is open).
   */
  let holdHandshakes = 0;
  /** Reconnects refused until (account clock ms), after a `disconnect` fault with a duration. */
  const refuseStreamUntil = new Map<string, number>();

  const send = (account: SimAccount, message: unknown, counted = true): boolean => {
    const ws = streams.get(account.keyId);
    if (!ws || ws.readyState !== ws.OPEN) {
      if (counted) account.count('frames_dropped_no_stream');
      return false;
    }
    ws.send(JSON.stringify(message));
    if (counted) account.count('frames_sent');
    return true;
  };

  const wire = (account: SimAccount): SimAccount => {
    account.emit = (frame: Frame) => {
      const data: Record<string, unknown> = {
        event: frame.event,
        timestamp: account.iso(),
        order: orderJson(frame.order),
      };
      if (frame.execution_id !== undefined) {
        data.execution_id = frame.execution_id;
        data.price = String(frame.price);
        data.qty = String(frame.qty);
        data.position_qty = String(frame.position_qty);
      }
      send(account, { stream: 'trade_updates', data });
    };
    accounts.set(account.keyId, account);
    return account;
  };
  for (const setup of options.accounts ?? []) wire(new SimAccount(setup));

  const dropStream = (keyId: string) => {
    const ws = streams.get(keyId);
    if (ws) {
      streams.delete(keyId);
      ws.terminate();
    }
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };

  const authenticate = (req: IncomingMessage): SimAccount => {
    const key = req.headers['apca-api-key-id'];
    const secret = req.headers['apca-api-secret-key'];
    const account = typeof key === 'string' ? accounts.get(key) : undefined;
    if (!account || account.secret !== secret)
      throw new HttpError(401, 40110000, 'request is not authorized');
    return account;
  };

  const rateHeaders = (account: SimAccount): Record<string, string> => {
    const now = account.now();
    if (now - account.rate.windowStart >= 60_000 || now < account.rate.windowStart) {
      account.rate.windowStart = now;
      account.rate.count = 0;
    }
    account.rate.count += 1;
    return {
      'X-RateLimit-Limit': String(account.rateLimitPerMinute),
      'X-RateLimit-Remaining': String(Math.max(0, account.rateLimitPerMinute - account.rate.count)),
      'X-RateLimit-Reset': String(Math.ceil((account.rate.windowStart + 60_000) / 1000)),
    };
  };

  async function trading(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const account = authenticate(req);
    const path = url.pathname;
    account.count(`${req.method} ${path.replace(ORDER_BY_ID, '/v2/orders/{id}')}`);
    if (account.takeFault('auth')) throw new HttpError(401, 40110000, 'request is not authorized');
    if (account.latencyMs > 0) await new Promise((r) => setTimeout(r, account.latencyMs));
    const headers = rateHeaders(account);
    const storm = account.takeFault('http429');
    if (storm || account.rate.count > account.rateLimitPerMinute) {
      const reset = storm?.until ?? account.rate.windowStart + 60_000;
      account.count('http429');
      return json(
        res,
        429,
        { code: 42910000, message: 'rate limit exceeded' },
        { ...headers, 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String(Math.ceil(reset / 1000)) },
      );
    }
    if (account.takeFault('maintenance')) {
      account.count('maintenance');
      return json(
        res,
        503,
        { code: 50300000, message: 'service unavailable: scheduled maintenance' },
        headers,
      );
    }
    if (account.takeFault('server_error'))
      return json(res, 500, { code: 50000000, message: 'internal server error' }, headers);
    const body = req.method === 'POST' || req.method === 'PATCH' ? await readBody(req) : {};
    const cid = typeof body.client_order_id === 'string' ? body.client_order_id : undefined;

    /** Ambiguity knobs for order requests: processed, then never answered, cut, or answered garbage. */
    const answerOrder = (status: number, value: unknown) => {
      const about = cid ?? (value as { client_order_id?: string } | undefined)?.client_order_id;
      if (account.takeFault('timeout', about)) {
        account.count('timeouts');
        held.add(req.socket);
        return; // accepted, never answered: the socket stays open until the client gives up
      }
      if (account.takeFault('disconnect', about)) {
        account.count('disconnects');
        dropStream(account.keyId);
        req.socket.destroy();
        return;
      }
      if (account.takeFault('invalid', about)) {
        account.count('invalid');
        const text = JSON.stringify(value);
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(text.slice(0, Math.max(1, Math.floor(text.length / 3))));
        return;
      }
      json(res, status, value, headers);
    };

    if (path === '/v2/account' && req.method === 'GET') {
      let longValue = 0;
      let shortValue = 0;
      for (const [s, p] of account.positions) {
        const v = p.qty * (account.prices.get(s) ?? p.avgPrice);
        if (v > 0) longValue += v;
        else shortValue += v;
      }
      const eq = account.equity();
      return json(
        res,
        200,
        {
          id: account.id,
          account_number: account.keyId,
          status: 'ACTIVE',
          currency: 'USD',
          cash: String(account.cash),
          buying_power: String(Math.max(0, account.cash)),
          equity: String(eq),
          portfolio_value: String(eq),
          long_market_value: String(longValue),
          short_market_value: String(shortValue),
          pattern_day_trader: false,
          trading_blocked: false,
          daytrade_count: 0,
        },
        headers,
      );
    }
    if (path === '/v2/positions' && req.method === 'GET') {
      return json(
        res,
        200,
        [...account.positions].map(([symbol, p]) => positionJson(account, symbol, p)),
        headers,
      );
    }
    if (
      (path === '/v2/account/activities' || path === '/v2/account/activities/FILL') &&
      req.method === 'GET'
    ) {
      // Alpaca's trade history: FILL activities, newest first unless direction=asc, paged by
      // page_size (max 100) and page_token (the last id of the previous page).
      const types = url.searchParams.get('activity_types');
      if (path.endsWith('/activities') && types !== null && !types.split(',').includes('FILL'))
        return json(res, 200, [], headers);
      const asc = url.searchParams.get('direction') === 'asc';
      const size = Math.min(100, Math.max(1, Number(url.searchParams.get('page_size') ?? 100) || 100));
      const token = url.searchParams.get('page_token');
      const after = url.searchParams.get('after');
      const until = url.searchParams.get('until');
      let list = [...account.activities].sort((a, b) => a.id.localeCompare(b.id));
      if (!asc) list.reverse();
      if (after) list = list.filter((a) => a.transaction_time > after);
      if (until) list = list.filter((a) => a.transaction_time < until);
      if (token) list = list.filter((a) => (asc ? a.id > token : a.id < token));
      return json(res, 200, list.slice(0, size).map(activityJson), headers);
    }
    const pos = POSITION.exec(path);
    if (pos && req.method === 'GET') {
      const symbol = decodeURIComponent(pos[1] as string);
      const p = account.positions.get(symbol);
      if (!p) throw new HttpError(404, 40410000, 'position does not exist');
      return json(res, 200, positionJson(account, symbol, p), headers);
    }
    if (path === '/v2/orders' && req.method === 'GET') {
      const status = url.searchParams.get('status') ?? 'open';
      const limit = Math.min(500, Number(url.searchParams.get('limit') ?? 50) || 50);
      const after = url.searchParams.get('after');
      const all = [...account.orders.values()]
        .filter((o) => status === 'all' || (status === 'open') === isOpenStatus(o.status))
        .filter((o) => !after || o.created_at > after)
        .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id))
        .slice(0, limit);
      return json(res, 200, all.map(orderJson), headers);
    }
    if (path === '/v2/orders:by_client_order_id' && req.method === 'GET') {
      const o = account.orderByClientId(url.searchParams.get('client_order_id') ?? '');
      if (!o) throw new HttpError(404, 40410000, 'order not found');
      return json(res, 200, orderJson(o), headers);
    }
    if (path === '/v2/orders' && req.method === 'POST') {
      const reject = account.takeFault('reject', cid);
      const scripted = cid ? account.pendingRejects.get(cid) : undefined;
      if (scripted !== undefined && cid) account.pendingRejects.delete(cid);
      if (reject || scripted !== undefined) {
        const known = REJECT_REASONS[(reject?.reason ?? 'buying_power') as keyof typeof REJECT_REASONS];
        const message = scripted ?? known?.message ?? (reject?.reason as string);
        account.count('rejects');
        return json(res, 403, { code: known?.code ?? 40310000, message }, headers);
      }
      const o = account.submit(body);
      return answerOrder(200, orderJson(o));
    }
    const byId = ORDER_BY_ID.exec(path);
    if (byId) {
      const id = decodeURIComponent(byId[1] as string);
      if (req.method === 'GET') {
        const o = account.order(id);
        if (!o) throw new HttpError(404, 40410000, 'order not found');
        return json(res, 200, orderJson(o), headers);
      }
      if (req.method === 'DELETE') {
        account.cancel(id);
        res.writeHead(204, headers);
        res.end();
        return;
      }
      if (req.method === 'PATCH') {
        const n = account.replace(id, body);
        return answerOrder(200, orderJson(n));
      }
    }
    if (path === '/v2/clock' && req.method === 'GET')
      return json(res, 200, clockJson(account.now()), headers);
    if (path === '/v2/calendar' && req.method === 'GET') {
      const today = easternParts(account.now()).date;
      const start = url.searchParams.get('start') ?? today;
      const end = url.searchParams.get('end') ?? addDays(today, 30);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(start) || !/^\d{4}-\d{2}-\d{2}$/.test(end))
        throw new HttpError(422, 40010000, 'start and end must be YYYY-MM-DD');
      return json(res, 200, calendarJson(start, end), headers);
    }
    throw new HttpError(404, 40410000, `no route ${req.method} ${path}`);
  }

  function control(account: SimAccount | undefined, keyId: string, body: Record<string, unknown>): unknown {
    if (!account) throw new HttpError(404, 40410000, `no account ${keyId}`);
    const out: Record<string, unknown> = {};
    if ('clock' in body) account.clockMs = body.clock === null ? null : Date.parse(String(body.clock));
    if (typeof body.latencyMs === 'number') account.latencyMs = body.latencyMs;
    if (typeof body.partialFills === 'number')
      account.partialFills = Math.max(1, Math.floor(body.partialFills));
    if (typeof body.rateLimitPerMinute === 'number') account.rateLimitPerMinute = body.rateLimitPerMinute;
    if (body.fillMode === 'immediate' || body.fillMode === 'none') account.fill = body.fillMode;
    if (body.clearFaults === true) {
      account.faults = [];
      refuseStreamUntil.delete(account.keyId);
    }
    if (body.fault && typeof body.fault === 'object') {
      const f = body.fault as Record<string, unknown>;
      const kind = f.kind as FaultKind;
      if (!FAULT_KINDS.includes(kind))
        throw new HttpError(422, 40010000, `fault.kind must be one of ${FAULT_KINDS.join(', ')}`);
      const fault = account.addFault(kind, {
        ...(typeof f.durationSeconds === 'number' ? { durationSeconds: f.durationSeconds } : {}),
        ...(typeof f.count === 'number' ? { count: f.count } : {}),
        ...(typeof f.clientOrderId === 'string' ? { clientOrderId: f.clientOrderId } : {}),
        ...(typeof f.reason === 'string' ? { reason: f.reason } : {}),
      });
      if (kind === 'disconnect' && fault.clientOrderId === null) {
        // The stream drops now; with a duration, reconnects are refused until it ends.
        account.faults = account.faults.filter((x) => x !== fault);
        dropStream(account.keyId);
        if (fault.until !== null) refuseStreamUntil.set(account.keyId, fault.until);
      }
      if (kind === 'auth' && fault.until !== null) dropStream(account.keyId);
    }
    if (body.prices && typeof body.prices === 'object')
      account.setPrices(body.prices as Record<string, number>);
    if (body.fill && typeof body.fill === 'object') {
      const f = body.fill as { clientOrderId: string; qty: number; price: number };
      out.filled = account.scriptedFill(f.clientOrderId, f.qty, f.price);
    }
    if (body.reject && typeof body.reject === 'object') {
      const r = body.reject as { clientOrderId: string; reason: string };
      account.scriptedReject(r.clientOrderId, r.reason);
    }
    if (Array.isArray(body.expire)) account.expire(body.expire as string[], body.expireFrames === true);
    if (body.diverge && typeof body.diverge === 'object') {
      const d = body.diverge as Record<string, Record<string, unknown>>;
      if (d.fill)
        out.filled = account.scriptedFill(
          String(d.fill.clientOrderId),
          Number(d.fill.qty),
          Number(d.fill.price),
          true,
        );
      if (d.position)
        account.divergePosition(
          String(d.position.symbol),
          Number(d.position.qty),
          Number(d.position.avgPrice),
        );
      if (d.cash !== undefined) account.cash += Number(d.cash);
      if (d.correctFill)
        out.corrected = account.correctFill(String(d.correctFill.clientOrderId), Number(d.correctFill.price));
    }
    if (body.barrier !== undefined) {
      // Replay sync: every frame sent before the barrier has reached the client when the barrier does.
      out.barrier = send(account, { stream: '_barrier', data: { id: body.barrier } }, false);
    }
    return { ...out, ...accountState(account) };
  }

  function accountState(account: SimAccount): Record<string, unknown> {
    return {
      keyId: account.keyId,
      clock: account.clockMs === null ? null : new Date(account.clockMs).toISOString(),
      cash: account.cash,
      positions: Object.fromEntries(account.positions),
      orders: [...account.orders.values()].map(orderJson),
      activities: account.activities.map(activityJson),
      faults: account.faults,
      streamOpen: streams.get(account.keyId)?.readyState === 1,
      stats: account.stats,
    };
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const handle = async () => {
      if (url.pathname === '/_health')
        return json(res, 200, { ok: true, service: 'broker-sim', accounts: accounts.size });
      if (url.pathname === '/_control/accounts' && req.method === 'POST') {
        const body = await readBody(req);
        const keyId =
          typeof body.keyId === 'string' ? body.keyId : `PK${randomBytes(8).toString('hex').toUpperCase()}`;
        const secret = typeof body.secret === 'string' ? body.secret : randomBytes(20).toString('hex');
        dropStream(keyId);
        const account = wire(
          new SimAccount({
            keyId,
            secret,
            ...(typeof body.cash === 'number' ? { cash: body.cash } : {}),
            ...(body.positions && typeof body.positions === 'object'
              ? { positions: body.positions as AccountSetup['positions'] }
              : {}),
            ...(body.fill === 'none' || body.fill === 'immediate' ? { fill: body.fill } : {}),
            ...(typeof body.rateLimitPerMinute === 'number'
              ? { rateLimitPerMinute: body.rateLimitPerMinute }
              : {}),
          }),
        );
        if (typeof body.clock === 'string') account.clockMs = Date.parse(body.clock);
        return json(res, 200, { keyId, secret });
      }
      if (url.pathname === '/_control/stream' && req.method === 'POST') {
        const body = await readBody(req);
        if (typeof body.holdHandshakes === 'number') holdHandshakes = Math.max(0, body.holdHandshakes);
        return json(res, 200, { holdHandshakes });
      }
      const ctl = CONTROL_ACCOUNT.exec(url.pathname);
      if (ctl) {
        const keyId = decodeURIComponent(ctl[1] as string);
        const account = accounts.get(keyId);
        if (req.method === 'GET') {
          if (!account) throw new HttpError(404, 40410000, `no account ${keyId}`);
          return json(res, 200, accountState(account));
        }
        if (req.method === 'POST') return json(res, 200, control(account, keyId, await readBody(req)));
        if (req.method === 'DELETE') {
          dropStream(keyId);
          accounts.delete(keyId);
          res.writeHead(204);
          res.end();
          return;
        }
      }
      if (url.pathname.startsWith('/v2/')) return trading(req, res, url);
      throw new HttpError(404, 40410000, `no route ${req.method} ${url.pathname}`);
    };
    handle().catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (error instanceof HttpError || error instanceof SimError)
        return json(res, error.status, { code: error.code, message: error.message });
      json(res, 500, { code: 50000000, message: (error as Error).message });
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/stream') {
      socket.destroy();
      return;
    }
    if (holdHandshakes > 0) {
      // The TCP connection is accepted, the WebSocket handshake is never answered.
      holdHandshakes -= 1;
      held.add(socket as Socket);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      let account: SimAccount | undefined;
      const reply = (msg: unknown) => ws.send(JSON.stringify(msg));
      ws.on('message', (raw) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(raw.toString()) as Record<string, unknown>;
        } catch {
          reply({ stream: 'error', data: { message: 'invalid JSON' } });
          return;
        }
        if (msg.action === 'auth' || msg.action === 'authenticate') {
          const candidate = accounts.get(
            String(msg.key ?? (msg.data as Record<string, unknown> | undefined)?.key_id),
          );
          const secret = msg.secret ?? (msg.data as Record<string, unknown> | undefined)?.secret_key;
          const refused = candidate ? (refuseStreamUntil.get(candidate.keyId) ?? 0) > candidate.now() : false;
          if (refused) {
            // The stream is down (a `disconnect` fault with a duration): try again later, not an auth failure.
            reply({ stream: 'error', data: { message: 'service unavailable: try again later' } });
            ws.close(1013, 'unavailable');
            return;
          }
          if (!candidate || candidate.secret !== secret || candidate.takeFault('auth', undefined, false)) {
            reply({ stream: 'authorization', data: { action: 'authenticate', status: 'unauthorized' } });
            ws.close(1008, 'unauthorized');
            return;
          }
          account = candidate;
          // Only one live trade-updates stream per key: a new one replaces the old.
          const old = streams.get(account.keyId);
          if (old && old !== ws) old.close(1000, 'replaced by a newer connection');
          streams.set(account.keyId, ws);
          reply({ stream: 'authorization', data: { action: 'authenticate', status: 'authorized' } });
          return;
        }
        if (msg.action === 'listen') {
          if (!account) {
            reply({ stream: 'authorization', data: { action: 'listen', status: 'unauthorized' } });
            return;
          }
          reply({ stream: 'listening', data: { streams: ['trade_updates'] } });
        }
      });
      ws.on('close', () => {
        if (account && streams.get(account.keyId) === ws) streams.delete(account.keyId);
      });
    });
  });

  const heartbeat = setInterval(() => {
    for (const ws of streams.values()) if (ws.readyState === ws.OPEN) ws.ping();
  }, options.heartbeatMs ?? 1_000);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  return {
    url: `http://${host}:${port}`,
    wsUrl: `ws://${host}:${port}/stream`,
    port,
    account: (keyId) => accounts.get(keyId),
    close: async () => {
      clearInterval(heartbeat);
      for (const ws of streams.values()) ws.terminate();
      for (const s of held) s.destroy();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function positionJson(account: SimAccount, symbol: string, p: { qty: number; avgPrice: number }) {
  const price = account.prices.get(symbol) ?? p.avgPrice;
  return {
    symbol,
    asset_class: 'us_equity',
    qty: String(p.qty),
    avg_entry_price: String(Number(p.avgPrice.toFixed(6))),
    side: p.qty >= 0 ? 'long' : 'short',
    market_value: String(p.qty * price),
    current_price: String(price),
    unrealized_pl: String((price - p.avgPrice) * p.qty),
  };
}
