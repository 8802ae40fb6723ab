/**
 * The broker simulator process over raw HTTP and WebSocket (no adapter): Alpaca-shaped REST, the
 * trade-updates stream, API keys, rate-limit headers, and each fault knob's raw effect on the wire.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type SimProcess, startSimProcess } from '../support/broker-sim';

let sim: SimProcess;
beforeAll(async () => {
  sim = await startSimProcess();
});
afterAll(async () => {
  await sim.stop();
});

type Key = { keyId: string; secret: string };
const headers = (k: Key) => ({ 'APCA-API-KEY-ID': k.keyId, 'APCA-API-SECRET-KEY': k.secret });
async function call(k: Key, method: string, path: string, body?: unknown) {
  const r = await fetch(`${sim.url}${path}`, {
    method,
    headers: { ...headers(k), 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(1_500),
  });
  const text = await r.text();
  const parse = () => {
    try {
      return text ? (JSON.parse(text) as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  };
  return {
    status: r.status,
    headers: r.headers,
    text,
    body: parse(),
  };
}
const order = (cid: string, extra: Record<string, unknown> = {}) => ({
  symbol: 'AAPL',
  qty: '10',
  side: 'buy',
  type: 'market',
  time_in_force: 'day',
  client_order_id: cid,
  ...extra,
});

async function stream(
  k: Key,
): Promise<{ ws: WebSocket; frames: Record<string, unknown>[]; pings: () => number }> {
  const ws = new WebSocket(sim.wsUrl);
  const frames: Record<string, unknown>[] = [];
  let pings = 0;
  ws.on('ping', () => {
    pings += 1;
  });
  await new Promise((r) => ws.once('open', r));
  const authorized = new Promise<void>((resolve, reject) => {
    ws.once('close', (code) => reject(new Error(`stream closed (${code})`)));
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { stream: string; data: Record<string, unknown> };
      if (m.stream === 'authorization') (m.data.status === 'authorized' ? resolve : reject)();
      if (m.stream === 'trade_updates' || m.stream === '_barrier') frames.push(m as never);
    });
  });
  ws.send(JSON.stringify({ action: 'auth', key: k.keyId, secret: k.secret }));
  await authorized;
  ws.send(JSON.stringify({ action: 'listen', data: { streams: ['trade_updates'] } }));
  return { ws, frames, pings: () => pings };
}

const settle = async (k: Key, frames: Record<string, unknown>[]) => {
  const id = Math.random().toString(36).slice(2);
  await sim.control(k.keyId, { barrier: id });
  for (let i = 0; i < 100; i++) {
    if (frames.some((f) => (f.data as { id?: string }).id === id)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('barrier never arrived');
};
const events = (frames: Record<string, unknown>[]) =>
  frames.filter((f) => f.stream === 'trade_updates').map((f) => (f.data as { event: string }).event);

describe('broker simulator: REST and stream', () => {
  it('serves account, positions, orders (by id and client id), submit, cancel, replace, clock and calendar', async () => {
    const k = await sim.account({ cash: 50_000, clock: '2026-03-02T15:00:00Z' });
    const s = await stream(k);
    await sim.control(k.keyId, { prices: { AAPL: 100 } });

    const submitted = await call(k, 'POST', '/v2/orders', order('A1'));
    const resting = await call(k, 'POST', '/v2/orders', order('L1', { type: 'limit', limit_price: '90' }));
    const replaced = await call(k, 'PATCH', `/v2/orders/${resting.body?.id}`, {
      qty: '20',
      client_order_id: 'L1.r1',
    });
    const canceled = await call(k, 'DELETE', `/v2/orders/${replaced.body?.id}`);
    const again = await call(k, 'DELETE', `/v2/orders/${replaced.body?.id}`);
    await settle(k, s.frames);

    expect(submitted.status).toBe(200);
    expect(submitted.body).toMatchObject({
      client_order_id: 'A1',
      status: 'filled',
      filled_qty: '10',
      filled_avg_price: '100',
    });
    expect(submitted.headers.get('x-ratelimit-limit')).toBe('200');
    expect(Number(submitted.headers.get('x-ratelimit-remaining'))).toBeLessThan(200);
    expect(Number(submitted.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    expect(replaced.body).toMatchObject({ client_order_id: 'L1.r1', qty: '20', replaces: resting.body?.id });
    expect(canceled.status).toBe(204);
    expect(again).toMatchObject({ status: 422 });
    expect(events(s.frames)).toEqual(['new', 'fill', 'new', 'replaced', 'new', 'canceled']);
    const fill = s.frames[1]?.data as Record<string, unknown>;
    expect(fill).toMatchObject({ event: 'fill', price: '100', qty: '10', position_qty: '10' });
    expect(typeof fill.execution_id).toBe('string');
    expect((await call(k, 'GET', '/v2/orders:by_client_order_id?client_order_id=A1')).body).toMatchObject({
      id: submitted.body?.id,
    });
    expect((await call(k, 'GET', `/v2/orders/${resting.body?.id}`)).body).toMatchObject({
      status: 'replaced',
      replaced_by: replaced.body?.id,
    });
    expect((await call(k, 'GET', '/v2/orders?status=open')).body).toEqual([]);
    expect(((await call(k, 'GET', '/v2/orders?status=all')).body as unknown as unknown[]).length).toBe(3);
    expect((await call(k, 'GET', '/v2/positions')).body).toEqual([
      expect.objectContaining({ symbol: 'AAPL', qty: '10', avg_entry_price: '100' }),
    ]);
    expect((await call(k, 'GET', '/v2/positions/MSFT')).status).toBe(404);
    expect((await call(k, 'GET', '/v2/account')).body).toMatchObject({ cash: '49000', status: 'ACTIVE' });
    expect((await call(k, 'GET', '/v2/clock')).body).toEqual({
      timestamp: '2026-03-02T15:00:00.000Z',
      is_open: true,
      next_open: '2026-03-03T14:30:00.000Z',
      next_close: '2026-03-02T21:00:00.000Z',
    });
    const calendar = (await call(k, 'GET', '/v2/calendar?start=2026-11-25&end=2026-11-30'))
      .body as unknown as { date: string; close: string }[];
    expect(calendar.map((d) => `${d.date} ${d.close}`)).toEqual([
      '2026-11-25 16:00',
      '2026-11-27 13:00',
      '2026-11-30 16:00',
    ]);
    expect((await call(k, 'POST', '/v2/orders', order('A1'))).body).toMatchObject({
      code: 40010001,
      message: 'client_order_id must be unique',
    });
    expect((await call({ keyId: k.keyId, secret: 'wrong' }, 'GET', '/v2/account')).status).toBe(401);
    s.ws.close();
  });

  it('fault knobs: 429 storm with reset header, maintenance, auth, rejects with real reasons, invalid and never-answered responses', async () => {
    const k = await sim.account({ clock: '2026-03-02T15:00:00Z' });
    await sim.control(k.keyId, { prices: { AAPL: 100 }, fault: { kind: 'http429', durationSeconds: 5 } });
    const limited = await call(k, 'GET', '/v2/account');
    await sim.control(k.keyId, { clock: '2026-03-02T15:00:06Z' });
    const after = await call(k, 'GET', '/v2/account');
    await sim.control(k.keyId, { fault: { kind: 'maintenance', count: 1 } });
    const maintenance = await call(k, 'GET', '/v2/account');
    await sim.control(k.keyId, { fault: { kind: 'reject', reason: 'pdt' } });
    const pdt = await call(k, 'POST', '/v2/orders', order('R1'));
    await sim.control(k.keyId, { fault: { kind: 'reject', reason: 'buying_power' } });
    const bp = await call(k, 'POST', '/v2/orders', order('R2'));
    await sim.control(k.keyId, { fault: { kind: 'invalid', clientOrderId: 'I1' } });
    const invalid = await call(k, 'POST', '/v2/orders', order('I1'));
    await sim.control(k.keyId, { fault: { kind: 'timeout', clientOrderId: 'T1' } });
    const timeout = await call(k, 'POST', '/v2/orders', order('T1')).catch((e: Error) => e);
    await sim.control(k.keyId, { fault: { kind: 'disconnect', clientOrderId: 'D1' } });
    const cut = await call(k, 'POST', '/v2/orders', order('D1')).catch((e: Error) => e);
    await sim.control(k.keyId, { fault: { kind: 'auth', count: 1 } });
    const auth = await call(k, 'GET', '/v2/account');
    await sim.control(k.keyId, { fault: { kind: 'server_error', count: 1 } });
    const server = await call(k, 'GET', '/v2/account');

    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(limited.headers.get('x-ratelimit-reset'))).toBe(Date.parse('2026-03-02T15:00:05Z') / 1000);
    expect(after.status).toBe(200);
    expect(maintenance.status).toBe(503);
    expect(pdt).toMatchObject({
      status: 403,
      body: { code: 40310100, message: 'trade denied due to pattern day trading protection' },
    });
    expect(bp).toMatchObject({ status: 403, body: { message: 'insufficient buying power' } });
    expect(invalid.status).toBe(200);
    expect(() => JSON.parse(invalid.text)).toThrow();
    expect(timeout).toBeInstanceOf(Error);
    expect(cut).toBeInstanceOf(Error);
    expect(auth.status).toBe(401);
    expect(server.status).toBe(500);
    // Every ambiguous request was nevertheless accepted: the orders exist at the broker.
    for (const cid of ['I1', 'T1', 'D1'])
      expect(
        (await call(k, 'GET', `/v2/orders:by_client_order_id?client_order_id=${cid}`)).body,
      ).toMatchObject({ status: 'filled' });
    expect((await call(k, 'GET', '/v2/orders:by_client_order_id?client_order_id=R1')).status).toBe(404);
  });

  it('stream knobs: drop, lost fill with heartbeats continuing, fill racing a cancel, partial fills, divergence', async () => {
    const k = await sim.account({ clock: '2026-03-02T15:00:00Z', fill: 'none' });
    const s = await stream(k);
    await sim.control(k.keyId, { prices: { AAPL: 100 } });
    const o = await call(k, 'POST', '/v2/orders', order('F1'));
    await sim.control(k.keyId, { fault: { kind: 'lost_fill', clientOrderId: 'F1' } });
    await sim.control(k.keyId, { fill: { clientOrderId: 'F1', qty: 4, price: 100 } });
    const pingsBefore = s.pings();
    await new Promise((r) => setTimeout(r, 500));
    await sim.control(k.keyId, { fill: { clientOrderId: 'F1', qty: 2, price: 101 } });
    await settle(k, s.frames);
    expect(s.pings()).toBeGreaterThan(pingsBefore);
    expect(events(s.frames)).toEqual(['new', 'partial_fill']);
    expect(s.frames[1]?.data).toMatchObject({ qty: '2', order: { filled_qty: '6' } });

    await sim.control(k.keyId, { fault: { kind: 'fill_race_cancel', clientOrderId: 'F1' } });
    const cancel = await call(k, 'DELETE', `/v2/orders/${o.body?.id}`);
    await settle(k, s.frames);
    expect(cancel.status).toBe(422);
    expect(events(s.frames).slice(-1)).toEqual(['fill']);

    await sim.control(k.keyId, { fillMode: 'immediate', partialFills: 3 });
    await call(k, 'POST', '/v2/orders', order('P1', { qty: '9' }));
    await settle(k, s.frames);
    expect(events(s.frames).slice(-4)).toEqual(['new', 'partial_fill', 'partial_fill', 'fill']);

    await sim.control(k.keyId, { diverge: { position: { symbol: 'MSFT', qty: 7, avgPrice: 400 } } });
    const before = s.frames.length;
    await sim.control(k.keyId, { fillMode: 'none' });
    await call(k, 'POST', '/v2/orders', order('G1'));
    await sim.control(k.keyId, { diverge: { fill: { clientOrderId: 'G1', qty: 10, price: 99 } } });
    await settle(k, s.frames);
    expect(events(s.frames.slice(before))).toEqual(['new']); // the divergent fill said nothing
    expect((await call(k, 'GET', '/v2/positions/MSFT')).body).toMatchObject({ qty: '7' });
    expect((await call(k, 'GET', '/v2/orders:by_client_order_id?client_order_id=G1')).body).toMatchObject({
      status: 'filled',
    });

    const closed = new Promise((r) => s.ws.once('close', r));
    await sim.control(k.keyId, { fault: { kind: 'disconnect', durationSeconds: 30 } });
    await closed;
    await expect(stream(k)).rejects.toBeDefined();
    await sim.control(k.keyId, { clock: '2026-03-02T15:01:00Z' });
    const back = await stream(k);
    expect(back.ws.readyState).toBe(WebSocket.OPEN);
    back.ws.close();
  });
});
