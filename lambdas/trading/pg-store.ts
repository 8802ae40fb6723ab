/**
 * The event store in PostgreSQL (schemas/sql/0300_trading_event_store.sql, the hash chain of 0320). One transaction per
 * append (a single statement): the events (UNIQUE(stream, version) refuses a second writer: SQLSTATE 23505), the projection
 * rows they change and the broker commands of the outbox. Reads fold the events again; the projection
 * tables serve queries and are checked against the fold by the restart test.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { type ChainRow, chainHash, chainTip, eventDigest, VerifiedTips } from './integrity';
import type { Projections } from './state';
import {
  type AppendRequest,
  acknowledgementOnly,
  ConcurrencyError,
  type EventStore,
  type OutboxEntry,
} from './store';
import type { BrokerCommand, TradingEvent } from './types';

const num = (v: unknown): number => Number(v);

/**
 * One append is one statement, so one transaction and one round trip: the events (only if the stream
 * is still at the expected version: a stale writer inserts nothing, a racing one hits UNIQUE(stream,
 * version)), then, only when they went in, the projection rows and the outbox commands.
 */
const APPEND = `
WITH ev AS (
  INSERT INTO trading_events (event_id, stream, version, type, data, occurred_at, hash)
  SELECT x.event_id, $2, x.version, x.type, x.data, x.occurred_at, x.hash
    FROM jsonb_to_recordset($1::jsonb)
      AS x(event_id uuid, version integer, type text, data jsonb, occurred_at timestamptz, hash text)
   WHERE (SELECT coalesce(max(version), 0) FROM trading_events WHERE stream = $2) = $3
     -- The chain (0320) continues from the row the hashes were computed on: a row rewritten since
     -- refuses the append (the writer reloads, and the load's verification names the damage).
     AND (SELECT hash FROM trading_events WHERE stream = $2 AND version = $3) IS NOT DISTINCT FROM $12
   ORDER BY x.version
  RETURNING version
), ok AS (
  SELECT count(*)::int AS n FROM ev
), ord AS (
  INSERT INTO trading_orders (stream, client_order_id, symbol, side, status, qty, filled_qty, avg_fill_price,
                              denial_code, view, "order", version)
  SELECT $2, x.id, x.symbol, x.side, x.status, x.qty, x.filled_qty, x.avg_fill_price, x.denial_code, x.view,
         x."order", $11
    FROM jsonb_to_recordset($4::jsonb) AS x(id text, symbol text, side text, status text, qty numeric,
         filled_qty numeric, avg_fill_price numeric, denial_code text, view jsonb, "order" jsonb), ok
   WHERE ok.n > 0
  ON CONFLICT (stream, client_order_id) DO UPDATE SET status = EXCLUDED.status, qty = EXCLUDED.qty,
    filled_qty = EXCLUDED.filled_qty, avg_fill_price = EXCLUDED.avg_fill_price,
    denial_code = EXCLUDED.denial_code, view = EXCLUDED.view, "order" = EXCLUDED."order", version = EXCLUDED.version
), pos AS (
  INSERT INTO trading_positions AS t (stream, symbol, qty, avg_price, version)
  SELECT $2, x.symbol, x.qty, x.avg_price, $11
    FROM jsonb_to_recordset($5::jsonb) AS x(symbol text, qty numeric, avg_price numeric), ok
   WHERE ok.n > 0
  ON CONFLICT (stream, symbol) DO UPDATE SET qty = EXCLUDED.qty, avg_price = EXCLUDED.avg_price,
    version = EXCLUDED.version
   WHERE (t.qty, t.avg_price) IS DISTINCT FROM (EXCLUDED.qty, EXCLUDED.avg_price)
), acc AS (
  INSERT INTO trading_accounts (stream, cash, equity, realized_pnl, unrealized_pnl, daily_pnl, version)
  SELECT $2, (a->>'cash')::numeric, (a->>'equity')::numeric, (a->>'realizedPnl')::numeric,
         (a->>'unrealizedPnl')::numeric, (a->>'dailyPnl')::numeric, $11
    FROM (SELECT $6::jsonb AS a) j, ok
   WHERE ok.n > 0
  ON CONFLICT (stream) DO UPDATE SET cash = EXCLUDED.cash, equity = EXCLUDED.equity,
    realized_pnl = EXCLUDED.realized_pnl, unrealized_pnl = EXCLUDED.unrealized_pnl,
    daily_pnl = EXCLUDED.daily_pnl, version = EXCLUDED.version
), lg AS (
  INSERT INTO trading_state_log (stream, seq, at, scope, state, cause)
  SELECT $2, x.seq, x.at, x.scope, x.state, x.cause
    FROM jsonb_to_recordset($7::jsonb) AS x(seq integer, at timestamptz, scope text, state text, cause text), ok
   WHERE ok.n > 0
), st AS (
  INSERT INTO trading_states (stream, scope, state, cause)
  SELECT $2, x.key, x.value->>'state', x.value->>'cause' FROM jsonb_each($8::jsonb) AS x, ok
   WHERE ok.n > 0 AND jsonb_array_length($7::jsonb) > 0
  ON CONFLICT (stream, scope) DO UPDATE SET state = EXCLUDED.state, cause = EXCLUDED.cause
), br AS (
  INSERT INTO trading_breakers (stream, id, breaker, view, reset_at, reset_by)
  SELECT $2, x.id, x.view->>'breaker', x.view, (x.view->>'resetAt')::timestamptz, x.view->>'resetBy'
    FROM jsonb_to_recordset($9::jsonb) AS x(id integer, view jsonb), ok
   WHERE ok.n > 0
  ON CONFLICT (stream, id) DO UPDATE SET view = EXCLUDED.view, reset_at = EXCLUDED.reset_at,
    reset_by = EXCLUDED.reset_by
), ob AS (
  INSERT INTO trading_outbox (stream, command)
  SELECT $2, x.command FROM jsonb_array_elements($10::jsonb) WITH ORDINALITY AS x(command, n), ok
   WHERE ok.n > 0
   ORDER BY x.n
  RETURNING id
)
SELECT n, (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM ob) AS outbox FROM ok`;

/**
 * The same append committed without waiting for its WAL flush (synchronous_commit off for this
 * transaction only), for batches of broker acknowledgements alone (`acknowledgementOnly`). It still
 * commits in the stream's order, and WAL is flushed in order, so the next durable append (the
 * order's fill, any submit) makes it durable too: only a PostgreSQL crash within the WAL writer's
 * delay can lose it, never a fill or a command, never a link in the middle of the hash chain.
 */
const APPEND_ACK = `${APPEND.slice(0, APPEND.lastIndexOf('SELECT n, '))}SELECT n, set_config('synchronous_commit', 'off', true) FROM ok`;

/**
 * The channel on which a writer other than the live service (the `trading` CLI, an intake function)
 * announces new broker commands: the service, listening, dispatches them at once instead of at its
 * next poll. The payload is `<schema>/<stream>`. A cue to read, never data: the poll still finds
 * whatever a lost notification announced, and anyone who can connect may notify.
 */
export const OUTBOX_CHANNEL = 'tickstock_trading_outbox';

/** The append that also notifies OUTBOX_CHANNEL when it added commands (delivered at its commit). */
const APPEND_ANNOUNCED = `${APPEND.slice(0, APPEND.lastIndexOf(' FROM ok'))},
  (SELECT pg_notify('${OUTBOX_CHANNEL}', current_schema() || '/' || $2) WHERE EXISTS (SELECT 1 FROM ob)) AS announced
  FROM ok`;

/** A subscription to a stream's announcements (`PostgresEventStore.listen`). */
export interface OutboxSubscription {
  /** Resolves when the connection is gone (closed, or lost: then subscribe again). */
  readonly lost: Promise<void>;
  close(): void;
}

export class PostgresEventStore implements EventStore {
  /**
   * The last row's hash per stream as this store last read or wrote it: an append computes its
   * hashes from it and the statement checks it is still the stored one (so still one statement).
   */
  private readonly tips = new Map<string, { version: number; hash: string | null }>();

  /** Per stream, the last row this store vouches for (`loadAfter`); unlike `tips`, never an unverified one. */
  private readonly verified = new VerifiedTips();

  /**
   * Per stream, the undelivered outbox as this store knows it without reading it: complete as of
   * `version` (read with the stream's head in one statement, then carried over each of this store's
   * own appends that continued from exactly that version: the append's guard proves nobody else
   * appended in between, and the statement returns the ids of the commands it added), less what
   * `markDelivered` was given. Anything else (another writer's append seen by a load, a failed
   * append or mark) drops it, and the next `pendingCommands` reads the table again.
   */
  private readonly known = new Map<string, { version: number; entries: OutboxEntry[] }>();
  /** Marks being written, and how many were ever started: a read racing one cannot become `known`. */
  private marking = 0;
  private marks = 0;

  /**
   * `announce`: appends that add broker commands notify OUTBOX_CHANNEL (for writers other than the
   * live service; the service's own appends need no cue, it dispatches right after them).
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly options: { readonly announce?: boolean } = {},
  ) {}

  /**
   * Calls `onAnnounce` when another writer announces commands on `stream` (same schema), on a
   * connection of its own that holds the LISTEN; the caller subscribes again when `lost` resolves.
   */
  async listen(stream: string, onAnnounce: () => void): Promise<OutboxSubscription> {
    const client = await this.pool.connect();
    let gone = false;
    let done: () => void = () => undefined;
    const lost = new Promise<void>((resolve) => {
      done = resolve;
    });
    // Never back to the pool: the LISTEN belongs to this session.
    const end = () => {
      if (gone) return;
      gone = true;
      client.release(true);
      done();
    };
    try {
      const { rows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema');
      const payload = `${rows[0]?.schema}/${stream}`;
      client.on('notification', (n) => {
        if (n.channel === OUTBOX_CHANNEL && n.payload === payload) onAnnounce();
      });
      client.on('error', end);
      client.on('end', end);
      await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
    } catch (error) {
      end();
      throw error;
    }
    return { lost, close: end };
  }

  /** The hash the next event after `version` chains on (read once when this store has not seen it). */
  private async tip(stream: string, version: number): Promise<string | null> {
    if (version === 0) return null;
    const known = this.tips.get(stream);
    if (known?.version === version) return known.hash;
    const { rows } = await this.pool.query<{ hash: string | null }>(
      'SELECT hash FROM trading_events WHERE stream = $1 AND version = $2',
      [stream, version],
    );
    return rows[0]?.hash ?? null;
  }

  async load(stream: string): Promise<TradingEvent[]> {
    const { rows, head } = await this.readChain(stream);
    return this.verified.verifyAll(stream, rows, head);
  }

  async loadAfter(stream: string, version: number): Promise<TradingEvent[] | null> {
    const from = this.verified.at(stream, version);
    if (!from) return null;
    // Row `version` (its hash must still be the one verified), the rows after it and the head; an
    // index range scan on UNIQUE(stream, version), so the cost is the tail's, not the stream's.
    const { rows, head } = await this.rowsFrom(stream, version);
    const events = this.verified.after(stream, rows, head, from);
    if (events && rows.length > 0) this.tips.set(stream, chainTip(rows));
    return events;
  }

  async readChain(stream: string): Promise<{ rows: ChainRow[]; head: number }> {
    const chain = await this.rowsFrom(stream, 0);
    const last = chain.rows.at(-1);
    if (last) this.tips.set(stream, { version: last.version, hash: last.hash });
    else this.tips.delete(stream);
    return chain;
  }

  /**
   * The stream's rows from `version` on and its recorded head, in one statement (one snapshot). The
   * outbox known as of an older version than the last row no longer is the whole outbox: forgotten.
   */
  private async rowsFrom(stream: string, version: number): Promise<{ rows: ChainRow[]; head: number }> {
    const { rows } = await this.pool.query<{
      version: number;
      type: string;
      data: TradingEvent;
      occurred_at: Date;
      hash: string | null;
      head: number | null;
    }>({
      name: 'trading-rows-from',
      text: `SELECT e.version, e.type, e.data, e.occurred_at, e.hash,
                    (SELECT version FROM trading_accounts WHERE stream = $1) AS head
               FROM trading_events e WHERE e.stream = $1 AND e.version >= $2
              UNION ALL
             SELECT NULL, NULL, NULL, NULL, NULL, (SELECT version FROM trading_accounts WHERE stream = $1)
              ORDER BY 1 NULLS LAST`,
      values: [stream, version],
    });
    const head = rows.at(-1)?.head ?? 0;
    const stored = rows
      .filter((r) => r.version !== null)
      .map((r) => ({
        version: r.version,
        type: r.type,
        data: r.data,
        occurredAt: r.occurred_at.toISOString(),
        hash: r.hash,
      }));
    if (this.known.get(stream)?.version !== (stored.at(-1)?.version ?? 0)) this.known.delete(stream);
    return { rows: stored, head };
  }

  /** The stream's highest version (cheap: the service polls it to see another writer's appends). */
  async headVersion(stream: string): Promise<number> {
    const { rows } = await this.pool.query<{ v: number }>(
      'SELECT coalesce(max(version), 0)::int AS v FROM trading_events WHERE stream = $1',
      [stream],
    );
    return rows[0]?.v ?? 0;
  }

  async append(request: AppendRequest): Promise<void> {
    const { stream, expectedVersion, events, projection: p, outbox } = request;
    const version = expectedVersion + events.length;
    const before = await this.tip(stream, expectedVersion);
    const continues = this.verified.continues(stream, expectedVersion, before);
    let prev = before;
    const rows = events.map((e, i) => {
      const hash = chainHash(prev, eventDigest(stream, expectedVersion + i + 1, e.type, e, e.at));
      prev = hash;
      return {
        event_id: randomUUID(),
        version: expectedVersion + i + 1,
        type: e.type,
        data: e,
        occurred_at: e.at,
        hash,
      };
    });
    const orders = p.orders.map((o) => ({
      id: o.id,
      symbol: o.order.symbol,
      side: o.order.side,
      status: o.view.status,
      qty: Number.isFinite(o.order.qty) ? o.order.qty : 0,
      filled_qty: o.view.filledQty,
      avg_fill_price: o.view.avgFillPrice,
      denial_code: o.view.denial?.code ?? null,
      view: o.view,
      order: o.order,
    }));
    const positions = Object.entries(p.positions).map(([symbol, v]) => ({
      symbol,
      qty: v.qty,
      avg_price: v.avgPrice,
    }));
    try {
      const { rows: result } = await this.pool.query<{ n: number; outbox?: string[] }>({
        // Prepared once per connection: the plan of this statement is most of its cost.
        ...(acknowledgementOnly(events, outbox)
          ? { name: 'trading-append-ack', text: APPEND_ACK }
          : this.options.announce && outbox.length > 0
            ? { name: 'trading-append-announced', text: APPEND_ANNOUNCED }
            : { name: 'trading-append', text: APPEND }),
        values: [
          JSON.stringify(rows),
          stream,
          expectedVersion,
          JSON.stringify(orders),
          JSON.stringify(positions),
          JSON.stringify(p.account),
          JSON.stringify(p.stateLog.map((x) => ({ seq: x.seq, ...x.entry }))),
          JSON.stringify(p.states),
          JSON.stringify(p.breakers),
          JSON.stringify(outbox),
          version,
          before,
        ],
      });
      if (result[0]?.n !== events.length) {
        this.tips.delete(stream);
        this.known.delete(stream);
        throw new ConcurrencyError(stream, expectedVersion);
      }
      this.tips.set(stream, { version, hash: prev });
      if (continues) this.verified.appended(stream, { version, hash: prev });
      const known = this.known.get(stream);
      const ids = result[0]?.outbox ?? [];
      if (known?.version === expectedVersion && ids.length === outbox.length)
        this.known.set(stream, {
          version,
          entries: [
            ...known.entries,
            ...outbox.map((command, i) => ({ id: Number(ids[i]), command: structuredClone(command) })),
          ],
        });
      else this.known.delete(stream);
    } catch (error) {
      // Failed or of unknown outcome (a connection lost mid-commit): what is pending is read again.
      this.known.delete(stream);
      if ((error as { code?: string }).code === '23505') {
        this.tips.delete(stream);
        throw new ConcurrencyError(stream, expectedVersion);
      }
      throw error;
    }
  }

  /**
   * The undelivered outbox, oldest first. With `known`, answered from what this store knows when it
   * can (see `known`): the dispatcher's read after this store's own append costs no round trip, and
   * another writer's commands, all after the ones known (the known list is complete as of its
   * version), are read at the next dispatch after the engine has caught up with them.
   */
  async pendingCommands(stream: string, options: { known?: boolean } = {}): Promise<OutboxEntry[]> {
    const known = options.known ? this.known.get(stream) : undefined;
    if (known) return known.entries.map((e) => ({ id: e.id, command: structuredClone(e.command) }));
    // The rows and the stream's head in one statement (one snapshot): the list is complete as of it,
    // unless a mark was being written meanwhile (its row may read as still pending).
    const quiet = this.marking === 0;
    const marks = this.marks;
    const { rows } = await this.pool.query<{
      id: string | null;
      command: BrokerCommand | null;
      head: number;
    }>(
      `SELECT o.id, o.command, (SELECT coalesce(max(version), 0)::int FROM trading_events WHERE stream = $1) AS head
         FROM trading_outbox o WHERE o.stream = $1 AND o.delivered_at IS NULL
        UNION ALL
       SELECT NULL, NULL, (SELECT coalesce(max(version), 0)::int FROM trading_events WHERE stream = $1)
        ORDER BY 1 NULLS LAST`,
      [stream],
    );
    const head = rows.at(-1)?.head ?? 0;
    const entries = rows
      .filter((r) => r.id !== null)
      .map((r) => ({ id: Number(r.id), command: r.command as BrokerCommand }));
    // Usable for this store's next append only if it continues from the head read here.
    if (quiet && marks === this.marks && this.tips.get(stream)?.version === head)
      this.known.set(stream, {
        version: head,
        entries: entries.map((e) => ({ id: e.id, command: structuredClone(e.command) })),
      });
    else this.known.delete(stream);
    return entries;
  }

  /**
   * Committed without waiting for its WAL flush (synchronous_commit off for this transaction): a
   * mark lost in a PostgreSQL crash leaves its row undelivered and the command is sent again, which
   * the dispatcher already has to survive (a crash between a send and its mark): the broker refuses
   * a second order with the same client order id (ambiguous, resolved by a lookup), a second
   * replacement id likewise, and a cancel is resolved from the broker's record. A durable mark
   * bought nothing but a second WAL flush racing the order's fill.
   */
  async markDelivered(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    this.marks += 1;
    this.marking += 1;
    const marked = new Set(ids);
    for (const [stream, k] of this.known)
      this.known.set(stream, { version: k.version, entries: k.entries.filter((e) => !marked.has(e.id)) });
    try {
      await this.pool.query({
        name: 'trading-mark-delivered',
        text: `UPDATE trading_outbox SET delivered_at = now()
              WHERE id = ANY($1::bigint[]) AND set_config('synchronous_commit', 'off', true) IS NOT NULL`,
        values: [ids],
      });
    } catch (error) {
      // Not marked: those rows are still pending in the table, and must be sent again.
      this.known.clear();
      throw error;
    } finally {
      this.marking -= 1;
    }
  }

  async readProjections(stream: string): Promise<Projections> {
    const [orders, positions, account, log, breakers] = await Promise.all([
      this.pool.query<{ client_order_id: string; view: Projections['orders'][string] }>(
        'SELECT client_order_id, view FROM trading_orders WHERE stream = $1',
        [stream],
      ),
      this.pool.query<{ symbol: string; qty: string; avg_price: string }>(
        'SELECT symbol, qty, avg_price FROM trading_positions WHERE stream = $1 ORDER BY symbol',
        [stream],
      ),
      this.pool.query('SELECT * FROM trading_accounts WHERE stream = $1', [stream]),
      this.pool.query<{ at: Date; scope: string; state: string; cause: string }>(
        'SELECT at, scope, state, cause FROM trading_state_log WHERE stream = $1 ORDER BY seq',
        [stream],
      ),
      this.pool.query<{ view: Projections['breakers'][number] }>(
        'SELECT view FROM trading_breakers WHERE stream = $1 ORDER BY id',
        [stream],
      ),
    ]);
    const acc = account.rows[0];
    if (!acc) throw new Error(`no projections for ${stream}`);
    return {
      orders: Object.fromEntries(orders.rows.map((r) => [r.client_order_id, r.view])),
      positions: Object.fromEntries(
        positions.rows.map((r) => [r.symbol, { qty: num(r.qty), avgPrice: num(r.avg_price) }]),
      ),
      account: {
        cash: num(acc.cash),
        equity: num(acc.equity),
        realizedPnl: num(acc.realized_pnl),
        unrealizedPnl: num(acc.unrealized_pnl),
        dailyPnl: num(acc.daily_pnl),
      },
      tradingState: log.rows.map((r) => ({
        at: r.at.toISOString(),
        scope: r.scope,
        state: r.state as Projections['tradingState'][number]['state'],
        cause: r.cause,
      })),
      breakers: breakers.rows.map((r) => r.view),
    };
  }

  async counts(stream: string): Promise<{ events: number; brokerCommands: number }> {
    const { rows } = await this.pool.query<{ events: number; commands: number }>(
      `SELECT (SELECT count(*)::int FROM trading_events WHERE stream = $1) AS events,
              (SELECT count(*)::int FROM trading_outbox WHERE stream = $1) AS commands`,
      [stream],
    );
    return { events: rows[0]?.events ?? 0, brokerCommands: rows[0]?.commands ?? 0 };
  }
}
