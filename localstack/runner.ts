import { randomUUID } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

export interface EventSourceOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  /** Name used for the function in the Lambda context and logs. */
  readonly functionName: string;
  readonly handler: SqsHandler;
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  readonly timeoutSeconds: number;
  /** Concurrent pollers, like the mapping's maximum concurrency. */
  readonly concurrency?: number;
  /** Long-poll wait of each receive; short enough that stop() returns promptly. */
  readonly waitTimeSeconds?: number;
  readonly region?: string;
  readonly log?: (line: string) => void;
}

export interface EventSourceStats {
  batches: number;
  received: number;
  deleted: number;
  /** Records left on the queue for redelivery (reported failures, whole-batch errors, timeouts). */
  failed: number;
  handlerErrors: number;
}

class HandlerTimeoutError extends Error {
  constructor(seconds: number) {
    super(`handler did not finish within its ${seconds} s timeout`);
    this.name = 'HandlerTimeoutError';
  }
}

/**
 * What Lambda's SQS event source mapping does, for the local stage: long-poll the queue, gather a
 * batch (batch size, batching window), invoke the same handler module with the same event shape,
 * delete only the records that succeeded, and leave failures to the queue's visibility timeout and
 * redrive policy. A thrown error, a timeout or an invalid batchItemFailures response fails the whole
 * batch, as in AWS.
 */
export class EventSourceRunner {
  readonly stats: EventSourceStats = { batches: 0, received: 0, deleted: 0, failed: 0, handlerErrors: 0 };
  private running = false;
  private pollers: Promise<void>[] = [];

  constructor(private readonly options: EventSourceOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const concurrency = this.options.concurrency ?? 1;
    this.pollers = Array.from({ length: concurrency }, () => this.poll());
  }

  /**
   * Stops polling and waits for the current receive and batch to finish. A receive is never aborted:
   * SQS may already have handed its messages over, and they would then sit out the visibility
   * timeout unprocessed.
   */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.pollers);
  }

  private async poll(): Promise<void> {
    while (this.running) {
      try {
        const messages = await this.gatherBatch();
        if (messages.length > 0) await this.invoke(messages);
      } catch (error) {
        if (!this.running) return;
        this.options.log?.(`${this.options.functionName}: poll error: ${(error as Error).message}`);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private async receive(max: number, waitSeconds: number): Promise<Message[]> {
    const { Messages } = await this.options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.options.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    return Messages ?? [];
  }

  private async gatherBatch(): Promise<Message[]> {
    const { batchSize, maxBatchingWindowSeconds } = this.options;
    const batch = await this.receive(batchSize, this.options.waitTimeSeconds ?? 2);
    if (batch.length === 0) return batch;
    const deadline = Date.now() + maxBatchingWindowSeconds * 1_000;
    while (this.running && batch.length < batchSize && Date.now() < deadline) {
      const wait = Math.min(20, Math.max(0, Math.floor((deadline - Date.now()) / 1_000)));
      const more = await this.receive(batchSize - batch.length, wait);
      if (more.length === 0 && wait === 0) break;
      batch.push(...more);
    }
    return batch;
  }

  private async invoke(messages: Message[]): Promise<void> {
    const { options } = this;
    this.stats.batches += 1;
    this.stats.received += messages.length;
    const event: SQSEvent = { Records: messages.map((m) => this.toRecord(m)) };
    const ids = new Set(event.Records.map((r) => r.messageId));
    let failedIds: Set<string>;
    try {
      const response = await withTimeout(
        options.handler(event, lambdaContext(options.functionName, options.timeoutSeconds, options.region)),
        options.timeoutSeconds,
      );
      const failures = response?.batchItemFailures ?? [];
      // Lambda treats a failure naming no record of the batch as a failure of the whole batch.
      failedIds = failures.every((f) => ids.has(f.itemIdentifier))
        ? new Set(failures.map((f) => f.itemIdentifier))
        : ids;
    } catch (error) {
      this.stats.handlerErrors += 1;
      options.log?.(
        `${options.functionName}: batch failed: ${(error as Error).name}: ${(error as Error).message}`,
      );
      failedIds = ids;
    }
    const succeeded = messages.filter((m) => !failedIds.has(m.MessageId as string));
    this.stats.failed += messages.length - succeeded.length;
    for (let i = 0; i < succeeded.length; i += 10) {
      const chunk = succeeded.slice(i, i + 10);
      const result = await options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: chunk.map((m, n) => ({ Id: String(n), ReceiptHandle: m.ReceiptHandle as string })),
        }),
      );
      this.stats.deleted += result.Successful?.length ?? 0;
    }
  }

  private toRecord(message: Message): SQSRecord {
    const attributes = message.Attributes ?? {};
    return {
      messageId: message.MessageId as string,
      receiptHandle: message.ReceiptHandle as string,
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
        SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
        SenderId: attributes.SenderId ?? 'local',
        ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: toLambdaAttributes(message.MessageAttributes),
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: this.options.queueArn,
      awsRegion: this.options.region ?? 'us-east-1',
    };
  }
}

function toLambdaAttributes(
  attributes: Record<string, MessageAttributeValue> | undefined,
): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    out[name] = {
      dataType: value.DataType ?? 'String',
      stringValue: value.StringValue,
      binaryValue: value.BinaryValue ? Buffer.from(value.BinaryValue).toString('base64') : undefined,
      stringListValues: [],
      binaryListValues: [],
    };
  }
  return out;
}

async function withTimeout<T>(promise: Promise<T>, seconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HandlerTimeoutError(seconds)), seconds * 1_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function lambdaContext(functionName: string, timeoutSeconds: number, region = 'us-east-1'): Context {
  const deadline = Date.now() + timeoutSeconds * 1_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local-runner',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
