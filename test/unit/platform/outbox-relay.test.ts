import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNELS, type Channel } from '../../../lambdas/platform/event-bus';
import {
  enqueueOutbox,
  type OutboxTransport,
  type PendingMessage,
  pendingOutboxCount,
  relayOutbox,
} from '../../../lambdas/platform/outbox';
import { createTestSchema, type TestSchema } from '../../support/db';

// The relay on the real PostgreSQL with a recording transport (the unit under test is the relay's
// bookkeeping: claims, leases, marking), when the database goes away between delivering and marking.

function recordingTransport() {
  const published = new Map<string, number>();
  const transport: OutboxTransport = {
    async publish(_channel: Channel, message: PendingMessage) {
      published.set(message.messageId, (published.get(message.messageId) ?? 0) + 1);
    },
    async alreadyPublished(_channel: Channel, messageId: string) {
      return published.has(messageId);
    },
    async sendToQueue() {
      throw new Error('no queue in this test');
    },
  };
  return { transport, published };
}

/** Makes the pool's marking UPDATE fail `times` times as a restarted server would; returns the undo. */
function failMarking(pool: TestSchema['pool'], times: number): () => void {
  const query = pool.query.bind(pool);
  let left = times;
  pool.query = ((text: unknown, ...rest: unknown[]) => {
    if (left > 0 && typeof text === 'string' && text.includes('SET published_at = now()')) {
      left -= 1;
      return Promise.reject(new Error('Connection terminated unexpectedly'));
    }
    return (query as (...a: unknown[]) => unknown)(text, ...rest);
  }) as typeof pool.query;
  return () => {
    pool.query = query as typeof pool.query;
  };
}

async function enqueueThree(db: TestSchema, label: string): Promise<void> {
  await enqueueOutbox(
    db.pool,
    ['a', 'b', 'c'].map((k) => ({
      dedupeKey: `relay-test:${label}:${k}`,
      destination: { channel: CHANNELS.symbolsNew },
      eventType: 'symbols.new',
      payload: { symbol: k.toUpperCase() },
    })),
  );
}

describe('outbox relay: the database lost between delivering and marking', () => {
  let db: TestSchema;

  beforeAll(async () => {
    db = await createTestSchema('outbox_relay');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('waits for the database to mark what it delivered: each message delivered once, nothing left', async () => {
    await enqueueThree(db, 'brief');
    const { transport, published } = recordingTransport();
    const undo = failMarking(db.pool, 2);
    const result = await relayOutbox(db.pool, transport).finally(undo);
    expect(result).toMatchObject({ delivered: 3, recovered: 0, failed: 0 });
    expect([...published.values()]).toEqual([1, 1, 1]);
    expect(await pendingOutboxCount(db.pool)).toBe(0);
  });

  it("after a longer outage lets the same process's next relay take its rows back at once, marking what was published without sending it again", async () => {
    await enqueueThree(db, 'long');
    const { transport, published } = recordingTransport();
    // The first pass delivers all three; marking fails past its (here: zero) retry budget.
    const undo = failMarking(db.pool, 1);
    await expect(relayOutbox(db.pool, transport, { retryBudgetMs: 0 }).finally(undo)).rejects.toThrow(
      /Connection terminated/,
    );
    expect(published.size).toBe(3);
    expect(await pendingOutboxCount(db.pool)).toBe(3);

    // The unit's retry, well inside the 60 s lease: the rows are taken back, found already
    // published, and marked; nothing is sent twice.
    const retry = await relayOutbox(db.pool, transport);
    expect(retry).toMatchObject({ delivered: 0, recovered: 3, failed: 0 });
    expect([...published.values()]).toEqual([1, 1, 1]);
    expect(await pendingOutboxCount(db.pool)).toBe(0);
  });
});
