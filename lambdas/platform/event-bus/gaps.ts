/**
 * Telling a consumer group what it missed. Each channel stream is capped (XADD MAXLEN ~): entries
 * trimmed before a group read them are gone, and a Redis that lost its data (restart without
 * persistence, failover to a replica that had not caught up) loses every stream and group. Neither
 * may pass silently: the consumer reports a `StreamGap` so the app resynchronises that channel's
 * state from the database (the source of truth; the streams only carry notifications).
 *
 * A trim gap is found from what Redis 7 keeps per stream and per group, read in the same MULTI as
 * the entries (so no trim can slip in between): the group's last-delivered id `L` and
 * `entries-read`, the stream's first entry `F`, length and `entries-added`. When `L < F`, the
 * entries the group never saw that no longer exist number `lag - length`, where
 * `lag = entries-added - entries-read` (Redis counts trimmed entries in it).
 */
import { StreamReplyError } from './stream-reply';

export interface StreamGap {
  /**
   * `trimmed`: entries removed at the stream's length cap (or deleted) before the group read them.
   * `reset`: the stream's history is gone (Redis lost its data: the epoch changed, or the group had
   * to be created again); what was published while the consumer was away is unknown.
   */
  readonly kind: 'trimmed' | 'reset';
  readonly channel: string;
  readonly streamKey: string;
  readonly group: string;
  /** The last entry id the group had been given before the gap ('0-0': none). */
  readonly afterId: string;
  /** The first entry still in the stream after the gap (null: the stream is empty). */
  readonly resumeId: string | null;
  /** How many entries were lost (null when Redis cannot tell: deleted entries, a reset). */
  readonly lost: number | null;
  /** The Redis epoch the consumer now reads in (see StreamConsumer.epoch). */
  readonly epoch: string | null;
  /** The epoch it read in before a reset (null otherwise). */
  readonly previousEpoch: string | null;
}

/** A gap reported through onError when the consumer has no onGap handler. */
export class StreamGapError extends Error {
  override name = 'StreamGapError';
  constructor(readonly gap: StreamGap) {
    super(
      gap.kind === 'trimmed'
        ? `${gap.lost ?? 'an unknown number of'} entries of ${gap.channel} were trimmed before group ${gap.group} read them ` +
            `(after ${gap.afterId}, resuming at ${gap.resumeId ?? 'the next entry'}): resynchronise from the database`
        : `the stream of ${gap.channel} was reset (epoch ${gap.previousEpoch ?? 'unknown'} -> ${gap.epoch ?? 'unknown'}): ` +
            'resynchronise from the database',
    );
  }
}

/** What XINFO STREAM and XINFO GROUPS say about one stream and one group. */
export interface StreamPosition {
  readonly length: number;
  readonly entriesAdded: number | null;
  readonly firstId: string | null;
  readonly lastDeliveredId: string;
  readonly entriesRead: number | null;
  readonly lag: number | null;
}

/** Compares two stream ids ("ms-seq"). */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/** Flat RESP2 key/value list (or a RESP3 map) to a Map. */
function fields(raw: unknown): Map<string, unknown> {
  if (raw instanceof Map) return new Map([...raw].map(([k, v]) => [String(k), v]));
  if (!Array.isArray(raw)) {
    if (raw && typeof raw === 'object') return new Map(Object.entries(raw));
    throw new StreamReplyError('XINFO reply is not a list');
  }
  const out = new Map<string, unknown>();
  for (let i = 0; i + 1 < raw.length; i += 2) out.set(String(raw[i]), raw[i + 1]);
  return out;
}

function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** The group's row of XINFO GROUPS and the stream's XINFO STREAM, or null when the group is missing. */
export function parsePosition(stream: unknown, groups: unknown, group: string): StreamPosition | null {
  if (!Array.isArray(groups)) throw new StreamReplyError('XINFO GROUPS reply is not a list');
  const row = groups.map(fields).find((g) => String(g.get('name')) === group);
  if (!row) return null;
  const s = fields(stream);
  const first = s.get('first-entry');
  return {
    length: num(s.get('length')) ?? 0,
    entriesAdded: num(s.get('entries-added')),
    firstId: Array.isArray(first) && typeof first[0] === 'string' ? first[0] : null,
    lastDeliveredId: String(row.get('last-delivered-id') ?? '0-0'),
    entriesRead: num(row.get('entries-read')),
    lag: num(row.get('lag')),
  };
}

/**
 * Entries the group will never see: found when the group's position lies before the stream's first
 * entry and more entries were added after that position than the stream still holds. Null: none.
 */
export function trimmedEntries(p: StreamPosition): { lost: number | null } | null {
  const behind = p.firstId === null || compareIds(p.lastDeliveredId, p.firstId) < 0;
  if (!behind) return null;
  if (p.entriesAdded === null) return null;
  // A group at 0-0 (created on an empty stream, or at '0') comes before every entry ever added.
  // Otherwise Redis's lag counts trimmed entries only while entries-read is known (when it is not,
  // Redis estimates the lag from the retained entries alone).
  const lag =
    p.lastDeliveredId === '0-0'
      ? p.entriesAdded
      : p.entriesRead !== null
        ? (p.lag ?? p.entriesAdded - p.entriesRead)
        : null;
  if (lag !== null) return lag > p.length ? { lost: lag - p.length } : null;
  // No count (entries were deleted, or the group was placed at an id): a gap whenever anything at
  // all was removed, since it may have been after the group's position (a resync is the safe side).
  return p.entriesAdded > p.length ? { lost: null } : null;
}
