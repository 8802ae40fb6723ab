/**
 * Thresholds of the daily data-quality check (market-data.md, "Data quality check"). One typed
 * object with defaults; the Lambda may override any part through QUALITY_CONFIG (JSON), validated
 * here so a typo fails the cold start instead of silently using a default.
 */
import { z } from 'zod';

const fraction = z.number().positive().max(10);
const sessions = z.number().int().positive().max(1000);

export const QualityConfigSchema = z
  .object({
    price: z
      .object({
        /** |close / previous close - 1| above this is a price anomaly. */
        move: fraction.default(0.2),
        /** (high - low) / previous close above this is a price anomaly. */
        range: fraction.default(0.3),
        /** Severity tiers of the larger of the two measures (medium below highAt). */
        highAt: fraction.default(0.35),
        criticalAt: fraction.default(0.5),
      })
      .prefault({}),
    volume: z
      .object({
        /** Bars in the reference average: the previous N sessions on which the symbol traded. */
        averageSessions: sessions.default(20),
        /**
         * How far back (sessions) the scan reads to find those N bars. Independent of any alert
         * look-back: the replaced monitor filtered to 7 days before averaging "20 days".
         */
        lookbackSessions: sessions.default(40),
        spikeMultiple: fraction.default(5),
        droughtMultiple: fraction.default(0.1),
        /** Symbols whose average is below this are too thin for volume rules. */
        thinAverage: z.number().nonnegative().default(1000),
      })
      .prefault({}),
    staleness: z
      .object({
        /** A last bar more than this many sessions before the trade date is stale. */
        afterSessions: sessions.default(2),
        highAtSessions: sessions.default(7),
      })
      .prefault({}),
    gaps: z
      .object({
        /**
         * A hole is reported when the bar that closes it is at most this many sessions old, so a
         * skipped daily run or a late-loaded bar is still caught; re-reporting is idempotent.
         */
        lookbackSessions: sessions.default(5),
        highAtSessions: sessions.default(7),
      })
      .prefault({}),
    completeness: z
      .object({
        /** Rolling window (sessions ending on the trade date) over which completeness is measured. */
        windowSessions: sessions.default(63),
        /** Below this share of expected bars: medium; below highBelow: high. */
        minimum: z.number().min(0).max(1).default(0.8),
        highBelow: z.number().min(0).max(1).default(0.5),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.price.highAt > c.price.criticalAt)
      ctx.addIssue({ code: 'custom', path: ['price', 'highAt'], message: 'highAt must be <= criticalAt' });
    if (c.volume.lookbackSessions <= c.volume.averageSessions)
      ctx.addIssue({
        code: 'custom',
        path: ['volume', 'lookbackSessions'],
        message: 'lookbackSessions must exceed averageSessions (room for halted sessions)',
      });
    if (c.completeness.highBelow > c.completeness.minimum)
      ctx.addIssue({
        code: 'custom',
        path: ['completeness', 'highBelow'],
        message: 'highBelow must be <= minimum',
      });
    if (c.completeness.windowSessions <= c.staleness.afterSessions)
      ctx.addIssue({
        code: 'custom',
        path: ['completeness', 'windowSessions'],
        message: 'windowSessions must exceed staleness.afterSessions',
      });
  });

export type QualityConfig = z.output<typeof QualityConfigSchema>;
export type QualityConfigInput = z.input<typeof QualityConfigSchema>;

export class InvalidQualityConfigError extends Error {
  constructor(issues: string[]) {
    super(`invalid quality-check configuration: ${issues.join('; ')}`);
    this.name = 'InvalidQualityConfigError';
  }
}

/** Defaults merged with an override (a partial object, e.g. parsed from QUALITY_CONFIG). */
export function resolveQualityConfig(input: unknown = {}): QualityConfig {
  const parsed = QualityConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new InvalidQualityConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  return parsed.data;
}

export const DEFAULT_QUALITY_CONFIG: QualityConfig = resolveQualityConfig({});
