/**
 * The IPO scan retried in process after its connection dropped (what `eod run` and the Step
 * Functions handler do): the retry resumes the same run, so the outbox and the streams hold what one
 * clean scan leaves, one maintenance bracket included. The fault is real: the backend of the
 * connection the scan checks out for its apply transaction is terminated on the real server.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIpoScan } from '../../lambdas/market/ipo/scan';
import { CHANNELS } from '../../lambdas/platform/event-bus';
import { retryTransient } from '../../lambdas/platform/faults';
import { type IpoStage, seedSymbols, startIpoStage, streamEntries } from './ipo-support';

const D = '2025-06-16';

/** Every outbox row's dedupe key with the run id replaced, in delivery order. */
async function outboxKeys(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ dedupe_key: string; published: boolean }>(
    'SELECT dedupe_key, published_at IS NOT NULL AS published FROM market_outbox ORDER BY id',
  );
  return rows.map(
    (r) => `${r.dedupe_key.replace(/:[0-9a-f-]{36}$/, ':<run>')}${r.published ? '' : ' (undelivered)'}`,
  );
}

/**
 * The pool's next checkout after the first `arm()` comes back with its backend terminated by the server:
 * the transaction that uses it fails with "terminating connection due to administrator command".
 */
function dropNextCheckout(pool: pg.Pool): { arm(): void; dropped(): number } {
  let armed = false;
  let used = false;
  let dropped = 0;
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => Promise<pg.PoolClient>;
  (pool as { connect: (...args: unknown[]) => Promise<pg.PoolClient> | undefined }).connect = (...args) => {
    // pool.query checks out with a callback: those pass through untouched.
    if (args.length > 0 || !armed) return connect(...args);
    armed = false;
    return (async () => {
      const client = await connect();
      const pid = (client as unknown as { processID: number }).processID;
      const killer = await connect();
      try {
        await killer.query('SELECT pg_terminate_backend($1)', [pid]);
      } finally {
        killer.release();
      }
      dropped += 1;
      return client;
    })();
  };
  return {
    arm: () => {
      if (used) return;
      used = true;
      armed = true;
    },
    dropped: () => dropped,
  };
}

describe('IPO scan retried after a dropped connection', () => {
  let clean: IpoStage;
  let faulted: IpoStage;
  const market = {
    seed: 'ipo-retry-it',
    size: 200,
    listings: { [D]: 4 },
    delistings: { [D]: 2 },
  };

  beforeAll(async () => {
    [clean, faulted] = await Promise.all([
      startIpoStage({ label: 'ipo_retry_clean', market }),
      startIpoStage({ label: 'ipo_retry_fault', market }),
    ]);
    await seedSymbols(clean.db.pool, clean.api.market.activeOn(D), '2025-01-02');
    await seedSymbols(faulted.db.pool, faulted.api.market.activeOn(D), '2025-01-02');
  });
  afterAll(async () => {
    await Promise.allSettled([clean?.close(), faulted?.close()]);
  });

  it('leaves the outbox rows and stream messages of one clean scan (one maintenance bracket)', {
    timeout: 120_000,
  }, async () => {
    // Prepare: the apply transaction's connection drops once, after the start notice went out
    const fault = dropNextCheckout(faulted.db.pool);
    const provider = {
      listActiveTickers: (date: string) => faulted.provider.listActiveTickers(date),
      tickerDetails: (symbol: string) => {
        fault.arm();
        return faulted.provider.tickerDetails(symbol);
      },
    };
    let retries = 0;

    // Act
    const cleanSummary = await runIpoScan(
      { pool: clean.db.pool, provider: clean.provider, transport: clean.transport },
      { date: D },
    );
    const summary = await retryTransient(
      () => runIpoScan({ pool: faulted.db.pool, provider, transport: faulted.transport }, { date: D }),
      {
        baseDelayMs: 10,
        onRetry: () => {
          retries += 1;
        },
      },
    );

    // Assess: the fault happened and the scan was retried
    expect(fault.dropped()).toBe(1);
    expect(retries).toBe(1);
    expect(summary).toMatchObject({ changed: true, processed: 4, archived: 2, failed: 0 });
    // ... and the retry resumed the run the start notice announced
    expect(await outboxKeys(faulted.db.pool)).toEqual(await outboxKeys(clean.db.pool));
    const entries = await streamEntries(faulted.redis, faulted.bus);
    const cleanEntries = await streamEntries(clean.redis, clean.bus);
    const counts = (m: Map<string, string[]>) =>
      Object.fromEntries([...m].map(([c, ids]) => [c, ids.length]));
    expect(counts(entries)).toEqual(counts(cleanEntries));
    expect(entries.get(CHANNELS.maintenanceStarted)).toHaveLength(1);
    expect(entries.get(CHANNELS.maintenanceCompleted)).toHaveLength(1);
    const { rows } = await faulted.db.pool.query<{ started: string; completed: string }>(
      `SELECT (SELECT payload ->> 'run_id' FROM market_outbox WHERE event_type = 'maintenance_started') AS started,
              (SELECT payload ->> 'run_id' FROM market_outbox WHERE event_type = 'maintenance_completed') AS completed`,
    );
    expect(rows[0]?.completed).toBe(rows[0]?.started);
    expect(rows[0]?.completed).toBe(summary.runId);
    expect(cleanSummary.messagesEnqueued).toBe(summary.messagesEnqueued);
  });

  it('a re-run after the retried scan changes nothing and publishes nothing', async () => {
    const before = await outboxKeys(faulted.db.pool);
    const again = await runIpoScan(
      { pool: faulted.db.pool, provider: faulted.provider, transport: faulted.transport },
      { date: D },
    );
    expect(again).toMatchObject({ changed: false, messagesEnqueued: 0 });
    expect(await outboxKeys(faulted.db.pool)).toEqual(before);
  });
});
