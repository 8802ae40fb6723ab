import { describe, expect, it } from 'vitest';
import { ClientSession, type ClientTransport } from '../../../lambdas/market/realtime/client';
import { fmvConfidence } from '../../../lambdas/market/realtime/confidence';
import { Hub } from '../../../lambdas/market/realtime/hub';
import { BoundedQueue } from '../../../lambdas/market/realtime/queue';
import { quoteKey, Router } from '../../../lambdas/market/realtime/router';
import type {
  MessageKind,
  QuoteEvent,
  RouterChannel,
  SequencedMessage,
} from '../../../lambdas/market/realtime/types';
import { wireText } from '../../../lambdas/market/realtime/types';
import { WireCounter } from '../../../lambdas/realtime-router/wire-count';

const T0 = Date.UTC(2026, 2, 2, 14, 30, 0);

/** A transport whose network buffer the test controls. */
class FakeTransport implements ClientTransport {
  readonly sent: SequencedMessage[] = [];
  blocked = false;
  send(m: SequencedMessage): void {
    this.sent.push(m);
  }
  bufferedAmount(): number {
    return this.blocked ? Number.POSITIVE_INFINITY : 0;
  }
}

const small = { maxQueue: 10, highWater: 6, lowWater: 2, maxBufferedBytes: 1 };

function msg(channel: RouterChannel, kind: MessageKind, sym: string, offset: number): SequencedMessage {
  return { channel, kind, sym, data: { n: offset }, receivedAtMono: 0, epoch: 'e', offset };
}

const trade = (sym: string, i: string, t: number, p = 100, x = 4, q = 1) => ({
  ev: 'T',
  sym,
  x,
  i,
  p,
  s: 10,
  t,
  q,
  z: 3,
});

describe('BoundedQueue', () => {
  it('keeps FIFO order across wrap-around and refuses pushes when full', () => {
    const q = new BoundedQueue<number>(3);
    q.push(1);
    q.push(2);
    q.shift();
    q.push(3);
    q.push(4);

    const refused = q.push(5);

    expect(refused).toBe(false);
    expect([...q]).toEqual([2, 3, 4]);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([2, 3, 4, undefined]);
  });
});

describe('ClientSession slow-client policy', () => {
  it('conflates quotes and FMV to the latest value per symbol once it falls behind, and returns when drained', () => {
    const transport = new FakeTransport();
    const client = new ClientSession('c', transport, small);
    client.subscribe('fmv', '*');
    transport.blocked = true;
    for (let k = 1; k <= 20; k += 1) client.offer(msg('fmv', 'fmv', k % 2 ? 'A' : 'B', k));

    const queuedWhileBlocked = client.queued;
    transport.blocked = false;
    client.pump();

    expect(queuedWhileBlocked).toBeLessThanOrEqual(small.maxQueue);
    expect(client.conflating).toBe(false);
    expect(transport.sent.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5, 6, 19, 20]);
    expect(client.counters.conflated.fmv).toBe(12);
    expect(client.counters.sent.fmv + client.counters.conflated.fmv).toBe(20);
  });

  it('never conflates trades: what does not fit becomes a gap notice after the queued trades', () => {
    const transport = new FakeTransport();
    const client = new ClientSession('c', transport, small);
    client.subscribe('tick', '*');
    transport.blocked = true;
    for (let k = 1; k <= 15; k += 1) client.offer(msg('tick', 'trade', 'A', k));

    transport.blocked = false;
    client.pump();

    const trades = transport.sent.filter((m) => m.kind === 'trade').map((m) => m.offset);
    const gaps = transport.sent.filter((m) => m.data.ev === 'gap').map((m) => m.data);
    expect(trades).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(gaps).toEqual([{ ev: 'gap', from: 11, to: 15, missed: 5 }]);
    expect(client.counters.gapped.tick).toBe(5);
    expect(transport.sent.at(-1)?.data.ev).toBe('gap');
  });

  it('keeps its queue bounded however long the client stays blocked', () => {
    const transport = new FakeTransport();
    const client = new ClientSession('c', transport, small);
    client.subscribe('tick', '*');
    client.subscribe('fmv', '*');
    transport.blocked = true;
    for (let k = 1; k <= 100_000; k += 1) {
      client.offer(msg('tick', 'trade', 'A', k));
      client.offer(msg('fmv', 'fmv', `S${k % 50}`, k));
    }

    const queuedWhileBlocked = client.queued;
    transport.blocked = false;
    client.pump();

    expect(queuedWhileBlocked).toBeLessThanOrEqual(small.maxQueue + 50);
    expect(client.counters.sent.tick + client.counters.gapped.tick).toBe(100_000);
    expect(client.counters.sent.fmv + client.counters.conflated.fmv).toBe(100_000);
    expect(transport.sent.filter((m) => m.data.ev === 'gap').length).toBe(1);
  });

  it('filters by channel and symbol; channel-wide control messages reach every subscriber of the channel', () => {
    const client = new ClientSession('c', new FakeTransport(), small);
    client.subscribe('tick', ['AAPL']);

    expect([
      client.wants('tick', 'AAPL'),
      client.wants('tick', 'MSFT'),
      client.wants('tick', '*'),
      client.wants('fmv', 'AAPL'),
    ]).toEqual([true, false, true, false]);
  });
});

describe('Hub offsets, snapshot and resume', () => {
  const routed = (channel: RouterChannel, kind: MessageKind, sym: string, n: number) => ({
    channel,
    kind,
    sym,
    data: { n },
    receivedAtMono: 0,
  });

  it('numbers each channel separately and sends the latest value per symbol on subscribe', () => {
    const hub = new Hub({ epoch: 'e1', historySize: 100 });
    hub.publish(routed('fmv', 'fmv', 'A', 1));
    hub.publish(routed('fmv', 'fmv', 'A', 2));
    hub.publish(routed('fmv', 'fmv', 'B', 3));
    hub.publish(routed('tick', 'trade', 'A', 4));
    const transport = new FakeTransport();
    const client = new ClientSession('c', transport, small);
    hub.attach(client);

    hub.subscribe(client, 'fmv', ['A']);
    client.pump();

    expect([hub.offset('fmv'), hub.offset('tick')]).toEqual([3, 1]);
    expect(transport.sent.map((m) => [m.channel, m.sym, m.data.n, m.epoch, m.offset])).toEqual([
      ['fmv', 'A', 2, 'e1', 2],
    ]);
  });

  it('resumes a reconnecting client from its offset with nothing missed and nothing repeated', () => {
    const hub = new Hub({ epoch: 'e1', historySize: 100 });
    for (let k = 1; k <= 10; k += 1) hub.publish(routed('tick', 'trade', 'A', k));
    const transport = new FakeTransport();
    const client = new ClientSession('c', transport, small);
    client.subscribe('tick', '*');
    hub.attach(client);

    const result = hub.resume(client, 'tick', 'e1', 7);
    client.pump();

    expect(result).toEqual({ status: 'resumed', replayed: 3 });
    expect(transport.sent.map((m) => m.offset)).toEqual([8, 9, 10]);
  });

  it('tells a client from another epoch, or too far behind, to resync', () => {
    const hub = new Hub({ epoch: 'e2', historySize: 5 });
    for (let k = 1; k <= 10; k += 1) hub.publish(routed('tick', 'trade', 'A', k));
    const client = new ClientSession('c', new FakeTransport(), small);

    expect(hub.resume(client, 'tick', 'e1', 9)).toEqual({ status: 'resync', reason: 'epoch_changed' });
    expect(hub.resume(client, 'tick', 'e2', 2)).toEqual({ status: 'resync', reason: 'offset_too_old' });
    expect(hub.resume(client, 'tick', 'e2', 11)).toEqual({ status: 'resync', reason: 'offset_ahead' });
    expect(hub.resume(client, 'tick', 'e2', 5)).toEqual({ status: 'resumed', replayed: 0 });
  });
});

describe('snapshot accounting (a value sent on subscribe is labelled, never counted as delivered)', () => {
  it('the client counts live messages exactly as the router delivered them, snapshots apart', () => {
    const router = new Router({ epoch: 'e1' });
    router.ingest('ws', T0, [trade('AAPL', '1', T0), trade('MSFT', '2', T0), trade('AAPL', '3', T0 + 1)]);
    router.drain();
    const deliveredBefore = router.stats.tick.delivered;
    const transport = new FakeTransport();
    const client = new ClientSession('c', transport, { ...small, maxBufferedBytes: 1e9 });
    router.hub.attach(client);
    const wire = new WireCounter(true);
    // The router's reply names the channel too; it is not a message of it.
    wire.add(
      JSON.parse(JSON.stringify({ ev: 'subscribed', channel: 'tick', epoch: 'e1', offset: 3, snapshot: 2 })),
    );

    router.hub.subscribe(client, 'tick', '*');
    client.pump();
    router.ingest('ws', T0 + 2, [trade('AAPL', '4', T0 + 2), trade('MSFT', '5', T0 + 2)]);
    router.drain();
    for (const m of transport.sent) wire.add(JSON.parse(wireText(m)));

    const liveDelivered = router.stats.tick.delivered - deliveredBefore;
    expect(liveDelivered).toBe(2);
    expect(client.counters.sent.tick).toBe(liveDelivered);
    expect(client.counters.snapshot.tick).toBe(2);
    expect(wire.live.tick).toBe(liveDelivered);
    expect(wire.snapshot.tick).toBe(2);
    expect([wire.replies, wire.duplicates.tick]).toEqual([1, 0]);
    // The snapshot values keep their original position and are marked on the wire; the published
    // messages (history, other clients) are not.
    const snapshots = transport.sent.filter((m) => m.snapshot);
    expect(snapshots.map((m) => [m.sym, m.offset, JSON.parse(wireText(m)).snapshot])).toEqual([
      ['MSFT', 2, true],
      ['AAPL', 3, true],
    ]);
    expect(transport.sent.filter((m) => !m.snapshot).map((m) => JSON.parse(wireText(m)).snapshot)).toEqual([
      undefined,
      undefined,
    ]);
  });
});

describe('Router', () => {
  function withClient(router: Router): FakeTransport {
    const transport = new FakeTransport();
    const client = new ClientSession('all', transport, {
      maxQueue: 100_000,
      highWater: 50_000,
      lowWater: 10,
      maxBufferedBytes: 1,
    });
    router.hub.attach(client);
    for (const c of ['tick', 'event', 'fmv', 'ohlcv'] as const) router.hub.subscribe(client, c, '*');
    return transport;
  }

  it('identifies a trade by symbol, exchange and trade id, never by the sequence number', () => {
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);

    router.ingest('ws', T0, [
      trade('A', '1', T0, 100, 4, 7),
      trade('A', '2', T0, 100, 4, 7),
      trade('A', '1', T0, 100, 11, 6),
      trade('B', '1', T0, 100, 4, 7),
      trade('A', '1', T0, 100, 4, 99),
    ]);
    router.drain();

    expect(out.sent.filter((m) => m.kind === 'trade').map((m) => `${m.sym}/${m.data.x}/${m.data.i}`)).toEqual(
      ['A/4/1', 'A/4/2', 'A/11/1', 'B/4/1'],
    );
    expect(router.stats.tick.duplicates).toBe(1);
  });

  it('delivers an item arriving from the socket and from a REST backfill once', () => {
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);
    const bar = { ev: 'AM', sym: 'A', o: 1, h: 2, l: 1, c: 2, v: 5, s: T0, e: T0 + 60_000 };

    router.ingest('ws', T0 + 60_100, [bar, trade('A', '1', T0)]);
    router.ingest('rest', T0 + 61_000, [trade('A', '1', T0), { ...bar }]);
    router.drain();

    expect(out.sent.filter((m) => m.kind === 'bar' || m.kind === 'trade').length).toBe(2);
    expect([router.stats.tick.duplicates, router.stats.ohlcv.duplicates]).toEqual([1, 1]);
    expect(router.sources).toEqual(
      new Map([
        ['ws', 1],
        ['rest', 1],
      ]),
    );
  });

  it('identifies a quote by all of its fields, whatever their order', () => {
    const q: QuoteEvent = { ev: 'Q', sym: 'A', bp: 1, ap: 2, t: T0, bs: 3 };
    const reordered = { bs: 3, t: T0, ap: 2, bp: 1, sym: 'A', ev: 'Q' } as QuoteEvent;
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);

    router.ingest('ws', T0, [q, reordered, { ...q, bs: 4 }]);
    router.drain();

    expect(quoteKey(q)).toBe(quoteKey(reordered));
    // Values that could run together without names or delimiters still give different keys.
    expect(quoteKey({ ...q, c: ['1|2'], i: [] })).not.toBe(quoteKey({ ...q, c: ['1'], i: ['2'] }));
    expect(quoteKey({ ...q, x: 1 } as typeof q)).not.toBe(quoteKey(q));
    expect(out.sent.filter((m) => m.kind === 'quote').map((m) => m.data.bs)).toEqual([3, 4]);
  });

  it("tells the same quote of two symbols apart (the key leaves out the symbol: each symbol's window is its own)", () => {
    const q: QuoteEvent = { ev: 'Q', sym: 'A', bp: 1, ap: 2, t: T0, bs: 3 };
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);

    router.ingest('ws', T0, [q, { ...q, sym: 'B' }, q, { ...q, sym: 'B' }]);
    router.drain();

    expect(quoteKey(q)).toBe(quoteKey({ ...q, sym: 'B' }));
    expect(out.sent.filter((m) => m.kind === 'quote').map((m) => m.sym)).toEqual(['A', 'B']);
    expect(router.health().channels.tick.duplicates).toBe(2);
  });

  it('identifies a bar by symbol, interval and start: a changed bar is a correction delivered once', () => {
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);
    const am = { ev: 'AM', sym: 'A', o: 1, h: 2, l: 1, c: 2, v: 5, s: T0, e: T0 + 60_000 };
    const second = { ...am, ev: 'A', e: T0 + 1000 };

    router.ingest('ws', T0 + 60_100, [am, second, { ...am, c: 1.5 }, { ...am, c: 1.5 }, am]);
    router.drain();

    const bars = out.sent
      .filter((m) => m.kind === 'bar')
      .map((m) => [m.data.ev, m.data.c, m.data.correction ?? false]);
    expect(bars).toEqual([
      ['AM', 2, false],
      ['A', 2, false],
      ['AM', 1.5, true],
      ['AM', 2, true],
    ]);
    expect([router.stats.ohlcv.corrections, router.stats.ohlcv.duplicates]).toEqual([2, 1]);
  });

  it('identifies an FMV by symbol and t and drops low-confidence values with a configurable threshold', () => {
    const strict = new Router({
      epoch: 'e',
      confidence: { ...new Router().options.confidence, threshold: 0.99 },
    });
    const lenient = new Router({
      epoch: 'e',
      confidence: { ...new Router().options.confidence, threshold: 0.1 },
    });
    const frame = [
      trade('A', '1', T0, 100),
      { ev: 'FMV', sym: 'A', fmv: 100.2, t: T0 },
      { ev: 'FMV', sym: 'A', fmv: 100.2, t: T0 },
    ];

    for (const r of [strict, lenient]) {
      r.ingest('ws', T0, frame);
      r.drain();
    }

    expect(strict.stats.fmv).toMatchObject({
      received: 2,
      delivered: 0,
      duplicates: 0,
      rejected: { low_confidence: 2 },
    });
    expect(lenient.stats.fmv).toMatchObject({ received: 2, delivered: 1, duplicates: 1, rejected: {} });
  });

  it('delivers a market event seen from ticks and from the bar of the same minute once', () => {
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);

    router.ingest('ws', T0, [trade('A', '1', T0, 100), trade('A', '2', T0 + 1000, 101)]);
    router.ingest('ws', T0 + 60_100, [
      { ev: 'AM', sym: 'A', o: 100, h: 102, l: 100, c: 101, v: 20, s: T0, e: T0 + 60_000 },
    ]);
    router.drain();

    expect(
      out.sent.filter((m) => m.channel === 'event').map((m) => [m.data.type, m.data.s, m.data.source]),
    ).toEqual([['session_high', T0, 'tick']]);
    expect(router.stats.event).toMatchObject({ received: 2, delivered: 1, duplicates: 1 });
  });

  it('delivers ticks first, then events, FMV and bars, whatever order they arrived in', () => {
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);

    router.ingest('ws', T0 + 60_100, [
      { ev: 'AM', sym: 'B', o: 1, h: 1, l: 1, c: 1, v: 1, s: T0, e: T0 + 60_000 },
      { ev: 'FMV', sym: 'C', fmv: 5, t: T0 + 60_000 },
      trade('A', '1', T0 + 60_000, 10),
      trade('A', '2', T0 + 60_050, 11),
    ]);
    router.drain();

    expect(out.sent.map((m) => m.channel)).toEqual(['tick', 'tick', 'event', 'fmv', 'ohlcv']);
  });

  it("sends a frame's ticks before routing the rest of it, which still sees the frame in its order", () => {
    const router = new Router({
      epoch: 'e',
      confidence: { ...new Router().options.confidence, threshold: 0.1 },
    });
    const out = withClient(router);
    const atHandOver: { channels: string[]; events: number; fmv: number }[] = [];

    router.ingest(
      'ws',
      T0,
      [
        // Before any trade of A: its confidence has no reference, whatever the frame brings after it.
        { ev: 'FMV', sym: 'A', fmv: 100.2, t: T0 },
        trade('A', '1', T0, 100),
        { ev: 'Q', sym: 'A', bx: 1, bp: 99.9, bs: 1, ax: 1, ap: 100.1, as: 1, t: T0, q: 2 },
        { ev: 'FMV', sym: 'A', fmv: 100.2, t: T0 + 1 },
        trade('A', '2', T0 + 1000, 101),
      ],
      T0,
      () =>
        atHandOver.push({
          channels: out.sent.map((m) => m.channel),
          events: router.stats.event.received,
          fmv: router.stats.fmv.delivered,
        }),
    );
    router.drain();

    // When the ticks are handed over (the service flushes its sockets there) nothing else has run.
    expect(atHandOver).toEqual([{ channels: ['tick', 'tick', 'tick'], events: 0, fmv: 0 }]);
    // Each FMV's confidence from the prices of the ticks before it in the frame, none after it.
    const confidence = (t: number, ref: Parameters<typeof fmvConfidence>[3]) =>
      fmvConfidence(100.2, t, T0, ref, router.options.confidence).confidence;
    expect(out.sent.filter((m) => m.channel === 'fmv').map((m) => [m.data.t, m.data.confidence])).toEqual([
      [T0, confidence(T0, {})],
      [T0 + 1, confidence(T0 + 1, { tradePrice: 100, tradeT: T0, quoteMid: 100, quoteT: T0 })],
    ]);
    expect(out.sent.map((m) => m.channel)).toEqual(['tick', 'tick', 'tick', 'event', 'fmv', 'fmv']);
  });

  it('a full OHLCV buffer never delays ticks, and its overflow is a gap notice, not silent loss', () => {
    const router = new Router({ epoch: 'e', channelCapacity: 4 });
    const out = withClient(router);
    const bars = Array.from({ length: 10 }, (_, k) => ({
      ev: 'AM',
      sym: `S${k}`,
      o: 1,
      h: 1,
      l: 1,
      c: 1,
      v: 1,
      s: T0,
      e: T0 + 60_000,
    }));

    router.ingest('ws', T0 + 60_100, [...bars, trade('A', '1', T0 + 60_000)]);
    router.drain(1);
    const first = out.sent[0];
    router.drain();

    expect([first?.channel, first?.kind]).toEqual(['tick', 'trade']);
    expect(router.stats.ohlcv.rejected).toEqual({ buffer_overflow: 6 });
    expect(out.sent.filter((m) => m.data.ev === 'gap').map((m) => [m.channel, m.data.missed])).toEqual([
      ['ohlcv', 6],
    ]);
    expect(router.stats.ohlcv.delivered + (router.stats.ohlcv.rejected.buffer_overflow ?? 0)).toBe(
      router.stats.ohlcv.received,
    );
  });

  it('conflates FMV to the latest per symbol when its buffer overflows', () => {
    const router = new Router({ epoch: 'e', channelCapacity: 2 });
    const out = withClient(router);
    const fmvs = Array.from({ length: 6 }, (_, k) => ({
      ev: 'FMV',
      sym: 'A',
      fmv: 100 + k / 100,
      t: T0 + k,
    }));

    router.ingest('ws', T0 + 10, fmvs);
    router.drain();

    expect(out.sent.filter((m) => m.channel === 'fmv').map((m) => m.data.t)).toEqual([T0, T0 + 1, T0 + 5]);
    expect(router.stats.fmv).toMatchObject({ received: 6, delivered: 3, conflated: 3 });
  });

  it('announces minute_complete on the ohlcv channel when the traded symbols have their bars', () => {
    const router = new Router({ epoch: 'e' });
    const out = withClient(router);

    router.ingest('ws', T0 + 1000, [trade('A', '1', T0 + 1000), trade('B', '1', T0 + 2000)]);
    router.ingest('ws', T0 + 60_100, [
      { ev: 'AM', sym: 'A', o: 1, h: 1, l: 1, c: 1, v: 1, s: T0, e: T0 + 60_000 },
    ]);
    const beforeB = out.sent.filter((m) => m.data.ev === 'minute_complete').length;
    router.ingest('ws', T0 + 60_200, [
      { ev: 'AM', sym: 'B', o: 1, h: 1, l: 1, c: 1, v: 1, s: T0, e: T0 + 60_000 },
    ]);
    router.drain();

    const complete = out.sent.filter((m) => m.data.ev === 'minute_complete');
    expect(beforeB).toBe(0);
    expect(complete.map((m) => [m.channel, m.sym, m.data.s, m.data.reason, m.data.bars])).toEqual([
      ['ohlcv', '*', T0, 'complete', 2],
    ]);
  });

  it('keeps its accounting: received = delivered + duplicates + rejected + conflated on every channel', () => {
    const router = new Router({ epoch: 'e', channelCapacity: 3 });
    withClient(router);
    const frame: unknown[] = [];
    for (let k = 0; k < 200; k += 1) {
      frame.push(trade(`S${k % 7}`, String(k % 50), T0 + k, 100 + (k % 13)));
      frame.push({ ev: 'FMV', sym: `S${k % 7}`, fmv: 100 + (k % 13), t: T0 + (k % 40) });
      frame.push({
        ev: 'AM',
        sym: `S${k % 9}`,
        o: 1,
        h: k % 5 === 0 ? 0.5 : 2,
        l: 1,
        c: 1,
        v: 1,
        s: T0 + (k % 3) * 60_000,
        e: T0 + 60_000,
      });
    }

    router.ingest('ws', T0 + 200_000, frame);
    router.drain();
    router.closeMinutes();
    router.drain();

    for (const c of ['tick', 'event', 'fmv', 'ohlcv'] as const) {
      const s = router.stats[c];
      const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0);
      expect(s.delivered + s.duplicates + rejected + s.conflated, c).toBe(s.received);
    }
  });
});
