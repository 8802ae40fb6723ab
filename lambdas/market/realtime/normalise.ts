/**
 * Provider frames -> typed events. Hand-written checks rather than a schema library: this runs for
 * every event of the stream (hundreds of thousands a minute) and must stay allocation-free on the
 * good path. A bad event is rejected with a reason; it never takes the rest of its frame down.
 */
import type { BarEvent, DataChannel, FmvEvent, ProviderEvent, QuoteEvent, TradeEvent } from './types';

export type Classified =
  | { readonly ok: true; readonly channel: DataChannel; readonly event: ProviderEvent }
  | { readonly ok: false; readonly channel: DataChannel; readonly reason: string }
  /** Status frames and channels the router does not route (LULD, imbalances): not data. */
  | { readonly ok: false; readonly channel: null; readonly reason: 'status' | 'unknown_event' };

const CHANNEL_OF: Readonly<Record<string, DataChannel>> = {
  T: 'tick',
  Q: 'tick',
  A: 'ohlcv',
  AM: 'ohlcv',
  FMV: 'fmv',
};

export function channelOf(ev: string): DataChannel | undefined {
  return CHANNEL_OF[ev];
}

function isNum(v: unknown): v is number {
  return typeof v === 'number';
}

function isSym(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 32;
}

/** Classifies one element of a provider frame into a channel and checks the fields its rules need. */
export function classify(raw: unknown): Classified {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, channel: null, reason: 'unknown_event' };
  }
  const e = raw as Record<string, unknown>;
  const ev = e.ev;
  if (ev === 'status') return { ok: false, channel: null, reason: 'status' };
  const channel = typeof ev === 'string' ? CHANNEL_OF[ev] : undefined;
  if (!channel) return { ok: false, channel: null, reason: 'unknown_event' };
  if (!isSym(e.sym)) return { ok: false, channel, reason: 'malformed_event' };
  switch (ev) {
    case 'T':
      return checkTrade(e);
    case 'Q':
      return checkQuote(e);
    case 'A':
    case 'AM':
      return checkBar(e);
    default:
      return checkFmv(e);
  }
}

function checkTrade(e: Record<string, unknown>): Classified {
  // The trade id arrives as a string; a numeric id from another source is the same id.
  if (typeof e.i === 'number' && Number.isFinite(e.i)) e.i = String(e.i);
  if (!isNum(e.x) || typeof e.i !== 'string' || e.i === '' || !isNum(e.p) || !isNum(e.s) || !isNum(e.t)) {
    return { ok: false, channel: 'tick', reason: 'malformed_event' };
  }
  if (!Number.isFinite(e.p) || e.p <= 0 || !Number.isFinite(e.s) || e.s < 0 || !Number.isFinite(e.t)) {
    return { ok: false, channel: 'tick', reason: 'invalid_trade' };
  }
  return { ok: true, channel: 'tick', event: e as unknown as TradeEvent };
}

function checkQuote(e: Record<string, unknown>): Classified {
  if (!isNum(e.bp) || !isNum(e.ap) || !isNum(e.t))
    return { ok: false, channel: 'tick', reason: 'malformed_event' };
  if (!Number.isFinite(e.bp) || !Number.isFinite(e.ap) || e.bp < 0 || e.ap < 0 || !Number.isFinite(e.t)) {
    return { ok: false, channel: 'tick', reason: 'invalid_quote' };
  }
  return { ok: true, channel: 'tick', event: e as unknown as QuoteEvent };
}

const BAR_FIELDS = ['o', 'h', 'l', 'c', 'v', 's', 'e'] as const;

function checkBar(e: Record<string, unknown>): Classified {
  for (const f of BAR_FIELDS) {
    if (!isNum(e[f])) return { ok: false, channel: 'ohlcv', reason: 'malformed_event' };
  }
  const reason = invalidBarReason(e as unknown as BarEvent);
  if (reason) return { ok: false, channel: 'ohlcv', reason };
  return { ok: true, channel: 'ohlcv', event: e as unknown as BarEvent };
}

/**
 * Why a bar is impossible, or null. Checked in this order so a bar with several defects is always
 * counted under the same reason.
 */
export function invalidBarReason(b: BarEvent): string | null {
  const values = [b.o, b.h, b.l, b.c, b.v, b.s, b.e];
  for (const v of ['vw', 'av', 'a', 'op'] as const) {
    const extra = b[v];
    if (typeof extra === 'number') values.push(extra);
  }
  if (values.some((v) => !Number.isFinite(v))) return 'non_finite_value';
  if (values.some((v) => v < 0)) return 'negative_value';
  if (b.e < b.s) return 'end_before_start';
  if (b.h < Math.max(b.o, b.c)) return 'high_below_open_close';
  if (b.l > Math.min(b.o, b.c)) return 'low_above_open_close';
  return null;
}

function checkFmv(e: Record<string, unknown>): Classified {
  if (!isNum(e.fmv) || !isNum(e.t)) return { ok: false, channel: 'fmv', reason: 'malformed_event' };
  if (!Number.isFinite(e.fmv) || e.fmv <= 0 || !Number.isFinite(e.t)) {
    return { ok: false, channel: 'fmv', reason: 'invalid_value' };
  }
  return { ok: true, channel: 'fmv', event: e as unknown as FmvEvent };
}
