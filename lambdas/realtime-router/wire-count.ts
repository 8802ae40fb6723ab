/**
 * What a `/stream` client received, counted the way the router counts it: live data messages per
 * channel (the router's `delivered`, and the session's `sent`), snapshots sent on subscribe
 * (`"snapshot": true`, the session's `snapshot`), control messages (`minute_complete`, `gap`) and the
 * router's replies (`subscribed`, `resumed`, `resync`, `error`, which carry a `channel` too but are
 * not messages of it). Live messages are also checked for repeats by their exact key (the router's
 * dedup keys), so a client-side count can prove "nothing lost, nothing twice". Used by `npm start`'s
 * burst and the live surge benchmark.
 */
import { CHANNELS, isRouterChannel, type RouterChannel } from '../market/realtime/types';

function perChannel(): Record<RouterChannel, number> {
  return { tick: 0, event: 0, fmv: 0, ohlcv: 0 };
}

export interface WireMessage {
  readonly channel?: unknown;
  readonly offset?: unknown;
  readonly sym?: unknown;
  readonly snapshot?: unknown;
  readonly ev?: unknown;
  readonly data?: Record<string, unknown>;
}

/** The identity of a delivered item (as the router deduplicates it), or null for control messages. */
export function deliveredKey(m: WireMessage): string | null {
  const d = m.data;
  if (!d || typeof d.ev !== 'string')
    return d && typeof d.type === 'string' ? `E|${m.sym}|${d.type}|${d.s}` : null;
  switch (d.ev) {
    case 'T':
      return `T|${m.sym}|${d.x}|${d.i}`;
    case 'Q':
      return `Q|${m.sym}|${d.t}|${d.bp}|${d.bs}|${d.ap}|${d.as}|${d.q}`;
    case 'A':
    case 'AM':
      return `${d.ev}|${m.sym}|${d.s}|${d.correction === true ? `${d.o}|${d.h}|${d.l}|${d.c}|${d.v}` : ''}`;
    case 'FMV':
      return `F|${m.sym}|${d.t}`;
    default:
      return null;
  }
}

export class WireCounter {
  readonly live = perChannel();
  readonly snapshot = perChannel();
  readonly control = perChannel();
  /** Live messages whose key this client had already received (must stay 0). */
  readonly duplicates = perChannel();
  replies = 0;
  private readonly seen: Set<string> | null;

  /** `checkKeys`: remember every live key (memory grows with the run: tests and benchmarks only). */
  constructor(checkKeys = false) {
    this.seen = checkKeys ? new Set() : null;
  }

  /** Counts one received message (already parsed); returns its channel when it was a live message. */
  add(m: WireMessage): RouterChannel | null {
    const channel = m.channel;
    if (!isRouterChannel(channel) || typeof m.offset !== 'number' || m.data === undefined) {
      this.replies += 1;
      return null;
    }
    if (m.snapshot === true) {
      this.snapshot[channel] += 1;
      return null;
    }
    const key = deliveredKey(m);
    if (key === null) {
      this.control[channel] += 1;
      return null;
    }
    this.live[channel] += 1;
    if (this.seen) {
      if (this.seen.has(key)) this.duplicates[channel] += 1;
      else this.seen.add(key);
    }
    return channel;
  }

  /** `12 tick, 3 event, ... (+ N snapshot)` */
  describe(): string {
    const snap = CHANNELS.reduce((n, c) => n + this.snapshot[c], 0);
    return `${CHANNELS.map((c) => `${this.live[c]} ${c}`).join(', ')} live${snap > 0 ? ` (+ ${snap} snapshot values on subscribe)` : ''}`;
  }
}
