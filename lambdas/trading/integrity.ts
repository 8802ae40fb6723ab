/**
 * The event store's hash chain (issue 14 §3): every event row carries
 * `hash = sha256(previous row's hash || digest)`, `digest = sha256(JSON [stream, version, type,
 * occurred_at] followed by the canonical JSON of the data)`. An edited row no longer matches its hash (or, if its hash was
 * recomputed, the next row's), a deleted row leaves a gap in the versions, and a truncated tail
 * leaves the stream's recorded head (the projections' version) above the last event. Verification
 * names the first bad version; everything before it is trusted.
 *
 * Recovery: an `IntegrityRecovered` event appended after the damage (its `brokenAt` names the first
 * bad version) carries the broker's orders, positions and cash; a fold skips the untrusted rows
 * between the break and that event, then applies it. A break without such an event is refused: the
 * store's `load` throws IntegrityError and nothing trades on that account.
 *
 * The digest and the chain step are computed here (canonical JSON: sorted keys, the values as JSON
 * round trips them), so the in-memory store, the PostgreSQL store (which hashes from the stream's
 * last hash and checks in its single append statement that this hash is still the stored one) and
 * the verifier agree byte for byte.
 */
import { createHash } from 'node:crypto';
import { BROKER_STATUS, type BrokerView } from './reconcile';
import type { AccountState } from './state';
import type { Order, TradingEvent } from './types';

export interface ChainRow {
  readonly version: number;
  readonly type: string;
  readonly data: TradingEvent;
  readonly occurredAt: string;
  /** Null only for rows written before the chain existed (migration 0320): a leading legacy run. */
  readonly hash: string | null;
}

export type IntegrityKind = 'corrupted' | 'missing';

export interface IntegrityFailure {
  readonly stream: string;
  readonly kind: IntegrityKind;
  /** The first version that cannot be trusted (edited, or missing). */
  readonly firstBadVersion: number;
  readonly detail: string;
  /** The events before the break, verified. */
  readonly trusted: TradingEvent[];
  /** The highest version stored: a recovery appends after it. */
  readonly storedVersion: number;
}

export class IntegrityError extends Error {
  constructor(readonly failure: IntegrityFailure) {
    super(
      `event store integrity: stream ${failure.stream} ${failure.kind} at version ${failure.firstBadVersion}: ${failure.detail}`,
    );
    this.name = 'IntegrityError';
  }
}

/**
 * JSON with sorted keys, value for value as JSON.stringify writes it (undefined members left out,
 * undefined in arrays and non-finite numbers as null, toJSON honoured): the data as jsonb gives it
 * back digests the same as the data appended.
 */
function canonical(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'object':
      break;
    default:
      return undefined;
  }
  const v = value as { toJSON?: () => unknown };
  if (typeof v.toJSON === 'function') return canonical(v.toJSON());
  if (Array.isArray(value)) return `[${value.map((x) => canonical(x) ?? 'null').join(',')}]`;
  let out = '';
  for (const k of Object.keys(value).sort()) {
    const c = canonical((value as Record<string, unknown>)[k]);
    if (c === undefined) continue;
    out += `${out ? ',' : ''}${JSON.stringify(k)}:${c}`;
  }
  return `{${out}}`;
}

/** What the chain covers of one event, as stored. */
export function eventDigest(
  stream: string,
  version: number,
  type: string,
  data: unknown,
  at: string,
): string {
  return (
    createHash('sha256')
      // The JSON array is self-delimiting: the canonical data follows it as is (not escaped again).
      .update(JSON.stringify([stream, version, type, new Date(at).toISOString()]))
      .update(canonical(data) ?? 'null')
      .digest('hex')
  );
}

/** The chain step (in SQL: encode(sha256(convert_to(prev || digest, 'UTF8')), 'hex')). */
export function chainHash(previous: string | null, digest: string): string {
  return createHash('sha256')
    .update((previous ?? '') + digest)
    .digest('hex');
}

export type Verified =
  | {
      readonly ok: true;
      readonly events: TradingEvent[];
      readonly recovered: { brokenAt: number; at: number }[];
      readonly legacy: number;
    }
  | { readonly ok: false; readonly failure: IntegrityFailure };

/** Where a verification starts: after the row `version` whose hash (verified before) is `hash`. */
export interface ChainTip {
  readonly version: number;
  readonly hash: string | null;
}

/**
 * Verifies a stream's rows (ordered by version) against the chain and the recorded head. Returns
 * the events to fold (damaged ranges that a later IntegrityRecovered covers are skipped) or the
 * first failure. `from`: the rows are the tail after a row already verified (an incremental read):
 * the walk starts in the state it had after that row (its hash as the previous one, hashed rows
 * seen once that hash is not null), so a tail verifies exactly as it would at the end of the whole
 * stream; its failures carry only the tail's events (the caller loads the whole stream for those).
 */
export function verifyChain(
  stream: string,
  rows: readonly ChainRow[],
  head: number,
  from: ChainTip = { version: 0, hash: null },
): Verified {
  const events: TradingEvent[] = [];
  const recovered: { brokenAt: number; at: number }[] = [];
  let legacy = 0;
  let hashed = from.hash !== null;
  let prev: string | null = from.hash;
  let expected = from.version + 1;
  const storedVersion = rows.at(-1)?.version ?? from.version;
  let i = 0;
  const fail = (kind: IntegrityKind, firstBadVersion: number, detail: string): Verified => {
    // A later IntegrityRecovered for this break re-anchors the chain: the fold resumes there.
    const r = rows.findIndex(
      (row, j) =>
        j >= i &&
        row.type === 'IntegrityRecovered' &&
        (row.data as { brokenAt?: number }).brokenAt === firstBadVersion,
    );
    if (r < 0)
      return {
        ok: false,
        failure: { stream, kind, firstBadVersion, detail, trusted: events, storedVersion },
      };
    recovered.push({ brokenAt: firstBadVersion, at: (rows[r] as ChainRow).version });
    i = r;
    prev = rows[r - 1]?.hash ?? null;
    expected = (rows[r] as ChainRow).version;
    return { ok: true, events, recovered, legacy };
  };
  while (i < rows.length) {
    const row = rows[i] as ChainRow;
    if (row.version !== expected) {
      const out = fail('missing', expected, `expected version ${expected}, found ${row.version}`);
      if (!out.ok) return out;
      continue;
    }
    if (row.hash === null) {
      if (hashed) {
        const out = fail('corrupted', row.version, 'hash removed');
        if (!out.ok) return out;
        continue;
      }
      legacy += 1;
    } else {
      hashed = true;
      const want = chainHash(prev, eventDigest(stream, row.version, row.type, row.data, row.occurredAt));
      if (want !== row.hash || row.data.type !== row.type) {
        const out = fail('corrupted', row.version, 'the row does not match its hash (edited)');
        if (!out.ok) return out;
        continue;
      }
    }
    events.push(row.data);
    prev = row.hash;
    expected += 1;
    i += 1;
  }
  if (head > storedVersion) {
    const out = fail(
      'missing',
      storedVersion + 1,
      `the stream's head is version ${head}, the last event ${storedVersion} (events deleted)`,
    );
    if (!out.ok) return out;
  }
  return { ok: true, events, recovered, legacy };
}

/**
 * The events of a tail (the rows after `from`, a row verified before) when it verifies cleanly:
 * consecutive versions chained on from `from.hash`, nothing deleted behind the recorded head, no
 * recovery. Then folding them after the stream's first `from.version` events gives the state a
 * whole load would. Null otherwise, for the caller to load the whole stream: a break, and an
 * IntegrityRecovered even on a clean chain (its break may lie before `from`, in rows a whole load
 * would skip), are for the whole verification to name and fold.
 */
export function verifyTail(
  stream: string,
  tail: readonly ChainRow[],
  head: number,
  from: ChainTip,
): TradingEvent[] | null {
  const verified = verifyChain(stream, tail, head, from);
  if (!verified.ok || verified.recovered.length > 0) return null;
  if (verified.events.some((e) => e.type === 'IntegrityRecovered')) return null;
  return verified.events;
}

/** The last of a stream's rows as a starting point (version 0, no hash, for an empty stream). */
export function chainTip(rows: readonly ChainRow[]): ChainTip {
  const last = rows.at(-1);
  return { version: last?.version ?? 0, hash: last?.hash ?? null };
}

/**
 * The events after `from` in `rows` (the stream's rows from row `from.version` on, or all of them),
 * as `verifyTail` gives them, when the stored row `from.version` still has the hash verified before;
 * null otherwise (the caller loads the whole stream).
 */
export function eventsAfter(
  stream: string,
  rows: readonly ChainRow[],
  head: number,
  from: ChainTip,
): TradingEvent[] | null {
  if (from.version > 0 && rows.find((r) => r.version === from.version)?.hash !== from.hash) return null;
  return verifyTail(
    stream,
    rows.filter((r) => r.version > from.version),
    head,
    from,
  );
}

/**
 * Per stream, the last row a store vouches for, from which `loadAfter` continues the chain: the
 * last row of a load whose whole chain verified, or the store's own append when it continued from
 * exactly that row (the append's guard proved the stored row still had that hash, and its hashes
 * chain on from it). Never a row read without verification.
 */
export class VerifiedTips {
  private readonly tips = new Map<string, ChainTip>();

  /** A whole stream verified: its events to fold, or IntegrityError (and nothing vouched for). */
  verifyAll(stream: string, rows: readonly ChainRow[], head: number): TradingEvent[] {
    const verified = verifyChain(stream, rows, head);
    if (!verified.ok) {
      this.tips.delete(stream);
      throw new IntegrityError(verified.failure);
    }
    this.tips.set(stream, chainTip(rows));
    return verified.events;
  }

  /** The vouched row when it is row `version` (where a reader's state ends); else undefined. */
  at(stream: string, version: number): ChainTip | undefined {
    const from = this.tips.get(stream);
    return from?.version === version ? from : undefined;
  }

  /** `eventsAfter` from `from`; when they verify, the last of `rows` is vouched for. */
  after(stream: string, rows: readonly ChainRow[], head: number, from: ChainTip): TradingEvent[] | null {
    const events = eventsAfter(stream, rows, head, from);
    if (events && rows.length > 0) this.tips.set(stream, chainTip(rows));
    return events;
  }

  /** Whether an append after row `version`, whose stored hash is `hash`, continues the vouched row. */
  continues(stream: string, version: number, hash: string | null): boolean {
    const from = this.tips.get(stream);
    return from?.version === version && from.hash === hash;
  }

  /** The store's own append that `continues`: its last row is vouched for now. */
  appended(stream: string, tip: ChainTip): void {
    this.tips.set(stream, tip);
  }
}

/**
 * The recovery event: the broker's record of every order (ours from the trusted prefix updated to
 * the broker's status and fills; those we lost rebuilt from the broker's fields), its positions and
 * cash. What it says it recovered is kept for the audit.
 */
export function recoveryEvent(
  failure: IntegrityFailure,
  trusted: AccountState,
  broker: BrokerView,
  at: string,
): Extract<TradingEvent, { type: 'IntegrityRecovered' }> {
  const orders: Order[] = [];
  const brokerIds = new Map(broker.orders.map((b) => [b.id, b.client_order_id]));
  let lost = 0;
  for (const b of broker.orders) {
    const local = trusted.orders[b.client_order_id];
    if (!local) lost += 1;
    const status = BROKER_STATUS[b.status] ?? 'new';
    const base: Order = local ?? {
      clientOrderId: b.client_order_id,
      symbol: b.symbol,
      side: b.side,
      qty: b.qty,
      requestedQty: b.qty,
      type: 'market',
      limitPrice: null,
      tif: 'day',
      status,
      filledQty: 0,
      avgFillPrice: null,
      denial: null,
      submittedAt: at,
      session: trusted.session,
      liquidation: false,
      replaces: b.replaces ? (brokerIds.get(b.replaces) ?? null) : null,
      replacedBy: null,
      statusBeforePending: null,
    };
    orders.push({
      ...base,
      status,
      filledQty: b.filled_qty,
      avgFillPrice: b.filled_qty > 0 ? b.filled_avg_price : null,
      replacedBy: b.replaced_by ? (brokerIds.get(b.replaced_by) ?? base.replacedBy) : base.replacedBy,
      statusBeforePending: null,
    });
  }
  const positions = Object.fromEntries(
    Object.entries(broker.positions)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([s, p]) => [s, { qty: p.qty, avgPrice: p.avgPrice }]),
  );
  return {
    type: 'IntegrityRecovered',
    at,
    brokenAt: failure.firstBadVersion,
    kind: failure.kind,
    detail: failure.detail,
    through: failure.storedVersion,
    recovered: {
      orders: orders.length,
      ordersUnknownLocally: lost,
      fills: orders.reduce((n, o) => n + (o.filledQty > 0 ? 1 : 0), 0),
      positions: Object.keys(positions),
      cash: broker.cash,
    },
    orders,
    positions,
    cash: broker.cash,
  };
}
