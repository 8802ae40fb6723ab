/**
 * Raw provider frames archived to S3 in the `router replay` feed format: one
 * `{"source","receivedAt","frame"}` line per frame, as the router ingested it, batched into objects
 * `<prefix><epoch>/<seq>.jsonl` (seq zero-padded: the keys list in ingest order). Concatenating an
 * epoch's objects gives a feed that `npm run pipeline -- router replay` runs through the same core.
 * Behind a BatchSink: S3 failing never stalls the core; what it has not accepted stays buffered.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BatchSink } from './batch-sink';

export interface ArchivedFrame {
  readonly source: string;
  readonly receivedAt: number;
  readonly frame: readonly unknown[];
}

export interface ArchiveOptions {
  readonly bucket: string;
  /** Key prefix, ending in `/`. */
  readonly prefix: string;
  readonly epoch: string;
  /** Frames per object. */
  readonly framesPerObject?: number;
  /** A partial object is written once its oldest frame waited this long. */
  readonly lingerMs?: number;
}

export const DEFAULT_ARCHIVE_PREFIX = 'realtime/frames/';

export function archiveKey(prefix: string, epoch: string, seq: number): string {
  return `${prefix}${epoch}/${String(seq).padStart(10, '0')}.jsonl`;
}

export function frameArchive(s3: S3Client, options: ArchiveOptions): BatchSink<ArchivedFrame> {
  let seq = 0;
  const send = async (batch: readonly ArchivedFrame[]): Promise<readonly ArchivedFrame[]> => {
    // The one send loop of the sink writes objects one at a time: a retried object keeps its number.
    const key = archiveKey(options.prefix, options.epoch, seq);
    const body = batch.map((f) => JSON.stringify(f)).join('\n');
    await s3.send(
      new PutObjectCommand({
        Bucket: options.bucket,
        Key: key,
        Body: `${body}\n`,
        ContentType: 'application/x-ndjson',
      }),
    );
    seq += 1;
    return [];
  };
  return new BatchSink('raw frames -> S3', send, {
    batch: options.framesPerObject ?? 5_000,
    lingerMs: options.lingerMs ?? 10_000,
    retryMs: 1_000,
  });
}
