/**
 * The router's figures for operators, from its `/health` answer: one row per channel (received,
 * delivered, duplicates, rejected, conflated, buffer depth, last-event age, breaker of its Redis sink,
 * latency p99) plus the provider and the AWS egress. Shared by `router status`, the pipeline health
 * report (`npm run pipeline -- status`) and `npm start`'s live burst.
 */
import { CHANNELS, type RouterChannel } from '../market/realtime/types';
import type { ServiceHealth } from './service';

export interface ChannelFigures {
  readonly channel: RouterChannel;
  readonly received: number;
  readonly delivered: number;
  readonly duplicates: number;
  readonly rejected: number;
  readonly conflated: number;
  readonly bufferDepth: number;
  readonly lastEventAgeMs: number | null;
  /** The channel's Redis sink breaker; `none` without a sink. */
  readonly breaker: string;
  readonly p99Ms: number;
}

export interface RouterFigures {
  readonly status: ServiceHealth['status'];
  readonly epoch: string;
  readonly channels: ChannelFigures[];
  readonly provider: {
    readonly state: string;
    readonly connects: number;
    readonly disconnects: number;
    readonly gapFills: number;
    readonly gapFillEvents: number;
  };
  readonly clients: number;
  /** Breakers and depths of the egress (minute bars to SQS, the S3 archive) and channel sinks. */
  readonly breakers: Record<string, string>;
  readonly egress: Record<string, { depth: number; published: number; dropped: number }>;
}

export function routerFigures(h: ServiceHealth): RouterFigures {
  const breakers: Record<string, string> = {};
  for (const [c, s] of Object.entries(h.sinks)) if (s) breakers[`redis.${c}`] = s.breaker;
  const egress: RouterFigures['egress'] = {};
  for (const [name, s] of Object.entries(h.egress ?? {})) {
    if (!s) continue;
    breakers[name] = s.breaker;
    egress[name] = { depth: s.depth, published: s.published, dropped: s.dropped };
  }
  return {
    status: h.status,
    epoch: h.router.epoch,
    channels: CHANNELS.map((channel) => {
      const c = h.router.channels[channel];
      return {
        channel,
        received: c.received,
        delivered: c.delivered,
        duplicates: c.duplicates,
        rejected: Object.values(c.rejected).reduce((a, b) => a + b, 0),
        conflated: c.conflated,
        bufferDepth: h.router.bufferDepth[channel],
        lastEventAgeMs: h.lastEventAgeMs[channel],
        breaker: h.sinks[channel]?.breaker ?? 'none',
        p99Ms: h.latencyMs[channel]?.p99 ?? 0,
      };
    }),
    provider: {
      state: h.provider.state,
      connects: h.provider.connects,
      disconnects: h.provider.disconnects,
      gapFills: h.provider.gapFills,
      gapFillEvents: h.provider.gapFillEvents,
    },
    clients: h.clients.length,
    breakers,
    egress,
  };
}

/** Healthy: running, the provider streaming, no breaker open. */
export function routerHealthy(f: RouterFigures): boolean {
  return (
    f.status === 'running' && f.provider.state === 'streaming' && !Object.values(f.breakers).includes('open')
  );
}

/** The per-channel rows for a table: header and cells. */
export function channelTable(f: RouterFigures): { header: string[]; rows: (string | number)[][] } {
  return {
    header: [
      'channel',
      'received',
      'delivered',
      'duplicates',
      'rejected',
      'conflated',
      'buffer',
      'last event',
      'breaker',
      'p99',
    ],
    rows: f.channels.map((c) => [
      c.channel,
      c.received,
      c.delivered,
      c.duplicates,
      c.rejected,
      c.conflated,
      c.bufferDepth,
      c.lastEventAgeMs === null ? 'never' : `${(c.lastEventAgeMs / 1000).toFixed(1)} s ago`,
      c.breaker,
      `${c.p99Ms} ms`,
    ]),
  };
}

/** One line: provider, clients, egress. */
export function routerLine(f: RouterFigures): string {
  const egress = Object.entries(f.egress)
    .map(
      ([n, e]) =>
        `${n} ${e.published} sent (${e.depth} buffered, ${e.dropped} dropped, breaker ${f.breakers[n]})`,
    )
    .join('; ');
  return `router ${f.status}, epoch ${f.epoch}: provider ${f.provider.state} (${f.provider.connects} connects, ${f.provider.disconnects} disconnects, ${f.provider.gapFills} gap fills, ${f.provider.gapFillEvents} events from REST), ${f.clients} clients${egress ? `; ${egress}` : ''}`;
}
