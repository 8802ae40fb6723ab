/** The dispatcher's BatchSender on SQS: SendMessageBatch (<= 10 entries) with per-entry DelaySeconds. */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { BatchSender } from '../market/equity-processing/dispatch';

export function sqsBatchSender(sqs: SQSClient, queueUrl: () => Promise<string>): BatchSender {
  return {
    async send(messages) {
      if (messages.length === 0) return { failed: [] };
      const { Failed } = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: await queueUrl(),
          Entries: messages.map((m) => ({ Id: m.id, MessageBody: m.body, DelaySeconds: m.delaySeconds })),
        }),
      );
      return {
        failed: (Failed ?? []).map((f) => ({
          id: f.Id ?? '?',
          reason: `${f.Code ?? 'error'}: ${f.Message ?? ''}`,
        })),
      };
    },
  };
}
