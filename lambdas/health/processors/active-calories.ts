/**
 * Active calories: daily totals per origin (never summed across apps; see daily-totals.ts), target
 * 500 kcal a day, bands <200 low, 200-399 light, 400-599 moderate, 600-799 high, >= 800 very high.
 */
import type { ActiveCaloriesBurnedRecord } from '../types';
import {
  DEFAULT_PROCESSOR_CONFIG,
  int,
  joinList,
  type Processor,
  type ProcessorConfig,
  type ProcessorResult,
  pctOf,
} from './common';
import { type DayTotal, dailyTotals, dayLabel, PARTIAL_DAY_NOTE, type TotalRecord } from './daily-totals';

export type CaloriesBand = 'low' | 'light' | 'moderate' | 'high' | 'very_high';

export function caloriesBand(kcal: number): CaloriesBand {
  if (kcal < 200) return 'low';
  if (kcal < 400) return 'light';
  if (kcal < 600) return 'moderate';
  if (kcal < 800) return 'high';
  return 'very_high';
}

const BAND_LABEL: Record<CaloriesBand, string> = {
  low: 'low (under 200 kcal)',
  light: 'light (200-399 kcal)',
  moderate: 'moderate (400-599 kcal)',
  high: 'high (600-799 kcal)',
  very_high: 'very high (800 kcal or more)',
};

export interface CaloriesDayInsights extends DayTotal {
  /** Null on a partial day: a running total is not graded. */
  band: CaloriesBand | null;
  percentOfTarget: number | null;
  /** Minutes of moderate activity (~7 kcal a minute) the recommendation names; null when met or partial. */
  minutesToTarget: number | null;
}

export interface ActiveCaloriesInsights {
  recordType: 'ActiveCaloriesBurnedRecord';
  targetKcal: number;
  days: CaloriesDayInsights[];
}

export function createActiveCaloriesProcessor(
  config: ProcessorConfig = DEFAULT_PROCESSOR_CONFIG,
): Processor<ActiveCaloriesBurnedRecord> {
  const records: TotalRecord[] = [];
  return {
    add(r) {
      records.push({
        origin: r.metadata.dataOriginPackageName,
        start: r.startTimeEpochMillis,
        end: r.endTimeEpochMillis,
        zone: r.startZoneOffsetId,
        value: r.energyInKilocalories,
        fetch: r.appRecordFetchTimeEpochMillis,
      });
    },
    finish(): ProcessorResult {
      const target = config.activeCaloriesTarget;
      const days = dailyTotals(records, 'kcal').map((d) => ({
        ...d,
        total: Math.round(d.total * 10) / 10,
        band: d.partial ? null : caloriesBand(d.total),
        percentOfTarget: d.partial ? null : pctOf(d.total, target),
        minutesToTarget:
          d.partial || d.total >= target ? null : Math.max(10, Math.round((target - d.total) / 7)),
      }));
      const insights: ActiveCaloriesInsights = {
        recordType: 'ActiveCaloriesBurnedRecord',
        targetKcal: target,
        days,
      };
      const parts = days.map((d) => {
        const lines: string[] = [];
        if (d.origins.length === 1) {
          const o = d.origins[0];
          lines.push(
            `Active energy on ${dayLabel(d)}: ${int(d.total)} kcal from ${o?.origin} (${o?.window} local).`,
          );
        } else {
          lines.push(
            `Active energy on ${dayLabel(d)} was reported by ${d.origins.length} apps: ${joinList(d.origins.map((o) => `${o.origin} ${int(o.total)} kcal (${o.window} local)`))}; they are not added, the day's figure is the highest, ${int(d.total)} kcal from ${d.chosenOrigin}.`,
          );
        }
        if (d.partial || d.band === null || d.percentOfTarget === null) {
          lines.push(PARTIAL_DAY_NOTE);
          lines.push('Recommendation: read the full day once it has ended.');
          return lines.join(' ');
        }
        const band = d.band;
        const percentOfTarget = d.percentOfTarget;
        lines.push(
          `That is ${Math.round(percentOfTarget)} % of the ${int(target)} kcal target: ${BAND_LABEL[band]}.`,
        );
        lines.push(
          d.total < target
            ? `Recommendation: about ${d.minutesToTarget} more minutes of moderate activity (roughly 7 kcal a minute) would reach the target.`
            : 'Recommendation: keep this level of activity, with rest days for recovery.',
        );
        return lines.join(' ');
      });
      return {
        insights: insights as unknown as Record<string, unknown>,
        narrative: parts.join('\n\n'),
        input: records
          .map(
            (r) =>
              `Active calories record, origin ${r.origin}, ${new Date(r.start).toISOString()} to ${new Date(r.end).toISOString()} (zone ${r.zone ?? 'none'}): ${r.value} kcal.`,
          )
          .join('\n'),
      };
    },
  };
}
