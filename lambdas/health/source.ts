/**
 * Identity of a source object and the keys derived from it. Every output of a file (training
 * object, quarantine copy, ingest row) is keyed by this identity, so a retry or a second worker
 * on the same object computes the same keys.
 */
import { createHash } from 'node:crypto';

export interface SourceIdentity {
  readonly bucket: string;
  readonly key: string;
  /** S3 version id when the bucket is versioned: a re-upload is a new source. */
  readonly versionId?: string;
  /** Content hash (S3 ETag, or any content digest locally) when there is no version id. */
  readonly etag?: string;
}

/**
 * Stable id of one uploaded object: bucket, key, and the version id (or, unversioned, the ETag).
 * 24 hex characters (96 bits): collisions are not a practical concern at any realistic volume.
 */
export function sourceId(source: SourceIdentity): string {
  if (!source.versionId && !source.etag) {
    throw new Error(`source ${source.bucket}/${source.key} needs a versionId or an etag to be identified`);
  }
  const version = source.versionId ? `v:${source.versionId}` : `e:${source.etag?.replace(/"/g, '')}`;
  return createHash('sha256')
    .update(`${source.bucket}\n${source.key}\n${version}`)
    .digest('hex')
    .slice(0, 24);
}

const EXPORT_NAME = /^([A-Za-z]+)_(\d{10,16})\.avro$/;

/** `<RecordType>_<fetchMillis>.avro` -> its parts; undefined for other names. */
export function parseExportName(
  fileName: string,
): { recordType: string; fetchTimeMillis: number } | undefined {
  const m = EXPORT_NAME.exec(fileName);
  if (!m) return undefined;
  return { recordType: m[1] as string, fetchTimeMillis: Number(m[2]) };
}

/**
 * The `raw/<RecordType>/YYYY/MM/DD/<file>` key an export is uploaded under (date of the fetch time
 * in the file name, UTC). Names that do not follow the exporter's pattern go to `raw/unsorted/`.
 */
export function rawKeyFor(fileName: string): string {
  const parsed = parseExportName(fileName);
  if (!parsed) return `raw/unsorted/${fileName}`;
  const d = new Date(parsed.fetchTimeMillis).toISOString();
  return `raw/${parsed.recordType}/${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}/${fileName}`;
}
