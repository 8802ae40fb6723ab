/**
 * The EOD chain's correlation step (after the universe sync; an observer: it reports on the day and
 * nothing later depends on it). For every ETF of the etf/<theme> universes: the rolling correlation
 * of its daily log returns with every other ETF of its theme and with the broad-market benchmark,
 * over the last `windowSessions` sessions up to the trade date (NYSE calendar). Stored in
 * etf_correlations (migration 0260); an ETF whose correlations moved at least `threshold` away from
 * the values last published gets one tickstock.etf.correlation_update through the outbox, in the
 * transaction that stores them, so a re-run that changes nothing publishes nothing.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { CHANNELS, SEED_SERVICES } from '../../platform/event-bus';
import {
  enqueueOutbox,
  type OutboxMessage,
  type OutboxTransport,
  type RelayResult,
  relayOutbox,
} from '../../platform/outbox';
import { withTransaction } from '../../platform/postgres';
import { addTradingDays, type IsoDate, isTradingDay, toDayNumber, tradingDays } from '../calendar';
import { correlate, logReturns } from './math';

export const CORRELATION_SERVICE = SEED_SERVICES.etfUniverseManager;

export interface CorrelationConfig {
  /** Sessions of returns in the window (60 = about three months). */
  readonly windowSessions: number;
  /** Fewest common sessions for a correlation (fewer: the pair is not stored). */
  readonly minObservations: number;
  /** |new - last published| at which a pair's change is announced. */
  readonly threshold: number;
  /** The broad-market benchmark; when it has no bars, the largest fund of etf/broad_market. */
  readonly benchmark: string;
}

/**
 * 60 sessions of returns (about three months: long enough that one day moves a correlation by a few
 * hundredths, short enough to follow regime changes), at least 40 in common, announce moves of 0.10.
 */
export const DEFAULT_CORRELATION_CONFIG: CorrelationConfig = {
  windowSessions: 60,
  minObservations: 40,
  threshold: 0.1,
  benchmark: 'SPY',
};

export interface EtfCorrelationDeps {
  readonly pool: pg.Pool;
  readonly transport: OutboxTransport;
}

export interface EtfCorrelationSummary {
  readonly tradeDate: IsoDate;
  readonly status: 'computed' | 'skipped';
  readonly reason?: string;
  readonly windowSessions: number;
  readonly benchmark: string | null;
  readonly etfs: number;
  readonly pairs: number;
  /** ETFs announced on tickstock.etf.correlation_update by this run. */
  readonly published: number;
  readonly messagesEnqueued: number;
  readonly relay: RelayResult;
  readonly seconds: number;
}

interface PairRow {
  symbol: string;
  peer: string;
  relation: 'theme' | 'market';
  theme: string;
  observations: number;
  correlation: number;
}

const key = (p: Pick<PairRow, 'symbol' | 'relation' | 'peer'>) => `${p.symbol}|${p.relation}|${p.peer}`;

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The sessions of the window: windowSessions returns need windowSessions + 1 closes. */
export function windowSessionsOf(tradeDate: IsoDate, windowSessions: number): IsoDate[] {
  return tradingDays(addTradingDays(tradeDate, -windowSessions), tradeDate);
}

export async function runEtfCorrelation(
  deps: EtfCorrelationDeps,
  options: { readonly tradeDate: IsoDate; readonly config?: Partial<CorrelationConfig> },
): Promise<EtfCorrelationSummary> {
  const started = performance.now();
  const { tradeDate } = options;
  toDayNumber(tradeDate);
  const config = { ...DEFAULT_CORRELATION_CONFIG, ...options.config };
  if (!(config.threshold > 0 && config.threshold <= 2)) throw new RangeError('threshold must be in (0, 2]');
  if (!(config.minObservations >= 2 && config.minObservations <= config.windowSessions)) {
    throw new RangeError('minObservations must be in [2, windowSessions]');
  }
  const empty = {
    windowSessions: config.windowSessions,
    etfs: 0,
    pairs: 0,
    published: 0,
    messagesEnqueued: 0,
  };
  if (!isTradingDay(tradeDate)) {
    return {
      tradeDate,
      status: 'skipped',
      reason: `${tradeDate} is not a trading day`,
      benchmark: null,
      ...empty,
      relay: { delivered: 0, recovered: 0, failed: 0, errors: [] },
      seconds: (performance.now() - started) / 1000,
    };
  }
  const sessions = windowSessionsOf(tradeDate, config.windowSessions);
  const from = sessions[0] as IsoDate;

  const { rows: members } = await deps.pool.query<{ theme: string; symbol: string }>(
    `SELECT u.name AS theme, m.symbol FROM universes u JOIN universe_members m ON m.universe_id = u.id
     WHERE u.category = 'etf' ORDER BY u.name, m.ordinal`,
  );
  const themes = new Map<string, string[]>();
  for (const m of members) themes.set(m.theme, [...(themes.get(m.theme) ?? []), m.symbol]);
  const candidates = [...new Set([config.benchmark, ...members.map((m) => m.symbol)])];
  const { rows: bars } = await deps.pool.query<{ symbol: string; date: string; close: number }>(
    `SELECT symbol, date::text AS date, close::float8 AS close FROM ohlcv_daily
     WHERE symbol = ANY($1::text[]) AND date BETWEEN $2::date AND $3::date`,
    [candidates, from, tradeDate],
  );
  const closes = new Map<string, Map<IsoDate, number>>();
  for (const b of bars) {
    const m = closes.get(b.symbol) ?? new Map<IsoDate, number>();
    m.set(b.date, b.close);
    closes.set(b.symbol, m);
  }
  const returns = new Map<string, (number | null)[]>();
  const returnsOf = (symbol: string) => {
    let r = returns.get(symbol);
    if (!r) {
      r = logReturns(closes.get(symbol) ?? new Map(), sessions);
      returns.set(symbol, r);
    }
    return r;
  };
  const usable = (symbol: string) =>
    returnsOf(symbol).filter((x) => x !== null).length >= config.minObservations;
  const benchmark = usable(config.benchmark)
    ? config.benchmark
    : ((themes.get('broad_market') ?? []).find(usable) ?? null);

  const computed: PairRow[] = [];
  for (const [theme, list] of themes) {
    for (const symbol of list) {
      const mine = returnsOf(symbol);
      for (const peer of list) {
        if (peer === symbol) continue;
        const c = correlate(mine, returnsOf(peer), config.minObservations);
        if (c) computed.push({ symbol, peer, relation: 'theme', theme, observations: c.n, correlation: c.r });
      }
      if (benchmark && benchmark !== symbol) {
        const c = correlate(mine, returnsOf(benchmark), config.minObservations);
        if (c) {
          computed.push({
            symbol,
            peer: benchmark,
            relation: 'market',
            theme,
            observations: c.n,
            correlation: c.r,
          });
        }
      }
    }
  }

  const result = await withTransaction(deps.pool, async (client) => {
    // A retry racing a slow attempt takes its turn instead of comparing against the same old values.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('etf-correlation'))");
    const { rows: prior } = await client.query<{
      symbol: string;
      peer: string;
      relation: 'theme' | 'market';
      published_correlation: number | null;
    }>('SELECT symbol, peer, relation, published_correlation FROM etf_correlations');
    const published = new Map(prior.map((p) => [key(p), p.published_correlation]));

    // Per ETF: the pairs that moved at least the threshold from what the app was last told.
    const changes = new Map<string, { row: PairRow; previous: number | null }[]>();
    for (const row of computed) {
      const previous = published.get(key(row)) ?? null;
      if (previous !== null && Math.abs(row.correlation - previous) < config.threshold - 1e-9) continue;
      changes.set(row.symbol, [...(changes.get(row.symbol) ?? []), { row, previous }]);
    }
    const announced = new Set<string>();
    for (const list of changes.values()) for (const c of list) announced.add(key(c.row));

    await client.query(
      `CREATE TEMP TABLE etf_correlation_new (LIKE etf_correlations INCLUDING DEFAULTS) ON COMMIT DROP`,
    );
    await client.query(
      `INSERT INTO etf_correlation_new (symbol, peer, relation, theme, window_sessions, as_of, observations,
                                        correlation, published_correlation, published_as_of)
       SELECT r.symbol, r.peer, r.relation, r.theme, $2, $3::date, r.observations, r.correlation,
              CASE WHEN r.announce THEN r.correlation END, CASE WHEN r.announce THEN $3::date END
       FROM jsonb_to_recordset($1::jsonb) AS r (symbol text, peer text, relation text, theme text,
                                                observations integer, correlation float8, announce boolean)`,
      [
        JSON.stringify(computed.map((r) => ({ ...r, announce: announced.has(key(r)) }))),
        config.windowSessions,
        tradeDate,
      ],
    );
    // Pairs no longer computed (a fund left its theme, too few sessions in common) go.
    await client.query(
      `DELETE FROM etf_correlations c WHERE NOT EXISTS (
         SELECT 1 FROM etf_correlation_new n WHERE n.symbol = c.symbol AND n.relation = c.relation AND n.peer = c.peer)`,
    );
    await client.query(
      `INSERT INTO etf_correlations AS c (symbol, peer, relation, theme, window_sessions, as_of, observations,
                                          correlation, published_correlation, published_as_of)
       SELECT symbol, peer, relation, theme, window_sessions, as_of, observations, correlation,
              published_correlation, published_as_of FROM etf_correlation_new
       ON CONFLICT (symbol, relation, peer) DO UPDATE
         SET theme = EXCLUDED.theme, window_sessions = EXCLUDED.window_sessions, as_of = EXCLUDED.as_of,
             observations = EXCLUDED.observations, correlation = EXCLUDED.correlation,
             published_correlation = coalesce(EXCLUDED.published_correlation, c.published_correlation),
             published_as_of = coalesce(EXCLUDED.published_as_of, c.published_as_of),
             updated_at = now()
         WHERE (c.theme, c.window_sessions, c.as_of, c.observations, c.correlation)
               IS DISTINCT FROM (EXCLUDED.theme, EXCLUDED.window_sessions, EXCLUDED.as_of,
                                 EXCLUDED.observations, EXCLUDED.correlation)
            OR EXCLUDED.published_correlation IS NOT NULL`,
    );

    const messages: OutboxMessage[] = [...changes.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([symbol, list]) => {
        const market = computed.find((r) => r.symbol === symbol && r.relation === 'market');
        const themePeers = computed.filter((r) => r.symbol === symbol && r.relation === 'theme');
        const mean =
          themePeers.length === 0
            ? null
            : Math.round((themePeers.reduce((s, r) => s + r.correlation, 0) / themePeers.length) * 1e4) / 1e4;
        const changed = list.map(({ row, previous }) => ({
          peer: row.peer,
          relation: row.relation,
          correlation: row.correlation,
          previous,
          observations: row.observations,
        }));
        return {
          dedupeKey: `etf.correlation_update:${tradeDate}:${symbol}:${digest(changed)}`,
          destination: { channel: CHANNELS.etfCorrelationUpdate },
          eventType: 'correlation_update',
          payload: {
            symbol,
            theme: list[0]?.row.theme,
            trade_date: tradeDate,
            window_sessions: config.windowSessions,
            threshold: config.threshold,
            benchmark: market ? { symbol: market.peer, correlation: market.correlation } : null,
            theme_mean_correlation: mean,
            theme_peers: themePeers.length,
            changes: changed,
          },
        };
      });
    await client.query(
      `INSERT INTO etf_correlation_runs AS r (trade_date, window_sessions, benchmark, etfs, pairs, published)
       VALUES ($1::date, $2, $3, $4, $5, $6)
       ON CONFLICT (trade_date) DO UPDATE
         SET window_sessions = EXCLUDED.window_sessions, benchmark = EXCLUDED.benchmark, etfs = EXCLUDED.etfs,
             pairs = EXCLUDED.pairs, published = EXCLUDED.published, runs = r.runs + 1, last_run_at = now()`,
      [
        tradeDate,
        config.windowSessions,
        benchmark,
        new Set(computed.map((r) => r.symbol)).size,
        computed.length,
        messages.length,
      ],
    );
    const enqueued = await enqueueOutbox(client, messages);
    return { published: messages.length, enqueued: enqueued.length };
  });
  const relay = await relayOutbox(deps.pool, deps.transport);
  return {
    tradeDate,
    status: 'computed',
    windowSessions: config.windowSessions,
    benchmark,
    etfs: new Set(computed.map((r) => r.symbol)).size,
    pairs: computed.length,
    published: result.published,
    messagesEnqueued: result.enqueued,
    relay,
    seconds: (performance.now() - started) / 1000,
  };
}
