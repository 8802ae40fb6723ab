/**
 * The router's batched egress (lambdas/realtime-router/batch-sink.ts: SQS minute bars, S3 frames):
 * the batch in flight is out of the buffer, so an overflow while it is sent drops buffered items
 * (counted), never the batch, and refused items are retried before anything newer.
 */
import { describe, expect, it } from 'vitest';
import { BatchSink } from '../../../lambdas/realtime-router/batch-sink';

describe('BatchSink', () => {
  it('never drops or skips the batch in flight when the buffer overflows meanwhile', async () => {
    const sent: number[] = [];
    let release: () => void = () => undefined;
    let first = true;
    const sink = new BatchSink<number>(
      'test',
      async (batch) => {
        if (first) {
          first = false;
          await new Promise<void>((r) => {
            release = r;
          });
        }
        sent.push(...batch);
        return [];
      },
      { capacity: 10, batch: 4, lingerMs: 60_000 },
    );
    for (let k = 0; k < 10; k += 1) sink.offer(k);
    // 0-3 are being sent; 10 more arrive meanwhile: 4-9 do not fit.
    for (let k = 10; k < 20; k += 1) sink.offer(k);
    release();

    expect(await sink.flush(Date.now() + 5_000)).toBe(true);
    expect(sent).toEqual([0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(sink.health()).toMatchObject({ published: 14, dropped: 6, depth: 0 });
  });

  it('retries refused items first, in order, and publishes each once', async () => {
    const sent: number[] = [];
    let refuse = true;
    const sink = new BatchSink<number>(
      'test',
      async (batch) => {
        const failed = refuse ? batch.filter((n) => n % 2 === 1) : [];
        refuse = false;
        sent.push(...batch.filter((n) => !failed.includes(n)));
        return failed;
      },
      { capacity: 100, batch: 4, retryMs: 1, lingerMs: 60_000 },
    );
    for (let k = 0; k < 8; k += 1) sink.offer(k);

    expect(await sink.flush(Date.now() + 5_000)).toBe(true);
    expect(sent).toEqual([0, 2, 1, 3, 4, 5, 6, 7]);
    expect(sink.health()).toMatchObject({ published: 8, dropped: 0, depth: 0, failures: 1 });
  });
});
