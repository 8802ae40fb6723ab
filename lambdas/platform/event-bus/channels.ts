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

/**
 * The envelope's `service` per channel, as the seeds name their producers (001: `ipo_monitor`,
 * `data_quality_monitor`; 000: the cache synchronizer and the ETF universe manager). The channel
 * decides, not the process that relays the outbox row (the backfill worker relays the IPO scan's
 * messages, the universe sync relays whatever is pending), so an app filtering on `service` sees
 * one stable name per channel. Earlier builds sent the job's name; the mapping from those is in the
 * README (Market data: envelope services). Channels not listed (the real-time router's) carry the
 * publishing bus's own service.
 */
export const SEED_SERVICES = {
  ipoMonitor: 'ipo_monitor',
  dataQualityMonitor: 'data_quality_monitor',
  cacheSync: 'cache_sync',
  etfUniverseManager: 'etf_universe_manager',
  eodPipeline: 'eod_pipeline',
} as const;

export type SeedService = (typeof SEED_SERVICES)[keyof typeof SEED_SERVICES];

export const CHANNEL_SERVICE: Readonly<Partial<Record<Channel, SeedService>>> = Object.freeze({
  [CHANNELS.symbolsNew]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.symbolsChanged]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.symbolsArchived]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.backfillStarted]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.backfillProgress]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.backfillCompleted]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.maintenanceStarted]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.maintenanceCompleted]: SEED_SERVICES.ipoMonitor,
  [CHANNELS.qualityPriceAnomaly]: SEED_SERVICES.dataQualityMonitor,
  [CHANNELS.qualityVolumeAnomaly]: SEED_SERVICES.dataQualityMonitor,
  [CHANNELS.qualityDataGap]: SEED_SERVICES.dataQualityMonitor,
  [CHANNELS.qualityStaleData]: SEED_SERVICES.dataQualityMonitor,
  [CHANNELS.qualityDailySummary]: SEED_SERVICES.dataQualityMonitor,
  [CHANNELS.universeUpdated]: SEED_SERVICES.cacheSync,
  [CHANNELS.cacheSyncComplete]: SEED_SERVICES.cacheSync,
  [CHANNELS.cacheIpoAssignment]: SEED_SERVICES.cacheSync,
  [CHANNELS.cacheDelistingCleanup]: SEED_SERVICES.cacheSync,
  [CHANNELS.etfCorrelationUpdate]: SEED_SERVICES.etfUniverseManager,
  [CHANNELS.eodCompleted]: SEED_SERVICES.eodPipeline,
});

/** The envelope service a channel's messages carry; undefined when the publishing bus decides. */
export function serviceOfChannel(channel: Channel): SeedService | undefined {
  return CHANNEL_SERVICE[channel];
}

/** Default pattern for `events tail` and other pub/sub listeners: every pipeline channel. */
export const ALL_CHANNELS_PATTERN = 'tickstock.*';
