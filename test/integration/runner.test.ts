import { randomBytes } from 'node:crypto';
import {
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLocalDefaults } from '../../localstack/env';
import { ensureQueue, type LocalQueue, queueDepth } from '../../localstack/resources';
import { EventSourceRunner } from '../../localstack/runner';
import { deliveries, handler } from './fixtures/recording-handler';

applyLocalDefaults();

describe('local event-source runner on LocalStack SQS', () => {
  const sqs = new SQSClient({});
  const consumer = {
    id: `runner-test-${randomBytes(3).toString('hex')}`,
    maxReceiveCount: 3,
    timeoutSeconds: 5,
  };
  let queue: LocalQueue;

  beforeAll(async () => {
    // A 1 s visibility timeout keeps the redelivery cycle short; the redrive policy is the real one.
    queue = await ensureQueue(sqs, consumer, 1);
  });
  afterAll(async () => {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.url }));
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queue.deadLetterUrl }));
    sqs.destroy();
  });

  it('deletes successes once, retries the failure and dead-letters it after maxReceiveCount; nothing is lost', async () => {
    // Prepare
    const bodies = [...Array.from({ length: 9 }, (_, i) => `ok-${i}`), 'fail-poison'];
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body })),
      }),
    );
    const runner = new EventSourceRunner({
      sqs,
      queueUrl: queue.url,
      queueArn: queue.arn,
      functionName: consumer.id,
      handler,
      batchSize: 10,
      maxBatchingWindowSeconds: 1,
      timeoutSeconds: consumer.timeoutSeconds,
      waitTimeSeconds: 1,
    });

    // Act: run until the poison message has been received maxReceiveCount times and the queue is empty
    runner.start();
    for (let i = 0; i < 60; i++) {
      const poisonDeliveries = deliveries.filter((d) => d.body === 'fail-poison').length;
      if (poisonDeliveries >= consumer.maxReceiveCount && (await queueDepth(sqs, queue.url)) === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    // One more visibility period, so a last redelivery (there must be none) would be seen.
    await new Promise((r) => setTimeout(r, 2_500));
    await runner.stop();

    // Assess
    for (const body of bodies.filter((b) => b.startsWith('ok'))) {
      expect(deliveries.filter((d) => d.body === body)).toHaveLength(1);
    }
    const poison = deliveries.filter((d) => d.body === 'fail-poison');
    expect(poison.map((d) => d.receiveCount)).toEqual([1, 2, 3]);
    expect(runner.stats.deleted).toBe(9);
    expect(runner.stats.failed).toBe(3);
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.deadLetterUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 2,
      }),
    );
    expect(Messages?.map((m) => m.Body)).toEqual(['fail-poison']);
    expect(await queueDepth(sqs, queue.url)).toBe(0);
    // The accounting identity: every message sent is either deleted after success or dead-lettered.
    expect(runner.stats.deleted + (Messages?.length ?? 0)).toBe(bodies.length);
  });
});
