import { describe, expect, it } from 'vitest';
import { MessageHistory } from '../../../lambdas/market/realtime/history';
import type { MessageKind, SequencedMessage } from '../../../lambdas/market/realtime/types';
import { wireText } from '../../../lambdas/market/realtime/types';
import { mulberry32 } from '../../../localstack/scenarios/prng';

const KINDS: MessageKind[] = ['trade', 'quote', 'event', 'control'];

function message(offset: number, sym: string, pad: number, kind: MessageKind = 'trade'): SequencedMessage {
  return {
    channel: 'tick',
    sym,
    kind,
    data: { ev: 'T', sym, i: `${offset}`, pad: 'x'.repeat(pad), note: 'é' },
    receivedAtMono: offset / 10,
    epoch: 'e1',
    offset,
  };
}

const all = () => true;

describe('MessageHistory (the resume buffer: wire bytes in a ring)', () => {
  it('gives back the messages after an offset as they were sent: same wire text, kind, symbol, receipt time', () => {
    const history = new MessageHistory('tick', 10);
    const sent = [1, 2, 3, 4].map((k) => message(k, k % 2 ? 'AAPL' : 'MSFT', k, KINDS[k % KINDS.length]));
    for (const m of sent) history.push(m);

    const replayed = [...history.after(2, 'e1', all)];

    expect(replayed.map((m) => m.offset)).toEqual([3, 4]);
    for (const [k, m] of replayed.entries()) {
      const original = sent[k + 2] as SequencedMessage;
      expect(m.wire).toBe(wireText(original));
      expect(wireText({ ...m, wire: undefined })).toBe(m.wire);
      expect(m).toMatchObject({
        channel: 'tick',
        sym: original.sym,
        kind: original.kind,
        data: original.data,
        receivedAtMono: original.receivedAtMono,
        epoch: 'e1',
      });
    }
    expect([...history.after(0, 'e1', (sym) => sym === 'MSFT')].map((m) => m.offset)).toEqual([2, 4]);
  });

  it('keeps at most `capacity` messages, the newest', () => {
    const history = new MessageHistory('tick', 5);
    for (let k = 1; k <= 12; k += 1) history.push(message(k, 'A', 3));
    expect(history.length).toBe(5);
    expect(history.oldestOffset()).toBe(8);
    expect([...history.after(0, 'e1', all)].map((m) => m.offset)).toEqual([8, 9, 10, 11, 12]);
  });

  it('keeps the newest that fit in its bytes, across many wraps of the ring, with every text intact', () => {
    // Seeded sizes from 1 to ~300 bytes of padding into a 2 KB ring: the ring wraps every few
    // messages at a different place each time.
    const rng = mulberry32(7);
    const history = new MessageHistory('tick', 1_000, 2_048);
    const sent: SequencedMessage[] = [];
    let largest = 0;
    for (let k = 1; k <= 2_000; k += 1) {
      const m = message(k, `S${k % 7}`, 1 + Math.floor(rng() * 300));
      sent.push(m);
      history.push(m);
      const held = [...history.after(0, 'e1', all)];
      // The newest messages, contiguous, ending with this one, within the byte bound.
      const bytes = held.reduce((n, h) => n + Buffer.byteLength(h.wire as string), 0);
      expect(bytes).toBeLessThanOrEqual(2_048);
      expect(held.map((h) => h.offset)).toEqual(sent.slice(k - held.length).map((s) => s.offset));
      for (const h of held) expect(h.wire).toBe(wireText(sent[h.offset - 1] as SequencedMessage));
      // Nothing went early: what is held and the next older one overflow the ring, less the tail a
      // wrap leaves unused (smaller than the message that did not fit there).
      largest = Math.max(largest, Buffer.byteLength(wireText(m)));
      const older = sent[k - held.length - 1];
      if (older) expect(bytes + Buffer.byteLength(wireText(older))).toBeGreaterThan(2_048 - largest);
    }
  });

  it('with messages of one size, always holds as many as the ring fits, wrap or not', () => {
    const size = Buffer.byteLength(wireText(message(1_000, 'A', 40)));
    const history = new MessageHistory('tick', 1_000, 2_048);
    const fits = Math.floor(2_048 / size);
    for (let offset = 1_000; offset < 3_000; offset += 1) {
      const m = message(offset, 'A', 40);
      expect(Buffer.byteLength(wireText(m))).toBe(size);
      history.push(m);
      const held = Math.min(offset - 999, fits);
      expect(history.length).toBe(held);
      expect(history.oldestOffset()).toBe(offset - held + 1);
    }
  });

  it('forgets everything before a message larger than its ring; holds nothing with capacity 0', () => {
    const history = new MessageHistory('tick', 10, 600);
    history.push(message(1, 'A', 10));
    history.push(message(2, 'A', 1_000));
    expect(history.length).toBe(0);
    expect(history.oldestOffset()).toBeUndefined();
    history.push(message(3, 'A', 10));
    expect([...history.after(0, 'e1', all)].map((m) => m.offset)).toEqual([3]);

    const none = new MessageHistory('tick', 0);
    none.push(message(1, 'A', 10));
    expect(none.length).toBe(0);
  });
});
