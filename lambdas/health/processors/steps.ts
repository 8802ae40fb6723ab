/**
 * Steps: daily totals per origin (never summed across apps; see daily-totals.ts), target 10,000 a
 * day, bands <5,000 sedentary, 5,000-7,499 low active, 7,500-9,999 somewhat active, 10,000-12,499
 * active, >= 12,500 highly active.
 */
import type { StepsRecord } from '../types';
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

export type StepsBand = 'sedentary' | 'low_active' | 'somewhat_active' | 'active' | 'highly_active';

export function stepsBand(steps: number): StepsBand {
  if (steps < 5000) return 'sedentary';
  if (steps < 7500) return 'low_active';
  if (steps < 10_000) return 'somewhat_active';
  if (steps < 12_500) return 'active';
  return 'highly_active';
}

const BAND_LABEL: Record<StepsBand, string> = {
  sedentary: 'sedentary (under 5,000)',
  low_active: 'low active (5,000-7,499)',
  somewhat_active: 'somewhat active (7,500-9,999)',
  active: 'active (10,000-12,499)',
  highly_active: 'highly active (12,500 or more)',
};

export interface StepsDayInsights extends DayTotal {
  /** Null on a partial day: a running total is not graded. */
  band: StepsBand | null;
  percentOfTarget: number | null;
  /** Steps the recommendation adds (null when the target is met or the day is partial). */
  stepsToTarget: number | null;
  walkingMinutes: number | null;
}

export interface StepsInsights {
  recordType: 'StepsRecord';
  target: number;
  days: StepsDayInsights[];
}

export function createStepsProcessor(
  config: ProcessorConfig = DEFAULT_PROCESSOR_CONFIG,
): Processor<StepsRecord> {
  const records: TotalRecord[] = [];
  return {
    add(r) {
      records.push({
        origin: r.metadata.dataOriginPackageName,
        start: r.startTimeEpochMillis,
        end: r.endTimeEpochMillis,
        zone: r.startZoneOffsetId,
        value: r.count,
        fetch: r.appRecordFetchTimeEpochMillis,
      });
    },
    finish(): ProcessorResult {
      const target = config.stepsTarget;
      const days = dailyTotals(records, 'steps').map((d) => ({
        ...d,
        band: d.partial ? null : stepsBand(d.total),
        percentOfTarget: d.partial ? null : pctOf(d.total, target),
        // What the recommendation states (rounded up to 100 steps; ~100 steps a minute of walking).
        stepsToTarget: d.partial || d.total >= target ? null : Math.ceil((target - d.total) / 100) * 100,
        walkingMinutes:
          d.partial || d.total >= target ? null : Math.max(5, Math.round((target - d.total) / 100)),
      }));
      const insights: StepsInsights = { recordType: 'StepsRecord', target, days };
      const parts = days.map((d) => {
        const lines: string[] = [];
        if (d.origins.length === 1) {
          const o = d.origins[0];
          lines.push(`Steps on ${dayLabel(d)}: ${int(d.total)} from ${o?.origin} (${o?.window} local).`);
        } else {
          lines.push(
            `Steps on ${dayLabel(d)} were reported by ${d.origins.length} apps: ${joinList(d.origins.map((o) => `${o.origin} ${int(o.total)} (${o.window} local)`))}.`,
          );
          lines.push(
            `The apps count different windows and wear time, so the totals are not added; the day's figure is the highest, ${int(d.total)} from ${d.chosenOrigin}.`,
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
          `That is ${Math.round(percentOfTarget)} % of the ${int(target)}-step target: ${BAND_LABEL[band]}.`,
        );
        const missing = target - d.total;
        lines.push(
          missing > 0
            ? `Recommendation: add about ${int(d.stepsToTarget ?? 0)} steps, for example ${d.walkingMinutes} minutes of brisk walking spread over the day.`
            : 'Recommendation: keep this level of daily movement.',
        );
        return lines.join(' ');
      });
      return {
        insights: insights as unknown as Record<string, unknown>,
        narrative: parts.join('\n\n'),
        input: records
          .map(
            (r) =>
              `Steps record, origin ${r.origin}, ${new Date(r.start).toISOString()} to ${new Date(r.end).toISOString()} (zone ${r.zone ?? 'none'}): ${r.value} steps.`,
          )
          .join('\n'),
      };
    },
  };
}
