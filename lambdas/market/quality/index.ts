/**
 * Daily data-quality check over ohlcv_daily (market-data.md, "Data quality check"): price, volume,
 * gap, staleness and completeness rules as set-based SQL passes, split-aware classification, alerts
 * and metrics persisted idempotently, every alert and a daily summary published to the app.
 */
export {
  type AlertKind,
  type AlertType,
  barAlerts,
  coverageAlerts,
  markRechecked,
  priceSeverity,
  type QualityAlert,
  RECHECKED,
  reclassifyUnverified,
  type Severity,
  type SplitKnowledge,
  splitRatio,
  UNVERIFIED,
  type UnverifiedPriceAlert,
} from './alerts';
export {
  DEFAULT_QUALITY_CONFIG,
  InvalidQualityConfigError,
  type QualityConfig,
  type QualityConfigInput,
  QualityConfigSchema,
  resolveQualityConfig,
} from './config';
export {
  alertMessageId,
  CHANNEL_OF,
  QUALITY_SERVICE,
  type QualityCheckDeps,
  QualityCheckError,
  QualityPublishError,
  type QualitySummary,
  runQualityCheck,
  stableMessageId,
} from './run';
