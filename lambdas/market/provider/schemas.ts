import { z } from 'zod';

/**
 * Polygon/Massive REST response shapes. Only the fields the pipeline uses are required; others pass
 * through unchecked (the provider adds fields over time). Nullable where the provider omits values
 * for some tickers (market_cap for ETFs, list_date for old listings, vw/n for some bars).
 */

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const optionalNumber = z.number().nullish();

export const TickerListItemSchema = z.object({
  ticker: z.string().min(1),
  name: z.string().nullish(),
  market: z.string(),
  type: z.string().nullish(),
  primary_exchange: z.string().nullish(),
  active: z.boolean(),
  delisted_utc: z.string().nullish(),
});

export const TickerListResponseSchema = z.object({
  status: z.string(),
  results: z.array(TickerListItemSchema).default([]),
  next_url: z.url().nullish(),
});

export const TickerDetailsSchema = z.object({
  ticker: z.string().min(1),
  name: z.string(),
  market: z.string(),
  type: z.string().nullish(),
  active: z.boolean(),
  primary_exchange: z.string().nullish(),
  market_cap: optionalNumber,
  list_date: isoDate.nullish(),
  delisted_utc: z.string().nullish(),
  sic_code: z.string().nullish(),
  sic_description: z.string().nullish(),
  share_class_shares_outstanding: optionalNumber,
  weighted_shares_outstanding: optionalNumber,
});

export const TickerDetailsResponseSchema = z.object({
  status: z.string(),
  results: TickerDetailsSchema,
});

const barFields = {
  o: z.number(),
  h: z.number(),
  l: z.number(),
  c: z.number(),
  v: z.number().nonnegative(),
  vw: optionalNumber,
  n: optionalNumber,
  /** Start of the aggregate window, Unix ms: midnight America/New_York of the session for daily bars. */
  t: z.number().int(),
};

export const AggregatesResponseSchema = z.object({
  status: z.string(),
  ticker: z.string().optional(),
  // The provider omits `results` when the range holds no bars.
  results: z.array(z.object(barFields)).default([]),
  next_url: z.url().nullish(),
});

export const GroupedDailyResponseSchema = z.object({
  status: z.string(),
  results: z.array(z.object({ ...barFields, T: z.string().min(1) })).default([]),
});

export const SplitSchema = z.object({
  ticker: z.string().min(1),
  execution_date: isoDate,
  split_from: z.number().positive(),
  split_to: z.number().positive(),
});

export const SplitsResponseSchema = z.object({
  status: z.string(),
  results: z.array(SplitSchema).default([]),
  next_url: z.url().nullish(),
});
