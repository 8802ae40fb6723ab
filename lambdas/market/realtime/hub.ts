/**
 * Fan-out to clients. Every published message gets (epoch, offset) on its channel; the last
 * `historySize` per channel (as wire bytes, history.ts) are kept so a reconnecting client resumes
 * from its offset, and the latest value per (channel, kind, symbol) is kept as the snapshot a new
 * subscription starts from. A client whose offset is no longer in history, or who comes from another
 * epoch (a router restart), is told to resync and gets the snapshot.
 */
import type { ClientSession } from './client';
import { MessageHistory } from './history';
import { asSnapshot, CHANNELS, type RoutedMessage, type RouterChannel, type SequencedMessage } from './types';

export interface HubOptions {
  readonly epoch: string;
  readonly historySize: number;
}

export type ResumeResult =
  | { readonly status: 'resumed'; readonly replayed: number }
  | { readonly status: 'resync'; readonly reason: 'epoch_changed' | 'offset_too_old' | 'offset_ahead' };

export class Hub {
  readonly epoch: string;
  private readonly offsets: Record<RouterChannel, number> = { tick: 0, event: 0, fmv: 0, ohlcv: 0 };
  private readonly history = {} as Record<RouterChannel, MessageHistory>;
  /** Latest value: kind (or `event|<type>`) -> symbol -> message; two lookups, no key string per message. */
  private readonly snapshot = new Map<string, Map<string, SequencedMessage>>();
  private snapshotCount = 0;
  private readonly clients = new Set<ClientSession>();

  constructor(options: HubOptions) {
    this.epoch = options.epoch;
    for (const c of CHANNELS) this.history[c] = new MessageHistory(c, options.historySize);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get snapshotSize(): number {
    return this.snapshotCount;
  }

  /** Offset of the last message published on the channel (0 before the first). */
  offset(channel: RouterChannel): number {
    return this.offsets[channel];
  }

  publish(message: RoutedMessage): SequencedMessage {
    const channel = message.channel;
    const offset = this.offsets[channel] + 1;
    this.offsets[channel] = offset;
    // One fixed shape (no spread): every message of every channel shares a hidden class.
    const sequenced: SequencedMessage = {
      channel,
      sym: message.sym,
      data: message.data,
      kind: message.kind,
      receivedAtMono: message.receivedAtMono,
      epoch: this.epoch,
      offset,
      wire: undefined,
    };
    this.history[channel].push(sequenced);
    if (message.kind !== 'control') {
      const group = snapshotGroup(sequenced);
      let bySymbol = this.snapshot.get(group);
      if (!bySymbol) {
        bySymbol = new Map();
        this.snapshot.set(group, bySymbol);
      }
      const size = bySymbol.size;
      bySymbol.set(message.sym, sequenced);
      this.snapshotCount += bySymbol.size - size;
    }
    for (const client of this.clients) {
      if (client.wants(channel, message.sym)) client.offer(sequenced);
    }
    return sequenced;
  }

  attach(client: ClientSession): void {
    this.clients.add(client);
  }

  detach(client: ClientSession): void {
    this.clients.delete(client);
  }

  /** Subscribes and queues the latest value of everything the subscription covers (labelled snapshot). */
  subscribe(client: ClientSession, channel: RouterChannel, symbols: '*' | readonly string[]): number {
    client.subscribe(channel, symbols);
    const wanted = symbols === '*' ? null : new Set(symbols);
    const values: SequencedMessage[] = [];
    for (const bySymbol of this.snapshot.values()) {
      for (const m of bySymbol.values()) {
        if (m.channel === channel && (wanted === null || wanted.has(m.sym))) values.push(m);
      }
    }
    values.sort((a, b) => a.offset - b.offset);
    // Labelled copies: the client counts them as `snapshot`, not as live deliveries.
    for (const m of values) client.offer(asSnapshot(m), true);
    return values.length;
  }

  /**
   * Resumes a subscription after a reconnect: replays the channel's messages after `offset` that the
   * client wants, or answers resync (then the caller sends the snapshot via `subscribe`).
   */
  resume(client: ClientSession, channel: RouterChannel, epoch: string, offset: number): ResumeResult {
    if (epoch !== this.epoch) return { status: 'resync', reason: 'epoch_changed' };
    if (offset > this.offsets[channel]) return { status: 'resync', reason: 'offset_ahead' };
    const history = this.history[channel];
    const oldest = history.oldestOffset() ?? this.offsets[channel] + 1;
    if (offset + 1 < oldest) return { status: 'resync', reason: 'offset_too_old' };
    let replayed = 0;
    for (const m of history.after(offset, this.epoch, (sym) => client.wants(channel, sym))) {
      client.offer(m);
      replayed += 1;
    }
    return { status: 'resumed', replayed };
  }

  pumpAll(): number {
    let sent = 0;
    for (const client of this.clients) sent += client.pump();
    return sent;
  }
}

function snapshotGroup(m: SequencedMessage): string {
  return m.kind === 'event' ? `event|${String(m.data.type)}` : m.kind;
}
