/**
 * Heart rate per data origin, from `samples[]` (a record is one spot reading, an hourly 1-minute
 * series or an overnight series).
 *
 * Rules kept: classes (<40, 40-59, 60-99 normal, 100-119 elevated, 120-149 tachycardia range,
 * >= 150 severe); zones by % of max HR (default 180): <60, 60-70, 70-80, 80-90, >= 90; resting HR =
 * mean of the lowest 20 % of the samples taken asleep (no 80 bpm cap, see restingHeartRate);
 * exercise = a run of >= 10 min of samples >= 100 bpm.
 *
 * Asleep (issue 15, point 4; RESTING_DEFINITIONS): inside the person's main sleep sessions, known
 * from the sleep records (sleep-spans.ts, often an earlier export), which the pipeline hands to
 * `finish`; on a night no sleep record covers, the clock window 22:00-05:59 local stands in for
 * it. The sleeping heart rate (mean of the samples inside sleep sessions) is reported beside it,
 * and the narrative says which definition was used.
 *
 * Improvements: a "run" needs samples no more than 2 min apart (two spot readings 10 min apart are
 * not 10 minutes of exercise); fast samples inside an exercise bout are not reported as resting
 * tachycardia; resting HR comes from the origin with the most overnight samples instead of mixing
 * a ring and a watch; each origin is summarised on its own.
 */
import { localClock, localHourIndex, localMinuteOfDay, offsetMinutesAt } from '../time';
import type { HeartRateRecord } from '../types';
import {
  Column,
  DEFAULT_PROCESSOR_CONFIG,
  getOrCreate,
  hoursMinutes,
  int,
  joinList,
  type Processor,
  type ProcessorConfig,
  type ProcessorContext,
  type ProcessorResult,
  pctOf,
  Running,
  round1,
  timeOrder,
} from './common';
import type { SleepSpan } from './sleep';

export type HeartRateClass = 'below_40' | '40_59' | 'normal' | 'elevated' | 'tachycardia' | 'severe';
export type HeartRateZone = 'below_60' | '60_70' | '70_80' | '80_90' | '90_plus';

export function heartRateClass(bpm: number): HeartRateClass {
  if (bpm < 40) return 'below_40';
  if (bpm < 60) return '40_59';
  if (bpm < 100) return 'normal';
  if (bpm < 120) return 'elevated';
  if (bpm < 150) return 'tachycardia';
  return 'severe';
}

export function heartRateZone(bpm: number, maxHeartRate: number): HeartRateZone {
  const p = (bpm / maxHeartRate) * 100;
  if (p < 60) return 'below_60';
  if (p < 70) return '60_70';
  if (p < 80) return '70_80';
  if (p < 90) return '80_90';
  return '90_plus';
}

/**
 * Resting heart rate: the mean of the lowest 20 % of the samples taken asleep (RESTING_DEFINITIONS),
 * null without any. Never from daytime spot readings, and without the replaced
 * system's "< 80 bpm" filter: that filter hid a sleeping heart rate of 90 bpm (and then fell back
 * on daytime readings), which is exactly the finding a clinician needs to see.
 */
export function restingHeartRate(overnight: ArrayLike<number>): number | null {
  const calm = Array.from(overnight);
  if (calm.length === 0) return null;
  calm.sort((a, b) => a - b);
  const k = Math.max(1, Math.ceil(calm.length * 0.2));
  return calm.slice(0, k).reduce((a, b) => a + b, 0) / k;
}

export type RestingMethod = 'sleep_sessions' | 'overnight_window' | 'sleep_sessions_and_overnight_window';

/** What `restingBpm` is the mean of, as the insights and the narrative state it. */
export const RESTING_DEFINITIONS: Record<RestingMethod, string> = {
  sleep_sessions: 'mean of the lowest 20 % of the samples recorded during sleep sessions (sleep records)',
  overnight_window:
    'mean of the lowest 20 % of the samples between 22:00 and 05:59 local (no sleep record covers the night)',
  sleep_sessions_and_overnight_window:
    'mean of the lowest 20 % of the samples recorded during sleep sessions and, on nights no sleep record covers, between 22:00 and 05:59 local',
};

const DAY_MS = 86_400_000;
const HALF_DAY_MS = 43_200_000;

/** The night a moment belongs to: the local date 12 h earlier (22:00 and 05:59 fall on one night). */
function nightIndex(t: number, zone: string | null): number {
  return Math.floor((t + offsetMinutesAt(zone, t) * 60_000 - HALF_DAY_MS) / DAY_MS);
}

/** Main sleep sessions as sorted, merged [start, end) intervals (several apps report one night). */
function sleepIntervals(spans: readonly SleepSpan[]): [number, number][] {
  const sorted = spans
    .filter((s) => s.kind === 'main')
    .map((s) => [s.start, s.end] as [number, number])
    .sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last && iv[0] <= last[1]) last[1] = Math.max(last[1], iv[1]);
    else out.push([iv[0], iv[1]]);
  }
  return out;
}

export interface ExerciseBout {
  start: string;
  end: string;
  minutes: number;
  meanBpm: number;
  peakBpm: number;
}

const EXERCISE_BPM = 100;
const EXERCISE_MIN_MS = 10 * 60_000;
const MAX_GAP_MS = 2 * 60_000;

/** Runs of samples >= 100 bpm, no gap over 2 min, lasting >= 10 min. Input sorted by time. */
export function exerciseBouts(
  times: ArrayLike<number>,
  bpm: ArrayLike<number>,
  zone: string | null,
): { bouts: ExerciseBout[]; inBout: Uint8Array } {
  const bouts: ExerciseBout[] = [];
  const inBout = new Uint8Array(times.length);
  let start = -1;
  const close = (endIdx: number) => {
    const t0 = times[start] as number;
    const t1 = times[endIdx] as number;
    if (t1 - t0 >= EXERCISE_MIN_MS) {
      let sum = 0;
      let peak = 0;
      for (let i = start; i <= endIdx; i++) {
        sum += bpm[i] as number;
        peak = Math.max(peak, bpm[i] as number);
        inBout[i] = 1;
      }
      bouts.push({
        start: localClock(t0, zone),
        end: localClock(t1, zone),
        minutes: Math.round((t1 - t0) / 60_000),
        meanBpm: Math.round(sum / (endIdx - start + 1)),
        peakBpm: peak,
      });
    }
    start = -1;
  };
  for (let i = 0; i < times.length; i++) {
    const fast = (bpm[i] as number) >= EXERCISE_BPM;
    if (fast && start >= 0 && (times[i] as number) - (times[i - 1] as number) > MAX_GAP_MS) close(i - 1);
    if (fast && start < 0) start = i;
    if (!fast && start >= 0) close(i - 1);
  }
  if (start >= 0) close(times.length - 1);
  return { bouts, inBout };
}

interface OriginAcc {
  times: Column;
  bpm: Column;
  overnight: Column;
  /** The night (nightIndex) of each overnight sample, to leave out nights a sleep record covers. */
  overnightNight: Column;
  stats: Running;
  records: number;
  spotRecords: number;
  seriesRecords: number;
  zone: string | null;
}

export interface HeartRateOriginInsights {
  records: number;
  spotReadings: number;
  seriesRecords: number;
  samples: number;
  firstSample: string;
  lastSample: string;
  zone: string | null;
  meanBpm: number;
  minBpm: number;
  maxBpm: number;
  classes: Record<HeartRateClass, number>;
  zonesPercent: Record<HeartRateZone, number>;
  overnightSamples: number;
  /** Mean of every overnight (22:00-05:59 local) sample: the heart rate while usually asleep. */
  overnightMeanBpm: number | null;
  /** Samples inside the person's main sleep sessions (sleep records) and their mean. */
  sleepSamples: number;
  sleepMeanBpm: number | null;
  /** The samples the resting figure is taken from (RESTING_DEFINITIONS[restingMethod]). */
  restingSamples: number;
  restingMethod: RestingMethod | null;
  restingBpm: number | null;
  exercise: ExerciseBout[];
  exerciseMinutes: number;
  /** Samples >= 100 bpm outside exercise bouts. */
  elevatedAtRest: number;
}

export interface HeartRateInsights {
  recordType: 'HeartRateRecord';
  maxHeartRate: number;
  origins: Record<string, HeartRateOriginInsights>;
  restingBpm: number | null;
  restingFrom: string | null;
  /** How restingBpm was found, and the definition in words (null when it was not estimated). */
  restingMethod: RestingMethod | null;
  restingDefinition: string | null;
  /** Mean heart rate during sleep sessions, of the origin with the most samples in them. */
  sleepingBpm: number | null;
  sleepingFrom: string | null;
  /** The main sleep sessions (sleep records) overlapping this export: how many and their origins. */
  sleepSessions: { count: number; origins: string[]; nights: string[] };
  chosenOrigin: string | null;
  reconciliation: string;
}

export function createHeartRateProcessor(
  config: ProcessorConfig = DEFAULT_PROCESSOR_CONFIG,
): Processor<HeartRateRecord> {
  const origins = new Map<string, OriginAcc>();
  return {
    add(r) {
      const acc = getOrCreate(origins, r.metadata.dataOriginPackageName, () => ({
        times: new Column(),
        bpm: new Column(),
        overnight: new Column(),
        overnightNight: new Column(),
        stats: new Running(),
        records: 0,
        spotRecords: 0,
        seriesRecords: 0,
        zone: r.startZoneOffsetId,
      }));
      acc.records++;
      if (r.samples.length === 1) acc.spotRecords++;
      else acc.seriesRecords++;
      for (const s of r.samples) {
        acc.times.push(s.timeEpochMillis);
        acc.bpm.push(s.beatsPerMinute);
        acc.stats.add(s.beatsPerMinute);
        const minute = localMinuteOfDay(s.timeEpochMillis, r.startZoneOffsetId);
        if (minute >= 1320 || minute < 360) {
          acc.overnight.push(s.beatsPerMinute);
          acc.overnightNight.push(nightIndex(s.timeEpochMillis, r.startZoneOffsetId));
        }
      }
    },

    finish(context?: ProcessorContext): ProcessorResult {
      const spans = context?.sleepSpans ?? [];
      const intervals = sleepIntervals(spans);
      // Nights a sleep record covers: their clock window is not used, the sessions are.
      const covered = new Set(
        spans.filter((x) => x.kind === 'main').map((x) => Date.parse(`${x.nightOf}T00:00:00Z`) / DAY_MS),
      );
      const result: Record<string, ReturnType<typeof summarise>> = {};
      for (const [origin, acc] of origins)
        result[origin] = summarise(acc, config.maxHeartRate, intervals, covered);
      const entries = Object.entries(result);
      const chosen = [...entries].sort((a, b) => b[1].samples - a[1].samples)[0]?.[0] ?? null;
      // The origin with the most samples asleep in sleep sessions, then in the clock window.
      const restingSource = [...entries]
        .filter(([, o]) => o.restingBpm !== null)
        .sort(
          (a, b) => b[1].sleepSamples - a[1].sleepSamples || b[1].restingSamples - a[1].restingSamples,
        )[0];
      const sleepingSource = [...entries]
        .filter(([, o]) => o.sleepMeanBpm !== null)
        .sort((a, b) => b[1].sleepSamples - a[1].sleepSamples)[0];
      const first = Math.min(...entries.map(([, o]) => o.firstMs));
      const last = Math.max(...entries.map(([, o]) => o.lastMs));
      const overlapping = spans.filter((x) => x.kind === 'main' && x.start < last && x.end > first);
      const method = restingSource?.[1].restingMethod ?? null;
      const insights: HeartRateInsights = {
        recordType: 'HeartRateRecord',
        maxHeartRate: config.maxHeartRate,
        origins: Object.fromEntries(entries.map(([o, h]) => [o, strip(h)])) as Record<
          string,
          HeartRateOriginInsights
        >,
        restingBpm: restingSource ? (restingSource[1].restingBpm as number) : null,
        restingFrom: restingSource?.[0] ?? null,
        restingMethod: method,
        restingDefinition: method ? RESTING_DEFINITIONS[method] : null,
        sleepingBpm: sleepingSource ? (sleepingSource[1].sleepMeanBpm as number) : null,
        sleepingFrom: sleepingSource?.[0] ?? null,
        sleepSessions: {
          count: overlapping.length,
          origins: [...new Set(overlapping.map((x) => x.origin))].sort(),
          nights: [...new Set(overlapping.map((x) => x.nightOf))].sort(),
        },
        chosenOrigin: chosen,
        reconciliation:
          entries.length > 1
            ? `${entries.length} sources summarised separately (samples are not pooled); resting heart rate taken from ${restingSource?.[0] ?? 'none'} (most samples asleep)`
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

/** The per-origin insights without the internal first/last instants. */
function strip(h: HeartRateOriginInsights & { firstMs: number; lastMs: number }): HeartRateOriginInsights {
  const { firstMs: _f, lastMs: _l, ...rest } = h;
  return rest;
}

function summarise(
  acc: OriginAcc,
  maxHeartRate: number,
  intervals: readonly [number, number][],
  coveredNights: ReadonlySet<number>,
): HeartRateOriginInsights & { firstMs: number; lastMs: number } {
  const rawTimes = acc.times.view();
  const rawBpm = acc.bpm.view();
  const order = timeOrder(rawTimes);
  const times = order ? Float64Array.from(order, (i) => rawTimes[i] as number) : rawTimes;
  const bpm = order ? Float64Array.from(order, (i) => rawBpm[i] as number) : rawBpm;
  const classes: Record<HeartRateClass, number> = {
    below_40: 0,
    '40_59': 0,
    normal: 0,
    elevated: 0,
    tachycardia: 0,
    severe: 0,
  };
  const zones: Record<HeartRateZone, number> = {
    below_60: 0,
    '60_70': 0,
    '70_80': 0,
    '80_90': 0,
    '90_plus': 0,
  };
  for (const b of bpm) {
    classes[heartRateClass(b)]++;
    zones[heartRateZone(b, maxHeartRate)]++;
  }
  const { bouts, inBout } = exerciseBouts(times, bpm, acc.zone);
  let elevatedAtRest = 0;
  for (let i = 0; i < bpm.length; i++) if ((bpm[i] as number) >= EXERCISE_BPM && !inBout[i]) elevatedAtRest++;
  // Asleep: samples inside sleep sessions (times sorted, intervals sorted: one pass), then the
  // clock window of the nights no sleep record covers.
  const asleep = new Column();
  let sleepSum = 0;
  let sleepN = 0;
  for (let i = 0, k = 0; i < times.length && intervals.length > 0; i++) {
    const t = times[i] as number;
    while (k < intervals.length && (intervals[k] as [number, number])[1] <= t) k++;
    if (k === intervals.length) break;
    if (t >= (intervals[k] as [number, number])[0]) {
      asleep.push(bpm[i] as number);
      sleepSum += bpm[i] as number;
      sleepN++;
    }
  }
  const night = acc.overnightNight.view();
  const window = acc.overnight.view();
  let windowN = 0;
  for (let i = 0; i < window.length; i++) {
    if (coveredNights.has(night[i] as number)) continue;
    asleep.push(window[i] as number);
    windowN++;
  }
  const restingMethod: RestingMethod | null =
    sleepN > 0 && windowN > 0
      ? 'sleep_sessions_and_overnight_window'
      : sleepN > 0
        ? 'sleep_sessions'
        : windowN > 0
          ? 'overnight_window'
          : null;
  const resting = restingHeartRate(asleep.view());
  const n = bpm.length;
  return {
    firstMs: n ? (times[0] as number) : Number.POSITIVE_INFINITY,
    lastMs: n ? (times[n - 1] as number) : Number.NEGATIVE_INFINITY,
    records: acc.records,
    spotReadings: acc.spotRecords,
    seriesRecords: acc.seriesRecords,
    samples: n,
    firstSample: n ? localClock(times[0] as number, acc.zone) : '',
    lastSample: n ? localClock(times[n - 1] as number, acc.zone) : '',
    zone: acc.zone,
    meanBpm: round1(acc.stats.mean),
    minBpm: n ? acc.stats.min : 0,
    maxBpm: n ? acc.stats.max : 0,
    classes,
    zonesPercent: {
      below_60: pctOf(zones.below_60, n),
      '60_70': pctOf(zones['60_70'], n),
      '70_80': pctOf(zones['70_80'], n),
      '80_90': pctOf(zones['80_90'], n),
      '90_plus': pctOf(zones['90_plus'], n),
    },
    overnightSamples: acc.overnight.length,
    overnightMeanBpm: acc.overnight.length
      ? round1(acc.overnight.view().reduce((a, b) => a + b, 0) / acc.overnight.length)
      : null,
    sleepSamples: sleepN,
    sleepMeanBpm: sleepN ? round1(sleepSum / sleepN) : null,
    restingSamples: sleepN + windowN,
    restingMethod,
    restingBpm: resting === null ? null : round1(resting),
    exercise: bouts,
    exerciseMinutes: bouts.reduce((a, b) => a + b.minutes, 0),
    elevatedAtRest,
  };
}

function narrate(ins: HeartRateInsights): string {
  const parts: string[] = [];
  const entries = Object.entries(ins.origins);
  const first = entries[0]?.[1];
  const zone = first?.zone ? `UTC${first.zone === 'Z' ? '' : first.zone}` : 'UTC';
  parts.push(
    `Heart rate from ${entries.length === 1 ? 'one source' : `${entries.length} sources, each described separately`} (times in ${zone}).`,
  );
  for (const [origin, h] of entries) {
    const kinds = [
      h.spotReadings ? `${h.spotReadings} spot reading${h.spotReadings === 1 ? '' : 's'}` : '',
      h.seriesRecords ? `${h.seriesRecords} series record${h.seriesRecords === 1 ? '' : 's'}` : '',
    ].filter(Boolean);
    const lines = [
      `${origin}: ${joinList(kinds)} with ${int(h.samples)} samples from ${h.firstSample} to ${h.lastSample}; average ${Math.round(h.meanBpm)} bpm, range ${h.minBpm}-${h.maxBpm} bpm.`,
    ];
    if (h.exercise.length > 0) {
      const b = h.exercise.map(
        (x) =>
          `${x.start.slice(11)}-${x.end.slice(11)} (${x.minutes} min, average ${x.meanBpm}, peak ${x.peakBpm} bpm)`,
      );
      lines.push(
        `Exercise: ${h.exercise.length} bout${h.exercise.length > 1 ? 's' : ''} of at least 10 minutes above 100 bpm, ${hoursMinutes(h.exerciseMinutes)} in total: ${joinList(b)}.`,
      );
    }
    const z = h.zonesPercent;
    lines.push(
      `Share of samples by zone (max ${ins.maxHeartRate} bpm): under 60 % ${z.below_60} %, 60-70 % ${z['60_70']} %, 70-80 % ${z['70_80']} %, 80-90 % ${z['80_90']} %, 90 % and above ${z['90_plus']} %.`,
    );
    if (h.elevatedAtRest > 0) {
      lines.push(
        `${h.elevatedAtRest} sample${h.elevatedAtRest > 1 ? 's were' : ' was'} at or above 100 bpm outside any exercise bout.`,
      );
    }
    if (h.sleepMeanBpm !== null) {
      lines.push(
        `During sleep (inside the sleep sessions of the sleep records) heart rate averaged ${h.sleepMeanBpm.toFixed(1)} bpm over ${h.sleepSamples} samples${h.sleepMeanBpm >= 80 ? ', high for sleep' : ''}.`,
      );
    } else if (h.overnightMeanBpm !== null) {
      lines.push(
        `Overnight (22:00-05:59 local, when usually asleep) heart rate averaged ${h.overnightMeanBpm.toFixed(1)} bpm over ${h.overnightSamples} samples${h.overnightMeanBpm >= 80 ? ', high for sleep' : ''}.`,
      );
    }
    if (h.classes.below_40 > 0) lines.push(`${h.classes.below_40} samples were below 40 bpm.`);
    parts.push(lines.join(' '));
  }
  if (ins.restingBpm !== null) {
    const r = ins.restingBpm;
    const band =
      r < 40
        ? 'very low'
        : r < 60
          ? 'below 60, common in fit people'
          : r < 100
            ? 'within the 60-100 normal range'
            : 'high';
    const from = ins.origins[ins.restingFrom as string] as HeartRateOriginInsights;
    const how: Record<RestingMethod, string> = {
      sleep_sessions: `of the ${from.restingSamples} samples recorded during sleep sessions (${joinList(ins.sleepSessions.origins)} sleep records)`,
      overnight_window: `of the ${from.restingSamples} overnight samples (22:00-05:59 local), as no sleep record covers the night`,
      sleep_sessions_and_overnight_window: `of the ${from.restingSamples} samples recorded during sleep sessions (${joinList(ins.sleepSessions.origins)} sleep records) and, on nights no sleep record covers, between 22:00 and 05:59 local`,
    };
    parts.push(
      `Resting heart rate was ${r.toFixed(1)} bpm (${band}), the mean of the lowest 20 % ${how[ins.restingMethod as RestingMethod]}, from ${ins.restingFrom}.`,
    );
  } else {
    parts.push(
      'Resting heart rate was not estimated: there are no samples during sleep sessions or overnight, and daytime readings are not a resting measure.',
    );
  }
  const recs: string[] = [];
  const all = Object.values(ins.origins);
  const atRest = all.reduce((a, h) => a + h.elevatedAtRest, 0);
  const exerciseMinutes = all.reduce((a, h) => a + h.exerciseMinutes, 0);
  if (
    (ins.restingBpm !== null && ins.restingBpm >= 80) ||
    (ins.sleepingBpm !== null && ins.sleepingBpm >= 80)
  )
    recs.push('discuss the high heart rate during the night with a clinician');
  if (ins.restingBpm !== null && ins.restingBpm < 40)
    recs.push('mention the very low resting heart rate to a clinician if it comes with dizziness or fatigue');
  if (atRest > 5) recs.push('note what was happening during the fast readings outside exercise');
  if (exerciseMinutes === 0) recs.push('add some sustained activity: no exercise bout was recorded');
  if (recs.length === 0) recs.push('keep the current activity pattern');
  parts.push(`Recommendation: ${joinList(recs)}.`);
  return parts.join('\n\n');
}

function describeInput(origins: Map<string, OriginAcc>): string {
  const out: string[] = [];
  for (const [origin, acc] of origins) {
    // Numeric hour buckets: one Date per hour, not per sample.
    const buckets = new Map<number, Running>();
    const times = acc.times.view();
    const bpm = acc.bpm.view();
    for (let i = 0; i < times.length; i++) {
      getOrCreate(buckets, localHourIndex(times[i] as number, acc.zone), () => new Running()).add(
        bpm[i] as number,
      );
    }
    const rows = [...buckets.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([h, r]) => {
        const label = new Date(h * 3_600_000).toISOString().slice(5, 13).replace('T', ' ');
        return `${label}h ${Math.round(r.mean)} [${r.min}-${r.max}] (${r.n})`;
      });
    out.push(
      `Heart rate export, origin ${origin}, zone ${acc.zone ?? 'none'}, ${acc.records} records, ${acc.bpm.length} samples. Hourly mean bpm [min-max] (samples), local time: ${rows.join(', ')}.`,
    );
  }
  return out.join('\n');
}
