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

describe('outbox relay: the database lost between delivering and marking', () => {
  let db: TestSchema;

  beforeAll(async () => {
    db = await createTestSchema('outbox_relay');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("lets the same process's retry take its rows back at once, marks what was published without sending it again", async () => {
    await enqueueOutbox(
      db.pool,
      ['a', 'b', 'c'].map((k) => ({
        dedupeKey: `relay-test:${k}`,
        destination: { channel: CHANNELS.symbolsNew },
        eventType: 'symbols.new',
        payload: { symbol: k.toUpperCase() },
      })),
    );
    const { transport, published } = recordingTransport();

    // The first pass delivers all three, then the marking UPDATE fails as a restarted server would.
    const query = db.pool.query.bind(db.pool);
    db.pool.query = ((text: unknown, ...rest: unknown[]) => {
      if (typeof text === 'string' && text.includes('SET published_at = now()'))
        return Promise.reject(new Error('Connection terminated unexpectedly'));
      return (query as (...a: unknown[]) => unknown)(text, ...rest);
    }) as typeof db.pool.query;
    await expect(relayOutbox(db.pool, transport)).rejects.toThrow(/Connection terminated/);
    db.pool.query = query as typeof db.pool.query;
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
