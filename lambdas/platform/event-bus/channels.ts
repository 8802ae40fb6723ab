/**
 * Every Redis channel the pipeline publishes to the app. Producers and consumers import these
 * constants instead of spelling names: the replaced system lost its EOD signal because producer and
 * consumer each had their own spelling.
 */
export const CHANNELS = {
  symbolsNew: 'tickstock.automation.symbols.new',
  symbolsChanged: 'tickstock.automation.symbols.changed',
  symbolsArchived: 'tickstock.automation.symbols.archived',
  backfillStarted: 'tickstock.automation.backfill.started',
  backfillProgress: 'tickstock.automation.backfill.progress',
  backfillCompleted: 'tickstock.automation.backfill.completed',
  maintenanceStarted: 'tickstock.automation.maintenance.started',
  maintenanceCompleted: 'tickstock.automation.maintenance.completed',
  qualityPriceAnomaly: 'tickstock.quality.price_anomaly',
  qualityVolumeAnomaly: 'tickstock.quality.volume_anomaly',
  qualityDataGap: 'tickstock.quality.data_gap',
  qualityStaleData: 'tickstock.quality.stale_data',
  qualityDailySummary: 'tickstock.quality.daily_summary',
  universeUpdated: 'tickstock.universe.updated',
  cacheSyncComplete: 'tickstock.cache.sync_complete',
  cacheIpoAssignment: 'tickstock.cache.ipo_assignment',
  cacheDelistingCleanup: 'tickstock.cache.delisting_cleanup',
  etfCorrelationUpdate: 'tickstock.etf.correlation_update',
  /** The EOD chain's completion signal; the universe (cache) sync waits for it. */
  eodCompleted: 'tickstock.eod.completed',
  /** The real-time router's channels: one stream each, so a slow or failing one never holds another. */
  realtimeTick: 'tickstock.realtime.tick',
  realtimeEvent: 'tickstock.realtime.event',
  realtimeFmv: 'tickstock.realtime.fmv',
  realtimeOhlcv: 'tickstock.realtime.ohlcv',
} as const;

export type ChannelKey = keyof typeof CHANNELS;
export type Channel = (typeof CHANNELS)[ChannelKey];

export const CHANNEL_NAME_PATTERN = /^tickstock\.[a-z_]+(\.[a-z_]+)+$/;

export const ALL_CHANNELS: readonly Channel[] = Object.freeze(Object.values(CHANNELS));

/** Channels whose messages are alerts: the envelope must carry a severity. */
export const ALERT_CHANNELS: ReadonlySet<Channel> = new Set<Channel>([
  CHANNELS.qualityPriceAnomaly,
  CHANNELS.qualityVolumeAnomaly,
  CHANNELS.qualityDataGap,
  CHANNELS.qualityStaleData,
]);

const KNOWN = new Set<string>(ALL_CHANNELS);

export function isChannel(name: string): name is Channel {
  return KNOWN.has(name);
}

/** Default pattern for `events tail` and other pub/sub listeners: every pipeline channel. */
export const ALL_CHANNELS_PATTERN = 'tickstock.*';
