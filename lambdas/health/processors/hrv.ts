/**
 * Heart-rate variability (RMSSD, ms) per data origin.
 *
 * Rules kept: bands <20 very low, 20-40 low, 40-60 average, 60-80 good, >= 80 excellent (on the
 * mean); a trend needs >= 7 readings and a +/-10 % change between the first and second half.
 *
 * Improvement: the median is reported beside the mean (RMSSD is skewed by single high beats), and
 * the narrative says that a rise within one night is the normal overnight pattern, so a
 * within-night "rising" trend is not read as improving recovery.
 */
import { localClock } from '../time';
import type { HeartRateVariabilityRmssdRecord } from '../types';
import {
  Column,
  fmt1,
  getOrCreate,
  halvesTrend,
  joinList,
  median,
  type Processor,
  type ProcessorResult,
  Running,
  round1,
  timeOrder,
} from './common';

export type HrvBand = 'very_low' | 'low' | 'average' | 'good' | 'excellent';

export function hrvBand(rmssd: number): HrvBand {
  if (rmssd < 20) return 'very_low';
  if (rmssd < 40) return 'low';
  if (rmssd < 60) return 'average';
  if (rmssd < 80) return 'good';
  return 'excellent';
}

const BAND_LABEL: Record<HrvBand, string> = {
  very_low: 'very low (under 20 ms)',
  low: 'low (20-40 ms)',
  average: 'average (40-60 ms)',
  good: 'good (60-80 ms)',
  excellent: 'excellent (80 ms and above)',
};

const MIN_TREND_READINGS = 7;

interface OriginAcc {
  times: Column;
  values: Column;
  stats: Running;
  zone: string | null;
}

export interface HrvOriginInsights {
  readings: number;
  firstReading: string;
  lastReading: string;
  zone: string | null;
  meanMs: number;
  medianMs: number;
  sdMs: number;
  minMs: number;
  maxMs: number;
  band: HrvBand;
  trend: (ReturnType<typeof halvesTrend> & { available: true }) | { available: false; reason: string };
}

export interface HrvInsights {
  recordType: 'HeartRateVariabilityRmssdRecord';
  origins: Record<string, HrvOriginInsights>;
  chosenOrigin: string | null;
  reconciliation: string;
}

export function createHrvProcessor(): Processor<HeartRateVariabilityRmssdRecord> {
  const origins = new Map<string, OriginAcc>();
  return {
    add(r) {
      const acc = getOrCreate(origins, r.metadata.dataOriginPackageName, () => ({
        times: new Column(),
        values: new Column(),
        stats: new Running(),
        zone: r.zoneOffsetId,
      }));
      acc.times.push(r.timeEpochMillis);
      acc.values.push(r.heartRateVariabilityRmssd);
      acc.stats.add(r.heartRateVariabilityRmssd);
    },
    finish(): ProcessorResult {
      const result: Record<string, HrvOriginInsights> = {};
      for (const [origin, acc] of origins) {
        const times = acc.times.view();
        const values = acc.values.view();
        const order = timeOrder(times);
        const sorted = Float64Array.from(values).sort();
        const n = values.length;
        const first = order ? (times[order[0] as number] as number) : (times[0] as number);
        const last = order ? (times[order[n - 1] as number] as number) : (times[n - 1] as number);
        result[origin] = {
          readings: n,
          firstReading: localClock(first, acc.zone),
          lastReading: localClock(last, acc.zone),
          zone: acc.zone,
          meanMs: round1(acc.stats.mean),
          medianMs: round1(median(sorted)),
          sdMs: round1(acc.stats.sd),
          minMs: round1(acc.stats.min),
          maxMs: round1(acc.stats.max),
          band: hrvBand(acc.stats.mean),
          trend:
            n >= MIN_TREND_READINGS
              ? { available: true, ...halvesTrend(values, order, 10) }
              : { available: false, reason: `needs at least ${MIN_TREND_READINGS} readings, has ${n}` },
        };
      }
      const ranked = Object.entries(result).sort((a, b) => b[1].readings - a[1].readings);
      const insights: HrvInsights = {
        recordType: 'HeartRateVariabilityRmssdRecord',
        origins: result,
        chosenOrigin: ranked[0]?.[0] ?? null,
        reconciliation:
          ranked.length > 1
            ? `${ranked.length} sources summarised separately (devices measure RMSSD differently; never averaged together)`
            : 'single source',
      };
      return {
        insights: insights as unknown as Record<string, unknown>,
        narrative: narrate(insights),
        input: describeInput(origins),
      };
    },
  };
}

function narrate(ins: HrvInsights): string {
  const parts: string[] = [];
  for (const [origin, h] of Object.entries(ins.origins)) {
    const lines = [
      `Heart-rate variability (RMSSD) from ${origin}: ${h.readings} readings from ${h.firstReading} to ${h.lastReading} (UTC${h.zone === 'Z' || !h.zone ? '' : h.zone}).`,
      `Average ${fmt1(h.meanMs)} ms (median ${fmt1(h.medianMs)} ms, range ${fmt1(h.minMs)}-${fmt1(h.maxMs)} ms), which is ${BAND_LABEL[h.band]}.`,
    ];
    if (h.trend.available) {
      lines.push(
        `Across the recording it was ${h.trend.direction} (first half ${fmt1(h.trend.firstHalf)} ms, second half ${fmt1(h.trend.secondHalf)} ms, ${h.trend.changePercent >= 0 ? '+' : ''}${fmt1(h.trend.changePercent)} %); within one night a rise is the usual pattern as sleep deepens, so compare nights rather than hours.`,
      );
    } else {
      lines.push(`No trend is given: it ${h.trend.reason}.`);
    }
    const recs: string[] = [];
    if (h.band === 'very_low' || h.band === 'low') {
      recs.push(
        'favour recovery (regular sleep, lighter training, less late alcohol or caffeine) and compare with the coming nights',
      );
    } else recs.push('keep the current recovery habits');
    if (h.band === 'very_low') recs.push('mention persistently very low values to a clinician');
    lines.push(`Recommendation: ${joinList(recs)}.`);
    parts.push(lines.join(' '));
  }
  if (Object.keys(ins.origins).length > 1) parts.push(`Sources: ${ins.reconciliation}.`);
  return parts.join('\n\n');
}

function describeInput(origins: Map<string, OriginAcc>): string {
  const out: string[] = [];
  for (const [origin, acc] of origins) {
    const times = acc.times.view();
    const values = acc.values.view();
    const buckets = new Map<string, Running>();
    for (let i = 0; i < times.length; i++) {
      const clock = localClock(times[i] as number, acc.zone);
      const key = `${clock.slice(5, 14)}${Number(clock.slice(14, 16)) < 30 ? '00' : '30'}`;
      getOrCreate(buckets, key, () => new Running()).add(values[i] as number);
    }
    const rows = [...buckets.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, r]) => `${k} ${fmt1(r.mean)}`);
    out.push(
      `HRV RMSSD export, origin ${origin}, zone ${acc.zone ?? 'none'}, ${acc.values.length} readings. Half-hour mean ms, local time: ${rows.join(', ')}.`,
    );
  }
  return out.join('\n');
}
