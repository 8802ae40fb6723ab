/**
 * Transactional outbox (schemas/sql/0170_market_outbox.sql): jobs enqueue app messages and SQS jobs
 * in the transaction that makes the change; `relayOutbox` delivers them in order, exactly once per
 * dedupe key. Pure domain code: delivery goes through an `OutboxTransport` the handler supplies.
 */
import type pg from 'pg';
import type { Queryable } from '../market/sql/db';
import type { Channel } from './event-bus';
import { retryTransient } from './faults';

export type Destination = { readonly channel: Channel } | { readonly queue: string };

export interface OutboxMessage {
  readonly dedupeKey: string;
  readonly destination: Destination;
  readonly eventType: string;
  readonly payload: Record<string, unknown>;
  /**
   * The envelope's message_id when the producer derives it from the content (a UUID; one per
   * dedupe key): consumers then see the same id for the same finding whatever row carried it.
   * Default: a random UUID per row.
   */
  readonly messageId?: string;
}

export interface PendingMessage {
  readonly id: string;
  readonly dedupeKey: string;
  readonly messageId: string;
  readonly eventType: string;
  readonly payload: Record<string, unknown>;
  readonly createdAt: Date;
  readonly attempts: number;
  readonly destination: Destination;
}

/** Delivery of one outbox row; implemented with EventBus + SQS by the handlers (lambdas/platform/outbox-transport). */
export interface OutboxTransport {
  publish(channel: Channel, message: PendingMessage): Promise<void>;
  /**
   * Whether a message with this id already reached the channel's stream: asked only for rows whose
   * earlier attempt may have published before the process died (attempts > 0).
   */
  alreadyPublished(channel: Channel, messageId: string): Promise<boolean>;
  sendToQueue(queue: string, message: PendingMessage): Promise<void>;
}

export class OutboxDeliveryError extends Error {
  constructor(
    readonly failed: number,
    readonly firstError: string,
  ) {
    super(`${failed} outbox message(s) could not be delivered; first error: ${firstError}`);
    this.name = 'OutboxDeliveryError';
  }
}

function encodeDestination(d: Destination): string {
  return 'channel' in d ? `channel:${d.channel}` : `queue:${d.queue}`;
}

function decodeDestination(text: string): Destination {
  if (text.startsWith('channel:')) return { channel: text.slice('channel:'.length) as Channel };
  return { queue: text.slice('queue:'.length) };
}

/**
 * Enqueues messages; a dedupe key already present is skipped. Returns the keys actually enqueued.
 * Call inside the transaction that makes the change the messages announce.
 */
export async function enqueueOutbox(db: Queryable, messages: readonly OutboxMessage[]): Promise<string[]> {
  if (messages.length === 0) return [];
  const { rows } = await db.query<{ dedupe_key: string }>(
    // WITH ORDINALITY keeps the caller's order in the ids, which is the delivery order.
    `INSERT INTO market_outbox (dedupe_key, destination, event_type, payload, message_id)
     SELECT m.e ->> 'dedupe_key', m.e ->> 'destination', m.e ->> 'event_type', m.e -> 'payload',
            coalesce((m.e ->> 'message_id')::uuid, gen_random_uuid())
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS m (e, ord)
     ORDER BY m.ord
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING dedupe_key`,
    [
      JSON.stringify(
        messages.map((m) => ({
          dedupe_key: m.dedupeKey,
          destination: encodeDestination(m.destination),
          event_type: m.eventType,
          payload: m.payload,
          ...(m.messageId ? { message_id: m.messageId } : {}),
        })),
      ),
    ],
  );
  return rows.map((r) => r.dedupe_key);
}

export interface RelayResult {
  readonly delivered: number;
  /** Rows found already in the stream (an earlier attempt died after publishing): marked, not re-sent. */
  readonly recovered: number;
  readonly failed: number;
  readonly errors: string[];
}

export interface RelayOptions {
  /** Rows claimed per transaction. */
  readonly batchSize?: number;
  /** Delivered rows older than this are deleted (dedupe needs them only while a re-run is plausible). */
  readonly retentionDays?: number;
  /** How long a claim keeps other relays off a row (must exceed one batch's delivery time). */
  readonly leaseSeconds?: number;
  /** How long one message's delivery is retried after transient faults before it is released. */
  readonly retryBudgetMs?: number;
}

/**
 * Rows this process leased whose pass could not record the outcome (the database went away between
 * delivering and marking): their lease would keep this process's own retry off them until it
 * expires, leaving them undelivered after a run that otherwise recovered. Only this process may take
 * them back early, and only after the pass that leased them has ended.
 */
const orphanedLeasesByPool = new WeakMap<pg.Pool, Set<string>>();

/**
 * Delivers undelivered rows oldest first. A pass claims a batch by setting a short lease and
 * counting the attempt (committed before delivery), so relays in several processes (the scan,
 * backfill workers) never deliver the same row at once, and no lock is held across network calls.
 * If a process dies after publishing but before marking, the row's lease expires and the next relay
 * finds attempts > 0 and looks for the message_id in the stream before re-sending. A row that fails
 * is released for the next relay; within a pass rows go out in id order.
 */
export async function relayOutbox(
  pool: pg.Pool,
  transport: OutboxTransport,
  options: RelayOptions = {},
): Promise<RelayResult> {
  const batchSize = options.batchSize ?? 200;
  const leaseSeconds = options.leaseSeconds ?? 60;
  let delivered = 0;
  let recovered = 0;
  let failed = 0;
  const errors: string[] = [];
  const seen = new Set<string>();
  // Per pool: a pool is one database and schema, where outbox ids mean one row.
  let orphanedLeases = orphanedLeasesByPool.get(pool);
  if (!orphanedLeases) {
    orphanedLeases = new Set<string>();
    orphanedLeasesByPool.set(pool, orphanedLeases);
  }
  for (;;) {
    const { rows } = await pool.query<{
      id: string;
      dedupe_key: string;
      destination: string;
      message_id: string;
      event_type: string;
      payload: Record<string, unknown>;
      created_at: Date;
      attempts: number;
    }>(
      `UPDATE market_outbox o
       SET attempts = o.attempts + 1, last_attempt_at = now(),
           lease_until = now() + make_interval(secs => $2)
       WHERE o.id IN (
         SELECT id FROM market_outbox
         WHERE published_at IS NULL
           AND (lease_until IS NULL OR lease_until < now() OR id = ANY($4::bigint[]))
           AND NOT (id = ANY($3::bigint[]))
         ORDER BY id
         LIMIT $1
         FOR UPDATE SKIP LOCKED
       )
       RETURNING o.id, o.dedupe_key, o.destination, o.message_id, o.event_type, o.payload,
                 o.created_at, o.attempts - 1 AS attempts`,
      [batchSize, leaseSeconds, [...seen], [...orphanedLeases]],
    );
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    for (const r of rows) orphanedLeases.delete(r.id);
    const published: string[] = [];
    const released: { id: string; error: string }[] = [];
    for (const r of rows) {
      seen.add(r.id);
      const message: PendingMessage = {
        id: r.id,
        dedupeKey: r.dedupe_key,
        messageId: r.message_id,
        eventType: r.event_type,
        payload: r.payload,
        createdAt: r.created_at,
        attempts: r.attempts,
        destination: decodeDestination(r.destination),
      };
      try {
        const d = message.destination;
        // A Redis or SQS endpoint that drops out for a moment is waited for here (the row is
        // leased to this relay); a longer outage leaves the row for the next relay.
        const outcome = await retryTransient(
          async (attempt): Promise<'recovered' | 'delivered'> => {
            if ('channel' in d) {
              if (
                (message.attempts > 0 || attempt > 1) &&
                (await transport.alreadyPublished(d.channel, message.messageId))
              ) {
                return 'recovered';
              }
              await transport.publish(d.channel, message);
              return 'delivered';
            }
            await transport.sendToQueue(d.queue, message);
            return 'delivered';
          },
          { budgetMs: options.retryBudgetMs ?? 15_000 },
        );
        if (outcome === 'recovered') recovered++;
        else delivered++;
        published.push(r.id);
      } catch (error) {
        failed++;
        const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        if (errors.length < 5) errors.push(`${message.dedupeKey}: ${text}`);
        released.push({ id: r.id, error: text.slice(0, 500) });
      }
    }
    try {
      // Recording the outcome is idempotent: a database that drops out for a moment here is waited
      // for, so what was delivered is marked and never delivered again (a queue has no dedupe).
      await retryTransient(
        async () => {
          if (published.length > 0) {
            await pool.query(
              'UPDATE market_outbox SET published_at = now(), lease_until = NULL, last_error = NULL WHERE id = ANY($1::bigint[])',
              [published],
            );
          }
          if (released.length > 0) {
            await pool.query(
              `UPDATE market_outbox o SET lease_until = NULL, last_error = r.error
               FROM jsonb_to_recordset($1::jsonb) AS r (id bigint, error text)
               WHERE o.id = r.id`,
              [JSON.stringify(released)],
            );
          }
        },
        { budgetMs: options.retryBudgetMs ?? 15_000 },
      );
    } catch (error) {
      // Delivered (or not) but not recorded after the budget: this process's next relay takes these
      // rows back at once; those already in a stream are found there and marked, not sent again.
      for (const r of rows) orphanedLeases.add(r.id);
      throw error;
    }
    if (rows.length < batchSize) break;
  }
  await pool.query(
    `DELETE FROM market_outbox
     WHERE published_at IS NOT NULL AND published_at < now() - make_interval(days => $1)`,
    [options.retentionDays ?? 14],
  );
  return { delivered, recovered, failed, errors };
}

/**
 * Throws OutboxDeliveryError when a relay left messages undelivered: they stay in the outbox, and
 * the retry (or the next run) relays them, so the job must fail rather than report success.
 */
export function assertDelivered(relay: Pick<RelayResult, 'failed' | 'errors'>): void {
  if (relay.failed > 0) throw new OutboxDeliveryError(relay.failed, relay.errors[0] ?? 'unknown');
}

/** Rows not yet delivered (operator status, tests). */
export async function pendingOutboxCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::integer AS n FROM market_outbox WHERE published_at IS NULL',
  );
  return rows[0]?.n ?? 0;
}
