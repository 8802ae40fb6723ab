/**
 * The event store port. One stream per account: every risk check reads the whole account, so the
 * account is the consistency boundary and `expectedVersion` (UNIQUE(stream, version)) makes a second
 * writer fail instead of deciding on a stale state. An append writes the events, the projection rows
 * they change and the broker commands (outbox) atomically.
 */

import { type ChainRow, chainHash, eventDigest, VerifiedTips } from './integrity';
import type { Projections } from './state';
import type { BrokerCommand, Order, TradingEvent } from './types';

/**
 * The projection rows one append changes (incremental: nothing is re-read or rewritten whole). One
 * append may carry several commands (group commit); the rows are their state after the last one.
 */
export interface ProjectionUpdate {
  /** The orders the events changed. */
  readonly orders: { id: string; order: Order; view: Projections['orders'][string] }[];
  /** The positions the events changed (the others stay as stored). */
  readonly positions: Projections['positions'];
  readonly account: Projections['account'];
  /** Every scope's state, when the batch changed one (empty otherwise). */
  readonly states: Record<string, { state: string; cause: string }>;
  /** State changes appended by this batch, with their index in the log. */
  readonly stateLog: { seq: number; entry: Projections['tradingState'][number] }[];
  readonly breakers: { id: number; view: Projections['breakers'][number] }[];
}

export interface AppendRequest {
  readonly stream: string;
  readonly expectedVersion: number;
  readonly events: readonly TradingEvent[];
  readonly projection: ProjectionUpdate;
  readonly outbox: readonly BrokerCommand[];
}

/**
 * An append of broker acknowledgements alone (OrderAccepted events, no outbox command): what the
 * broker said and says again (the adapter's snapshot after every stream connect, the in-flight
 * lookup and reconciliation read it back; a fill on an order still held as pending_new books its
 * ack first), and nobody's decision waits on its durability. The PostgreSQL store commits it without
 * waiting for its WAL flush; the engine holds it up to ACK_HOLD_MS when the order may fill at once,
 * so that the fill arriving right behind it shares its transaction.
 */
export function acknowledgementOnly(
  events: readonly Pick<TradingEvent, 'type'>[],
  outbox: readonly unknown[],
): boolean {
  return outbox.length === 0 && events.length > 0 && events.every((e) => e.type === 'OrderAccepted');
}

export interface OutboxEntry {
  readonly id: number;
  readonly command: BrokerCommand;
}

export class ConcurrencyError extends Error {
  constructor(stream: string, expected: number) {
    super(`stream ${stream} moved past version ${expected}: another writer appended first`);
    this.name = 'ConcurrencyError';
  }
}

export interface EventStore {
  /** The stream's events, the hash chain verified (throws IntegrityError at the first bad version). */
  load(stream: string): Promise<TradingEvent[]>;
  /**
   * The events after `version`, for a reader whose state is exactly the stream's first `version`
   * events (the live engine catching up with another writer): the chain verified from the hash of
   * row `version` as this store last verified it (a whole load, or its own append continuing a
   * verified row) on to the end and the recorded head. Null when the store cannot vouch for that
   * start (it did not verify row `version`, or the row's stored hash changed since) or the tail
   * does not verify cleanly (a gap, an edit, a deleted tail, even a recovered break): the caller
   * loads the whole stream, whose verification names the damage as it always did.
   */
  loadAfter(stream: string, version: number): Promise<TradingEvent[] | null>;
  /** The rows as stored, with their hashes, and the stream's recorded head (the projections' version). */
  readChain(stream: string): Promise<{ rows: ChainRow[]; head: number }>;
  append(request: AppendRequest): Promise<void>;
  /**
   * Broker commands not yet handed to the broker, oldest first. `known`: the dispatcher's call; the
   * store may answer from what it knows of its own appends and marks without reading the table.
   */
  pendingCommands(stream: string, options?: { known?: boolean }): Promise<OutboxEntry[]>;
  markDelivered(ids: readonly number[]): Promise<void>;
  /** The projections as stored (to compare with a rebuild). */
  readProjections(stream: string): Promise<Projections>;
  counts(stream: string): Promise<{ events: number; brokerCommands: number }>;
}

/** In-process store with the same contract, for unit tests and `trading replay --store memory`. */
export class MemoryEventStore implements EventStore {
  private readonly streams = new Map<string, ChainRow[]>();
  private readonly heads = new Map<string, number>();
  private readonly outbox: { id: number; stream: string; command: BrokerCommand; delivered: boolean }[] = [];
  private readonly views = new Map<string, Projections>();
  /** Per stream, the last row this store vouches for (`loadAfter`). */
  private readonly verified = new VerifiedTips();

  async load(stream: string): Promise<TradingEvent[]> {
    const { rows, head } = await this.readChain(stream);
    return this.verified.verifyAll(stream, rows, head);
  }

  async loadAfter(stream: string, version: number): Promise<TradingEvent[] | null> {
    const from = this.verified.at(stream, version);
    if (!from) return null;
    const { rows, head } = await this.readChain(stream);
    return this.verified.after(stream, rows, head, from);
  }

  async readChain(stream: string): Promise<{ rows: ChainRow[]; head: number }> {
    return { rows: structuredClone(this.streams.get(stream) ?? []), head: this.heads.get(stream) ?? 0 };
  }

  /** Tests: edit or drop stored rows, as an operator with the table's owner rights could. */
  tamper(stream: string, change: (rows: ChainRow[]) => ChainRow[]): void {
    this.streams.set(stream, change(this.streams.get(stream) ?? []));
  }

  async append(request: AppendRequest): Promise<void> {
    const rows = this.streams.get(request.stream) ?? [];
    const last = rows.at(-1);
    if ((last?.version ?? 0) !== request.expectedVersion)
      throw new ConcurrencyError(request.stream, request.expectedVersion);
    let prev = last?.hash ?? null;
    const continues = this.verified.continues(request.stream, request.expectedVersion, prev);
    request.events.forEach((e, i) => {
      const version = request.expectedVersion + i + 1;
      const data = structuredClone(e) as TradingEvent;
      const hash = chainHash(prev, eventDigest(request.stream, version, e.type, data, e.at));
      rows.push({ version, type: e.type, data, occurredAt: new Date(e.at).toISOString(), hash });
      prev = hash;
    });
    this.streams.set(request.stream, rows);
    if (continues) this.verified.appended(request.stream, { version: rows.at(-1)?.version ?? 0, hash: prev });
    this.heads.set(request.stream, request.expectedVersion + request.events.length);
    const view = this.views.get(request.stream) ?? {
      orders: {},
      positions: {},
      account: { cash: 0, equity: 0, realizedPnl: 0, unrealizedPnl: 0, dailyPnl: 0 },
      tradingState: [],
      breakers: [],
    };
    const p = structuredClone(request.projection);
    for (const o of p.orders) view.orders[o.id] = o.view;
    view.positions = Object.fromEntries(
      Object.entries({ ...view.positions, ...p.positions }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    view.account = p.account;
    for (const s of p.stateLog) view.tradingState[s.seq] = s.entry;
    for (const b of p.breakers) view.breakers[b.id] = b.view;
    this.views.set(request.stream, view);
    for (const command of request.outbox)
      this.outbox.push({
        id: this.outbox.length + 1,
        stream: request.stream,
        command: structuredClone(command),
        delivered: false,
      });
  }

  async pendingCommands(stream: string): Promise<OutboxEntry[]> {
    return this.outbox
      .filter((o) => o.stream === stream && !o.delivered)
      .map((o) => ({ id: o.id, command: o.command }));
  }

  async markDelivered(ids: readonly number[]): Promise<void> {
    for (const id of ids) {
      const entry = this.outbox[id - 1];
      if (entry) entry.delivered = true;
    }
  }

  async readProjections(stream: string): Promise<Projections> {
    const view = this.views.get(stream);
    if (!view) throw new Error(`no projections for ${stream}`);
    return structuredClone(view);
  }

  async counts(stream: string): Promise<{ events: number; brokerCommands: number }> {
    return {
      events: this.streams.get(stream)?.length ?? 0,
      brokerCommands: this.outbox.filter((o) => o.stream === stream).length,
    };
  }
}
