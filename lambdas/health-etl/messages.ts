import { z } from 'zod';

/** One uploaded object the ETL must process. */
export interface ObjectRef {
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string;
  readonly etag?: string;
  /** Object size in bytes: S3 notifications carry it, direct uploads may not. */
  readonly size?: number;
  /** From a direct upload message; S3 notifications carry none. */
  readonly correlationId?: string;
}

// S3 event notification (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)
const s3Notification = z.object({
  Records: z
    .array(
      z.object({
        eventSource: z.literal('aws:s3'),
        eventName: z.string(),
        s3: z.object({
          bucket: z.object({ name: z.string().min(1) }),
          object: z.object({
            key: z.string().min(1),
            eTag: z.string().optional(),
            versionId: z.string().optional(),
            size: z.number().int().nonnegative().optional(),
          }),
        }),
      }),
    )
    .min(1),
});

// S3 sends this once when a notification configuration is created.
const s3TestEvent = z.object({ Event: z.literal('s3:TestEvent') });

// A producer that writes to the bucket and announces the object itself, in camelCase or snake_case.
const directUpload = z
  .object({
    bucket: z.string().min(1),
    key: z.string().min(1),
    versionId: z.string().optional(),
    version_id: z.string().optional(),
    etag: z.string().optional(),
    size: z.number().int().nonnegative().optional(),
    correlationId: z.string().optional(),
    correlation_id: z.string().optional(),
  })
  .transform(
    (m): ObjectRef => ({
      bucket: m.bucket,
      key: m.key,
      versionId: m.versionId ?? m.version_id,
      etag: m.etag,
      size: m.size,
      correlationId: m.correlationId ?? m.correlation_id,
    }),
  );

/** S3 URL-encodes keys in notifications, with '+' for spaces. */
function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/**
 * The objects a queue message announces (an S3 test event announces none): the body schema of the
 * handler's batch parser. A body that matches none of the three shapes fails its record, which
 * returns to the queue and, after maxReceiveCount, the dead-letter queue.
 */
export const announcedObjects = z.union([
  s3Notification.transform((n): ObjectRef[] =>
    n.Records.filter((r) => r.eventName.startsWith('ObjectCreated')).map((r) => ({
      bucket: r.s3.bucket.name,
      key: decodeS3Key(r.s3.object.key),
      versionId: r.s3.object.versionId || undefined,
      etag: r.s3.object.eTag,
      size: r.s3.object.size,
    })),
  ),
  s3TestEvent.transform((): ObjectRef[] => []),
  directUpload.transform((ref): ObjectRef[] => [ref]),
]);

/**
 * Whether a queue message announces a sleep export (`raw/SleepSessionRecord/...`, or the schema
 * name `AvroSleepSessionRecord` some producers use). Read from the raw body: the batch is ordered
 * before it is parsed, and a key never needs decoding for this name.
 */
export function announcesSleep(body: string): boolean {
  return body.includes('SleepSessionRecord');
}

/**
 * The order a batch runs in (stable): the most deferred first (so it is the object that always
 * starts), then sleep exports, whose sessions tell the heart-rate exports of the same batch when
 * the person slept (lambdas/health/sleep-spans.ts), else arrival order: of several near-identical
 * syncs, the first uploaded is the one processed.
 */
export function batchOrder<T extends { body: string }>(
  records: readonly T[],
  deferralsOf: (r: T) => number,
): T[] {
  return [...records].sort(
    (a, b) =>
      deferralsOf(b) - deferralsOf(a) || Number(announcesSleep(b.body)) - Number(announcesSleep(a.body)),
  );
}
