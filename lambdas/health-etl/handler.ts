import type { Readable } from 'node:stream';
import {
  BatchProcessor,
  EventType,
  type ParsedRecord,
  processPartialResponse,
} from '@aws-lambda-powertools/batch';
import { parser } from '@aws-lambda-powertools/batch/parser';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { CachePersistenceLayer } from '@aws-lambda-powertools/idempotency/cache';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetQueueUrlCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { type ExportBudget, exportBudget, startsNow } from '../health/budget';
import { DEFAULT_LIMITS } from '../health/decode';
import { classifyError } from '../health/errors';
import { type IngestResult, ingestExport } from '../health/ingest';
import type { ProcessExportResult } from '../health/pipeline';
import { PostgresRecordStore } from '../health/record-store';
import { PostgresSleepSpans } from '../health/sleep-spans';
import { type SourceIdentity, sourceId } from '../health/source';
import { s3, sqs } from '../platform/aws';
import { databaseEnv, readConfig, redisEnv } from '../platform/config';
import { sharedPool, sharedRedis } from '../platform/connections';
import { retryUnit } from '../platform/faults';
import { logger, metrics } from '../platform/powertools';
import { queueUrlVariable } from '../platform/queues';
import { withTelemetry } from '../platform/telemetry';
import { announcedObjects, batchOrder, type ObjectRef } from './messages';
import { identify, readObject, s3OutputSink } from './outputs';

const config = readConfig({
  ...databaseEnv,
  ...redisEnv,
  QUALITY_THRESHOLD: z.coerce.number().min(0).max(1).default(0.7),
  // How long a completed object is answered from Redis before the record store (which remembers
  // it for ever) is asked again.
  IDEMPOTENCY_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600),
});

/** Terminal outcome of one object, as cached by the idempotency layer. */
export interface FileOutcome {
  readonly sourceId: string;
  readonly key: string;
  readonly status: ProcessExportResult['status'] | 'dropped';
  readonly recordType: string | null;
  readonly recordsRead: number;
  readonly qualityScore: number | null;
}

/** A failure to retry (or, after maxReceiveCount, dead-letter); carries no health values. */
export class ExportFailedError extends Error {
  constructor(
    key: string,
    disposition: string,
    cause: { name: string; message: string } | undefined,
    /** A dependency dropped the connection: the handler retries the object at once. */
    readonly retriable = false,
  ) {
    super(`${key}: ${disposition}: ${cause?.name ?? 'Error'}: ${cause?.message ?? ''}`);
    this.name = 'ExportFailedError';
  }
}

// The batch parser validates each record and its JSON body; a record that fails is a batch item failure.
const processor = new BatchProcessor(EventType.SQS, {
  parser,
  innerSchema: announcedObjects,
  transformer: 'json',
  logger,
});
const sink = s3OutputSink(s3);
const idempotency = new IdempotencyConfig({
  eventKeyJmesPath: 'sourceId',
  expiresAfterSeconds: config.IDEMPOTENCY_TTL_SECONDS,
});
let store: PostgresRecordStore | undefined;
let sleepSpans: PostgresSleepSpans | undefined;
interface ObjectInput {
  sourceId: string;
  source: SourceIdentity;
  correlationId: string;
  budget: ExportBudget;
}
let processOnce: ((input: ObjectInput) => Promise<FileOutcome>) | undefined;

/** Built on first use: the idempotency layer needs the connected Redis client. */
async function idempotentProcessor(): Promise<NonNullable<typeof processOnce>> {
  if (!processOnce) {
    const client = await sharedRedis(config);
    processOnce = makeIdempotent(processObject, {
      persistenceStore: new CachePersistenceLayer({ client }),
      config: idempotency,
    });
  }
  return processOnce;
}

async function processObject(input: ObjectInput): Promise<FileOutcome> {
  const { source, correlationId, budget } = input;
  const started = performance.now();
  store ??= new PostgresRecordStore(await sharedPool(config, 'health'));
  sleepSpans ??= new PostgresSleepSpans(await sharedPool(config, 'health'));
  let body: Readable;
  try {
    body = await readObject(s3, source);
  } catch (error) {
    if (classifyError(error) !== 'drop') throw error;
    dropped(source.key, (error as Error).name);
    return outcome(input.sourceId, source, 'dropped', null, 0, null);
  }
  let result: IngestResult;
  try {
    result = await ingestExport(
      {
        stream: body,
        source,
        store,
        sleepSpans,
        now: new Date(),
        correlationId,
        config: { threshold: config.QUALITY_THRESHOLD },
        budget,
      },
      sink,
    );
  } finally {
    // An object already ingested is answered without reading it: release its connection.
    body.destroy();
  }
  if (result.status === 'failed') {
    // Out of time but not alone in its invocation (a terminal budget quarantines): start it again
    // as the first object of another invocation.
    if (result.error.name === 'BudgetExceededError') throw new ExportDeferredError(source.key, 0);
    if (result.disposition === 'drop') {
      dropped(source.key, result.error.name);
      return outcome(input.sourceId, source, 'dropped', result.recordType, 0, null);
    }
    // retry or alarm: back to the queue; after maxReceiveCount the DLQ (and its alarm) has it.
    throw new ExportFailedError(
      source.key,
      result.disposition,
      result.error,
      result.disposition === 'retry' && result.transient,
    );
  }

  const file = metrics.singleMetric();
  file.addDimensions({ outcome: result.status, recordType: result.recordType ?? 'unknown' });
  file.addMetric('Files', MetricUnit.Count, 1);
  // Service-level counts (no dimension but the service) for the quarantine-rate alarm's metric math.
  metrics.addMetric('FilesDecided', MetricUnit.Count, 1);
  metrics.addMetric('FilesQuarantined', MetricUnit.Count, result.status === 'quarantined' ? 1 : 0);
  metrics.addMetric('RecordsRead', MetricUnit.Count, result.recordsRead);
  metrics.addMetric('FileDuration', MetricUnit.Milliseconds, performance.now() - started);
  if (result.qualityScore !== null) metrics.addMetric('QualityScore', MetricUnit.NoUnit, result.qualityScore);
  // Same id + same version + different content, decided by the record store's VERSION_RULE.
  const conflicts =
    result.status === 'processed' || result.status === 'duplicate' ? (result.records?.conflicts ?? 0) : 0;
  if (conflicts > 0) metrics.addMetric('RecordConflicts', MetricUnit.Count, conflicts);
  // A processed export whose example nearly duplicates a more informative one (training.ts):
  // written, but left out of the manifest's training set.
  const nearDuplicate = result.trainingSet?.nearDuplicateOf ? 1 : 0;
  if (result.status === 'processed')
    metrics.addMetric('TrainingNearDuplicates', MetricUnit.Count, nearDuplicate);
  // Identifiers, counts and outcome only: insights, narratives and reasons (which can quote
  // values) stay in the encrypted outputs.
  logger.info('export handled', {
    key: source.key,
    sourceId: result.sourceId,
    status: result.status,
    recordType: result.recordType,
    recordsRead: result.recordsRead,
    qualityScore: result.qualityScore,
    warnings: result.warnings.length,
    reasons: result.reasons.length,
    conflicts,
    nearDuplicate: nearDuplicate === 1,
  });
  return outcome(
    result.sourceId,
    source,
    result.status,
    result.recordType,
    result.recordsRead,
    result.qualityScore,
  );
}

/** A file that will never be processed (its object is gone): a terminal outcome, counted and logged. */
function dropped(key: string, error: string): void {
  metrics.addMetric('FilesDropped', MetricUnit.Count, 1);
  logger.warn('object is gone; dropped', { key, error });
}

/** The current invocation: its context (time left) and how many objects it has started. */
const invocation: { context: Context | undefined; started: number } = { context: undefined, started: 0 };

/** Handed back to the queue without being started: not enough time left in this invocation. */
export class ExportDeferredError extends Error {
  constructor(key: string, remainingMs: number) {
    super(`${key}: deferred to another invocation (${Math.round(remainingMs / 1000)} s left in this one)`);
    this.name = 'ExportDeferredError';
  }
}

/** How many times a message's objects were handed back for lack of time (message attribute). */
export const DEFERRALS_ATTRIBUTE = 'deferrals';

function deferralsOf(record: Pick<SQSRecord, 'messageAttributes'>): number {
  return Number(record.messageAttributes?.[DEFERRALS_ATTRIBUTE]?.stringValue ?? '0') || 0;
}

const queueUrls = new Map<string, Promise<string>>();
/**
 * The URL of the queue a record came from (its ARN: arn:aws:sqs:region:account:name): the
 * QUEUE_URL_HEALTH_ETL the CDK app sets (topology `sendsTo`, with SendMessage on it) when it names
 * that queue; else, on the local stage (a test's own queue), looked up by name.
 */
function queueUrlOf(arn: string): Promise<string> {
  const [, , , , account, name] = arn.split(':');
  const fromEnv = process.env[queueUrlVariable('HealthEtl')];
  if (fromEnv?.endsWith(`/${name}`)) return Promise.resolve(fromEnv);
  let url = queueUrls.get(arn);
  if (!url) {
    url = sqs
      .send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }))
      .then((r) => r.QueueUrl as string);
    url.catch(() => queueUrls.delete(arn));
    queueUrls.set(arn, url);
  }
  return url;
}

/**
 * Hands objects not started (or out of time) back to the queue as NEW messages, one per object,
 * with the message's deferral count + 1; the original message then counts as handled. A batch item
 * failure would spend one of the message's maxReceiveCount receives each time, so an object deferred
 * often enough went to the dead-letter queue without ever being tried to the end. The most deferred
 * messages go first in a batch (`run`), and the first object of an invocation always starts.
 * If the send fails, the original message fails instead (back to the queue, as before).
 */
async function deferRest(
  record: Pick<SQSRecord, 'messageAttributes' | 'eventSourceARN' | 'messageId'>,
  refs: readonly ObjectRef[],
  why: { bytes: number; remainingMs: number; ranOutOfTime?: boolean },
): Promise<void> {
  const deferrals = deferralsOf(record) + 1;
  const queueUrl = await queueUrlOf(record.eventSourceARN);
  for (let i = 0; i < refs.length; i += 10) {
    const chunk = refs.slice(i, i + 10);
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: chunk.map((ref, n) => ({
          Id: String(n),
          MessageBody: JSON.stringify({
            bucket: ref.bucket,
            key: ref.key,
            versionId: ref.versionId,
            etag: ref.etag,
            size: ref.size,
            correlationId: ref.correlationId ?? record.messageId,
          }),
          MessageAttributes: {
            [DEFERRALS_ATTRIBUTE]: { DataType: 'Number', StringValue: String(deferrals) },
          },
        })),
      }),
    );
    if ((sent.Failed ?? []).length > 0)
      throw new Error(`could not hand ${sent.Failed?.length} deferred object(s) back to the queue`);
  }
  for (const ref of refs) {
    metrics.addMetric('FilesDeferred', MetricUnit.Count, 1);
    logger.warn(
      why.ranOutOfTime
        ? 'export deferred: ran out of time in this invocation; handed back as a new message'
        : 'export deferred: not enough time left in this invocation; handed back as a new message',
      { key: ref.key, bytes: why.bytes, remainingMs: why.remainingMs, deferrals },
    );
  }
}

function outcome(
  id: string,
  source: SourceIdentity,
  status: FileOutcome['status'],
  recordType: string | null,
  recordsRead: number,
  qualityScore: number | null,
): FileOutcome {
  return { sourceId: id, key: source.key, status, recordType, recordsRead, qualityScore };
}

async function handleRecord(
  record: ParsedRecord<SQSRecord, z.infer<typeof announcedObjects>>,
): Promise<FileOutcome[]> {
  const refs = record.body;
  const once = await idempotentProcessor();
  const outcomes: FileOutcome[] = [];
  for (const ref of refs) {
    const source = await identify(s3, ref).catch((error: unknown) => {
      if (classifyError(error) === 'drop') return undefined;
      throw error;
    });
    if (!source) {
      logger.warn('announced object does not exist; dropped', { key: ref.key });
      continue;
    }
    const correlationId = ref.correlationId ?? record.messageId;
    logger.appendKeys({ correlationId });
    // Never start an object that could not finish in the time left (budget.ts): an invocation that
    // times out sends its whole batch back. The first object of an invocation always starts.
    const remainingMs = invocation.context?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY;
    const bytes = ref.size ?? DEFAULT_LIMITS.maxFileBytes;
    const first = invocation.started === 0;
    if (!startsNow({ first, remainingMs, bytes })) {
      await deferRest(record, refs.slice(refs.indexOf(ref)), { bytes, remainingMs });
      return outcomes;
    }
    invocation.started++;
    const budget = exportBudget({ first, remainingMs, now: Date.now() });
    const receives = Number(record.attributes.ApproximateReceiveCount ?? '1');
    if (receives > 1) {
      // The queue delivers it again: an earlier attempt failed or timed out.
      metrics.addMetric('FilesRetried', MetricUnit.Count, 1);
      logger.info('export redelivered', { key: source.key, receives });
    }
    // One object is an idempotent unit (the record store decides its outcome in one transaction):
    // after a dropped connection it is retried here at once instead of after the visibility timeout.
    try {
      outcomes.push(
        await retryUnit(
          `ingest ${source.key}`,
          () => once({ sourceId: sourceId(source), source, correlationId, budget }),
          (m, f) => {
            metrics.addMetric('FilesRetried', MetricUnit.Count, 1);
            logger.warn(m, f);
          },
        ),
      );
    } catch (error) {
      if (error instanceof ExportDeferredError) {
        await deferRest(record, refs.slice(refs.indexOf(ref)), { bytes, remainingMs, ranOutOfTime: true });
        return outcomes;
      }
      // Back to the queue (after maxReceiveCount the DLQ and its alarm). Names and dispositions
      // only: an error message never carries health values, but a logged one is not needed here.
      const e = error as Error;
      metrics.addMetric('FilesFailed', MetricUnit.Count, 1);
      logger.error('export failed; back to the queue', {
        key: source.key,
        error: e.name,
        disposition: classifyError(error),
        receives,
      });
      throw error;
    }
  }
  return outcomes;
}

/**
 * S3 (raw/ uploads) -> SQS -> here. Each record is one message; failures are reported per record so
 * only they return to the queue. Idempotency on the object identity answers redeliveries from Redis;
 * the record store decides duplicates of content that was already seen.
 */
async function run(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  idempotency.registerLambdaContext(context);
  invocation.context = context;
  invocation.started = 0;
  // The most deferred first, then sleep exports (their sessions serve the batch's heart-rate
  // exports), else arrival order (messages.ts batchOrder; the sort is stable).
  const ordered: SQSEvent = { Records: batchOrder(event.Records, deferralsOf) };
  return await processPartialResponse(ordered, handleRecord, processor, {
    context,
    processInParallel: false,
  });
}

export const handler = withTelemetry('health-etl', run);
