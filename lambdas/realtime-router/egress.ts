/**
 * The router's AWS egress: completed minute bars to the RouterBars queue (SQS -> handler ->
 * PostgreSQL), each through a BatchSink (buffer, batching, breaker) so a failing AWS call never
 * reaches the core. Raw frames go to S3 through archive.ts.
 */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { MinuteBarMessage } from '../market/realtime/minute-bar-message';
import { BatchSink } from './batch-sink';

/** SendMessageBatch (10 entries at most): returns the bars SQS did not accept, to be retried. */
export function sqsBarSend(
  sqs: SQSClient,
  queueUrl: () => Promise<string>,
): (batch: readonly MinuteBarMessage[]) => Promise<readonly MinuteBarMessage[]> {
  return async (batch) => {
    const { Failed } = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: await queueUrl(),
        Entries: batch.map((bar, k) => ({ Id: String(k), MessageBody: JSON.stringify(bar) })),
      }),
    );
    return (Failed ?? [])
      .map((f) => batch[Number(f.Id)])
      .filter((b): b is MinuteBarMessage => b !== undefined);
  };
}

export function barQueueSink(sqs: SQSClient, queueUrl: () => Promise<string>): BatchSink<MinuteBarMessage> {
  // 10 per call (the SQS maximum); a partial batch waits at most 200 ms (bars come in bursts).
  return new BatchSink('minute bars -> SQS', sqsBarSend(sqs, queueUrl), { batch: 10, lingerMs: 200 });
}
