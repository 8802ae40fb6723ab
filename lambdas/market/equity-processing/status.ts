/**
 * Operator's view of the processing queue: per equity type (priority order) the queue rows by status
 * and the running statistics update_processing_stats keeps.
 */
import type { Queryable } from '../sql/db';
import { getEquityProcessingConfig, type ProcessingStats } from '../sql/processing-queue';

export interface EquityTypeStatus {
  readonly type: string;
  readonly priorityLevel: number;
  readonly batchSize: number;
  readonly rateLimitMs: number;
  readonly updateFrequency: string;
  readonly queue: { pending: number; processing: number; completed: number; failed: number };
  /** Pending rows not yet due (waiting out a retry delay). */
  readonly pendingNotDue: number;
  /** Processing rows whose claim is older than the type's lease (their worker did not report). */
  readonly expiredLeases: number;
  readonly stats: ProcessingStats;
}

export async function equityQueueStatus(db: Queryable): Promise<EquityTypeStatus[]> {
  const { rows } = await db.query<{
    type_name: string;
    pending: number;
    processing: number;
    completed: number;
    failed: number;
    pending_not_due: number;
    expired_leases: number;
  }>(
    `SELECT t.type_name,
            count(q.id) FILTER (WHERE q.status = 'pending')::integer AS pending,
            count(q.id) FILTER (WHERE q.status = 'processing')::integer AS processing,
            count(q.id) FILTER (WHERE q.status = 'completed')::integer AS completed,
            count(q.id) FILTER (WHERE q.status = 'failed')::integer AS failed,
            count(q.id) FILTER (WHERE q.status = 'pending' AND q.scheduled_time > now())::integer
              AS pending_not_due,
            count(q.id) FILTER (
              WHERE q.status = 'processing' AND q.last_attempt < now() - make_interval(
                secs => coalesce((t.processing_rules ->> 'lease_seconds')::numeric, 900)))::integer
              AS expired_leases
     FROM equity_types t
     LEFT JOIN equity_processing_queue q ON q.type = t.type_name
     GROUP BY t.type_name, t.priority_level
     ORDER BY t.priority_level DESC, t.type_name`,
  );
  const out: EquityTypeStatus[] = [];
  for (const r of rows) {
    const config = await getEquityProcessingConfig(db, r.type_name);
    if (!config) continue; // deleted between the two reads
    out.push({
      type: r.type_name,
      priorityLevel: config.priority_level,
      batchSize: config.batch_size,
      rateLimitMs: config.rate_limit_ms,
      updateFrequency: config.update_frequency,
      queue: { pending: r.pending, processing: r.processing, completed: r.completed, failed: r.failed },
      pendingNotDue: r.pending_not_due,
      expiredLeases: r.expired_leases,
      stats: config.stats,
    });
  }
  return out;
}
