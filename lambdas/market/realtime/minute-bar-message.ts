/**
 * The minute bars the router hands to persistence (SQS -> the RouterBars consumer -> PostgreSQL):
 * one message per delivered `AM` bar, corrections included. `publishedAt` (the router's clock when it
 * published the bar) orders versions of one bar, so a redelivered original arriving after its
 * correction never overwrites it. Pure: the router builds messages here, the handler parses them.
 */
import { z } from 'zod';
import { invalidBarReason } from './normalise';
import type { BarEvent, SequencedMessage } from './types';

export interface MinuteBarMessage {
  readonly sym: string;
  /** Start and end of the minute, Unix ms. */
  readonly s: number;
  readonly e: number;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
  readonly vw?: number;
  readonly correction: boolean;
  readonly epoch: string;
  readonly offset: number;
  /** Router wall clock at publication, Unix ms: the version of the bar. */
  readonly publishedAt: number;
}

/** The message for a published minute bar, or null for anything else (second bars, control). */
export function minuteBarMessage(m: SequencedMessage, publishedAt: number): MinuteBarMessage | null {
  if (m.channel !== 'ohlcv' || m.kind !== 'bar' || m.data.ev !== 'AM') return null;
  const b = m.data as unknown as BarEvent;
  return {
    sym: b.sym,
    s: b.s,
    e: b.e,
    o: b.o,
    h: b.h,
    l: b.l,
    c: b.c,
    v: b.v,
    ...(typeof b.vw === 'number' ? { vw: b.vw } : {}),
    correction: m.data.correction === true,
    epoch: m.epoch,
    offset: m.offset,
    publishedAt,
  };
}

const finite = z.number().finite();
const MinuteBarSchema = z
  .object({
    sym: z.string().regex(/^\S{1,32}$/, 'sym must be a ticker'),
    s: z.number().int().nonnegative(),
    e: z.number().int().nonnegative(),
    o: finite,
    h: finite,
    l: finite,
    c: finite,
    v: finite,
    vw: finite.optional(),
    correction: z.boolean(),
    epoch: z.string().min(1).max(128),
    offset: z.number().int().positive(),
    publishedAt: z.number().int().positive(),
  })
  .strict();

export type ParsedBar =
  | { readonly ok: true; readonly bar: MinuteBarMessage }
  | { readonly ok: false; readonly reason: string };

/** A queue message body -> a bar, or why it can never be stored (the record then goes to the DLQ). */
export function parseMinuteBarMessage(body: string): ParsedBar {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'body is not JSON' };
  }
  const parsed = MinuteBarSchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      reason: parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
    };
  }
  const bar = parsed.data;
  if (bar.e - bar.s !== 60_000) return { ok: false, reason: 'not a minute bar (e - s must be 60000 ms)' };
  const invalid = invalidBarReason({ ev: 'AM', ...bar });
  if (invalid) return { ok: false, reason: invalid };
  return { ok: true, bar };
}

/** Version order of two messages about one bar: later publication wins, then the higher offset. */
export function newer(a: MinuteBarMessage, b: MinuteBarMessage): boolean {
  return a.publishedAt !== b.publishedAt ? a.publishedAt > b.publishedAt : a.offset > b.offset;
}

/** One message per (symbol, start): the newest version (one upsert statement cannot touch a row twice). */
export function newestPerBar<T extends { bar: MinuteBarMessage }>(items: readonly T[]): T[] {
  const byKey = new Map<string, T>();
  for (const item of items) {
    const key = `${item.bar.sym}|${item.bar.s}`;
    const seen = byKey.get(key);
    if (!seen || newer(item.bar, seen.bar)) byKey.set(key, item);
  }
  return [...byKey.values()];
}
