/**
 * `minute_complete`: the provider never says when a minute's bars are all out (its users wait ~2 s
 * after the first bar). A minute is complete when every symbol that traded in it has its minute bar,
 * or when its deadline passes: `deadlineMs` after its first bar arrived, or, for a minute with trades
 * and no bar at all, `noBarDeadlineMs` after the minute ended. Time is the router's clock (the
 * frame's receipt time), so a replay decides exactly as the live run did.
 */
import { MINUTE_MS } from './types';

export interface MinuteCompleteOptions {
  readonly deadlineMs: number;
  readonly noBarDeadlineMs: number;
  /** Missing symbols listed by name in the message (the count is always exact). */
  readonly listMissing: number;
}

export const DEFAULT_MINUTE_COMPLETE: MinuteCompleteOptions = {
  deadlineMs: 2_000,
  noBarDeadlineMs: 10_000,
  listMissing: 50,
};

export interface MinuteComplete {
  readonly ev: 'minute_complete';
  readonly s: number;
  readonly e: number;
  readonly bars: number;
  readonly expected: number;
  readonly missingCount: number;
  readonly missing: string[];
  readonly reason: 'complete' | 'deadline' | 'drain';
}

interface MinuteState {
  readonly traded: Set<string>;
  readonly barred: Set<string>;
  /** Traded symbols still without a bar. */
  waiting: number;
  firstBarAt: number | null;
}

/** Minutes already announced are remembered this long, so late input never announces them twice. */
const ANNOUNCED_MEMORY = 120;

export class MinuteCompletion {
  private readonly minutes = new Map<number, MinuteState>();
  private readonly announced = new Set<number>();
  private readonly announcedOrder: number[] = [];

  constructor(private readonly options: MinuteCompleteOptions = DEFAULT_MINUTE_COMPLETE) {}

  onTrade(sym: string, minute: number): void {
    if (this.announced.has(minute)) return;
    const m = this.minute(minute);
    if (m.traded.has(sym)) return;
    m.traded.add(sym);
    if (!m.barred.has(sym)) m.waiting += 1;
  }

  /** A first-time minute bar; returns the minute if this bar completed it. */
  onMinuteBar(sym: string, minute: number, now: number): MinuteComplete[] {
    if (this.announced.has(minute)) return [];
    const m = this.minute(minute);
    if (m.firstBarAt === null) m.firstBarAt = now;
    if (!m.barred.has(sym)) {
      m.barred.add(sym);
      if (m.traded.has(sym)) m.waiting -= 1;
    }
    if (m.traded.size > 0 && m.waiting === 0) return [this.announce(minute, m, 'complete')];
    return [];
  }

  /** Minutes whose deadline passed at `now`, oldest first. */
  due(now: number): MinuteComplete[] {
    const out: MinuteComplete[] = [];
    for (const [minute, m] of [...this.minutes].sort((a, b) => a[0] - b[0])) {
      const deadline =
        m.firstBarAt !== null
          ? m.firstBarAt + this.options.deadlineMs
          : minute + MINUTE_MS + this.options.noBarDeadlineMs;
      if (now >= deadline) out.push(this.announce(minute, m, 'deadline'));
    }
    return out;
  }

  /** Announces every open minute (end of a replay, shutdown). */
  drain(): MinuteComplete[] {
    return [...this.minutes]
      .sort((a, b) => a[0] - b[0])
      .map(([minute, m]) => this.announce(minute, m, 'drain'));
  }

  get openMinutes(): number {
    return this.minutes.size;
  }

  private minute(minute: number): MinuteState {
    let m = this.minutes.get(minute);
    if (!m) {
      m = { traded: new Set(), barred: new Set(), waiting: 0, firstBarAt: null };
      this.minutes.set(minute, m);
    }
    return m;
  }

  private announce(minute: number, m: MinuteState, reason: MinuteComplete['reason']): MinuteComplete {
    this.minutes.delete(minute);
    this.announced.add(minute);
    this.announcedOrder.push(minute);
    if (this.announcedOrder.length > ANNOUNCED_MEMORY) {
      const old = this.announcedOrder.shift();
      if (old !== undefined) this.announced.delete(old);
    }
    const missing: string[] = [];
    for (const sym of m.traded) if (!m.barred.has(sym)) missing.push(sym);
    missing.sort();
    return {
      ev: 'minute_complete',
      s: minute,
      e: minute + MINUTE_MS,
      bars: m.barred.size,
      expected: m.traded.size,
      missingCount: missing.length,
      missing: missing.slice(0, this.options.listMissing),
      reason,
    };
  }
}
