import type { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { OutputSink } from '../health/ingest';
import type { SourceIdentity } from '../health/source';
import type { ObjectRef } from './messages';

/** The object's identity (version id, else ETag): from the message, or asked of S3 when absent. */
export async function identify(s3: S3Client, ref: ObjectRef): Promise<SourceIdentity> {
  if (ref.versionId || ref.etag)
    return { bucket: ref.bucket, key: ref.key, versionId: ref.versionId, etag: ref.etag };
  const head = await s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
  return { bucket: ref.bucket, key: ref.key, versionId: head.VersionId ?? undefined, etag: head.ETag };
}

/** The exact object version that was announced, as a stream (destroy it if it is not read to the end). */
export async function readObject(s3: S3Client, source: SourceIdentity): Promise<Readable> {
  const object = await s3.send(
    new GetObjectCommand({
      Bucket: source.bucket,
      Key: source.key,
      VersionId: source.versionId,
      IfMatch: source.versionId ? undefined : source.etag,
    }),
  );
  if (!object.Body) throw new Error(`s3://${source.bucket}/${source.key} has no body`);
  return object.Body as Readable;
}

/**
 * Writes an object at most once: a second write of the same key (a retry, a parallel worker) is
 * refused by S3 and counts as done, because the pipeline derives the key and body from the source
 * identity and the recorded decision, so both writers hold the same bytes.
 */
async function putOnce(
  s3: S3Client,
  bucket: string,
  key: string,
  body: string,
  contentType: string,
): Promise<void> {
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        IfNoneMatch: '*',
      }),
    );
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== 412) throw error;
  }
}

/** The ETL's OutputSink on S3: outputs go to the source object's bucket. */
export function s3OutputSink(s3: S3Client): OutputSink {
  return {
    async writeTraining(source, key, body) {
      await putOnce(s3, source.bucket, key, body, 'application/x-ndjson');
    },
    async writeManifest(source, key, body) {
      await s3.send(
        new PutObjectCommand({
          Bucket: source.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
        }),
      );
    },
    async quarantine(source, plan) {
      const version = source.versionId ? `?versionId=${encodeURIComponent(source.versionId)}` : '';
      await s3.send(
        new CopyObjectCommand({
          Bucket: source.bucket,
          Key: plan.key,
          CopySource: `${source.bucket}/${source.key.split('/').map(encodeURIComponent).join('/')}${version}`,
        }),
      );
      await s3.send(
        new PutObjectCommand({
          Bucket: source.bucket,
          Key: plan.sidecarKey,
          Body: plan.sidecarBody,
          ContentType: 'application/json',
        }),
      );
    },
  };
}
