/**
 * Blood glucose (CGM) per data origin.
 *
 * Rules of the replaced system, kept: classes (<54 severe hypo, 54-69 hypo, 70-100 normal fasting,
 * 101-140 normal, 141-180 elevated, >180 severe hyper); mean, sample SD, CV = SD / mean x 100;
 * time in range 70-180 / below / above; control excellent (CV < 36 and TIR >= 70), good (CV < 36 and
 * TIR >= 50), fair (TIR >= 50), else poor; fasting 06:00-09:59 and overnight 22:00-05:59 in the
 * reading's local time; eA1c (ADAG) = (mean + 46.7) / 28.7; GMI = 3.31 + 0.02392 x mean; trend from
 * first vs second half (> 5 %).
 *
 * Improvements: the control grade also respects the consensus hypoglycaemia targets (time < 70 under
 * 4 %, time < 54 under 1 %): a day with TIR 90 % and 8 % lows is not "excellent". Lows are also
 * counted as episodes (>= 15 min below 70). eA1c and GMI are labelled indicative when the data
 * covers less than 14 days (they are defined on >= 14 days). Data sufficiency (share of expected
 * 5-minute readings) is reported, and the recorded zone is stated ("Z" means times are UTC).
 *
 * Local time: the glucose sensor app writes "Z" (UTC) while the person lives at another offset, so
 * a "Z" reading does not say what time of day it was for the person. Fasting and overnight windows
 * are therefore assessed only on readings with a real local offset, and claimed only when the
 * window is at least half covered (24 of the 48 readings of 06:00-09:59, 48 of the 96 of
 * 22:00-05:59). Otherwise the narrative says they were not assessed, and why.
 */
import { describeZone, localClock, localHourIndex, localMinuteOfDay } from '../time';
import type { BloodGlucoseRecord } from '../types';
import {
  Column,
  fmt1,
  getOrCreate,
  halvesTrend,
  hoursMinutes,
  int,
  joinList,
  type Processor,
  type ProcessorResult,
  pctOf,
  Running,
  round1,
  timeOrder,
} from './common';

export type GlucoseClass = 'severe_hypo' | 'hypo' | 'normal_fasting' | 'normal' | 'elevated' | 'severe_hyper';
export type GlycemicControl = 'excellent' | 'good' | 'fair' | 'poor';

export function glucoseClass(mgdl: number): GlucoseClass {
  if (mgdl < 54) return 'severe_hypo';
  if (mgdl < 70) return 'hypo';
  if (mgdl <= 100) return 'normal_fasting';
  if (mgdl <= 140) return 'normal';
  if (mgdl <= 180) return 'elevated';
  return 'severe_hyper';
}

/** The replaced system's grade, then capped at "fair" when the hypoglycaemia targets are missed. */
export function glycemicControl(
  cv: number,
  tir: number,
  tbr: number,
  tbrSevere: number,
): { grade: GlycemicControl; baseGrade: GlycemicControl; cappedForLows: boolean } {
  const baseGrade: GlycemicControl =
    cv < 36 && tir >= 70 ? 'excellent' : cv < 36 && tir >= 50 ? 'good' : tir >= 50 ? 'fair' : 'poor';
  const lowsMissed = tbr >= 4 || tbrSevere >= 1;
  const grade: GlycemicControl =
    lowsMissed && (baseGrade === 'excellent' || baseGrade === 'good') ? 'fair' : baseGrade;
  return { grade, baseGrade, cappedForLows: grade !== baseGrade };
}

export const estimatedA1c = (mean: number): number => (mean + 46.7) / 28.7;
export const gmi = (mean: number): number => 3.31 + 0.02392 * mean;

const CADENCE_MIN = 5;
const EPISODE_MIN = 15;

interface OriginAcc {
  times: Column;
  values: Column;
  stats: Running;
  classes: Record<GlucoseClass, number>;
  fasting: Running;
  overnight: Running;
  zones: Map<string, number>;
  /** Readings recorded in UTC ("Z") or without a zone: their local time of day is unknown. */
  withoutLocalTime: number;
}

const UTC_NAMES = new Set(['Z', 'UTC', 'GMT', '+00:00', '-00:00']);
/** A recorded offset that tells the person's local time (UTC as written by a sensor app does not). */
const hasLocalOffset = (zone: string | null): boolean => zone !== null && zone !== '' && !UTC_NAMES.has(zone);

const FASTING_MIN_READINGS = 24;
const OVERNIGHT_MIN_READINGS = 48;

export interface GlucoseOriginInsights {
  readings: number;
  firstReading: string;
  lastReading: string;
  zone: string;
  spanHours: number;
  /** Share of the 5-minute readings expected over the span. */
  dataSufficiencyPercent: number;
  meanMgDl: number;
  sdMgDl: number;
  cvPercent: number;
  minMgDl: number;
  maxMgDl: number;
  timeInRangePercent: number;
  timeBelowRangePercent: number;
  timeBelow54Percent: number;
  timeAboveRangePercent: number;
  classes: Record<GlucoseClass, number>;
  control: GlycemicControl;
  controlBeforeHypoglycemiaCheck: GlycemicControl;
  lowEpisodes: number;
  /** Readings whose local time of day is unknown (recorded in UTC): outside every window. */
  readingsWithoutLocalTime: number;
  fasting: { readings: number; meanMgDl: number | null; window: '06:00-09:59'; assessed: boolean };
  overnight: {
    readings: number;
    meanMgDl: number | null;
    minMgDl: number | null;
    window: '22:00-05:59';
    assessed: boolean;
  };
  estimatedA1cPercent: number;
  gmiPercent: number;
  a1cIndicativeOnly: boolean;
  trend: ReturnType<typeof halvesTrend>;
}

export interface GlucoseInsights {
  recordType: 'BloodGlucoseRecord';
  origins: Record<string, GlucoseOriginInsights>;
  chosenOrigin: string | null;
  reconciliation: string;
}

const CLASS_LABEL: Record<GlucoseClass, string> = {
  severe_hypo: 'below 54',
  hypo: '54-69',
  normal_fasting: '70-100',
  normal: '101-140',
  elevated: '141-180',
  severe_hyper: 'above 180',
};

export function createGlucoseProcessor(): Processor<BloodGlucoseRecord> {
  const origins = new Map<string, OriginAcc>();
  return {
    add(r) {
      const acc = getOrCreate(origins, r.metadata.dataOriginPackageName, () => ({
        times: new Column(),
        values: new Column(),
        stats: new Running(),
        classes: { severe_hypo: 0, hypo: 0, normal_fasting: 0, normal: 0, elevated: 0, severe_hyper: 0 },
        fasting: new Running(),
        overnight: new Running(),
        zones: new Map(),
        withoutLocalTime: 0,
      }));
      const v = r.levelInMilligramsPerDeciliter;
      acc.times.push(r.timeEpochMillis);
      acc.values.push(v);
      acc.stats.add(v);
      acc.classes[glucoseClass(v)]++;
      const zone = r.zoneOffsetId ?? '';
      acc.zones.set(zone, (acc.zones.get(zone) ?? 0) + 1);
      if (hasLocalOffset(r.zoneOffsetId)) {
        const minute = localMinuteOfDay(r.timeEpochMillis, r.zoneOffsetId);
        if (minute >= 360 && minute < 600) acc.fasting.add(v);
        if (minute >= 1320 || minute < 360) acc.overnight.add(v);
      } else acc.withoutLocalTime++;
    },

    finish(): ProcessorResult {
      const result: Record<string, GlucoseOriginInsights> = {};
      for (const [origin, acc] of origins) result[origin] = summarise(acc);
      // One CGM per person is the norm; with several, the one with most readings leads the story.
      const ranked = [...origins.keys()].sort(
        (a, b) => (result[b]?.readings ?? 0) - (result[a]?.readings ?? 0),
      );
      const chosen = ranked[0] ?? null;
      const insights: GlucoseInsights = {
        recordType: 'BloodGlucoseRecord',
        origins: result,
        chosenOrigin: chosen,
        reconciliation:
          ranked.length > 1
            ? `${ranked.length} sources; each is summarised separately, readings are never pooled; the narrative leads with ${chosen} (most readings)`
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

function summarise(acc: OriginAcc): GlucoseOriginInsights {
  const times = acc.times.view();
  const values = acc.values.view();
  const order = timeOrder(times);
  const n = values.length;
  const first = order ? (times[order[0] as number] as number) : (times[0] as number);
  const last = order ? (times[order[n - 1] as number] as number) : (times[n - 1] as number);
  const zone = [...acc.zones.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  const below = acc.classes.severe_hypo + acc.classes.hypo;
  const above = acc.classes.severe_hyper;
  const tir = pctOf(n - below - above, n);
  const tbr = pctOf(below, n);
  const tbrSevere = pctOf(acc.classes.severe_hypo, n);
  const mean = acc.stats.mean;
  const cv = mean ? (acc.stats.sd / mean) * 100 : 0;
  const control = glycemicControl(cv, tir, tbr, tbrSevere);
  const spanMinutes = (last - first) / 60_000;
  const expected = Math.floor(spanMinutes / CADENCE_MIN) + 1;

  // Episodes: consecutive readings below 70 lasting at least 15 minutes.
  let episodes = 0;
  let runStart = -1;
  for (let k = 0; k <= n; k++) {
    const i = k < n ? (order ? (order[k] as number) : k) : -1;
    const low = i >= 0 && (values[i] as number) < 70;
    if (low && runStart < 0) runStart = times[i] as number;
    if (!low && runStart >= 0) {
      const prev = k - 1;
      const j = order ? (order[prev] as number) : prev;
      if ((times[j] as number) - runStart + CADENCE_MIN * 60_000 >= EPISODE_MIN * 60_000) episodes++;
      runStart = -1;
    }
  }

  return {
    readings: n,
    firstReading: localClock(first, zone),
    lastReading: localClock(last, zone),
    zone,
    spanHours: round1(spanMinutes / 60),
    dataSufficiencyPercent: Math.min(100, pctOf(n, expected)),
    meanMgDl: round1(mean),
    sdMgDl: round1(acc.stats.sd),
    cvPercent: round1(cv),
    minMgDl: round1(acc.stats.min),
    maxMgDl: round1(acc.stats.max),
    timeInRangePercent: tir,
    timeBelowRangePercent: tbr,
    timeBelow54Percent: tbrSevere,
    timeAboveRangePercent: pctOf(above, n),
    classes: { ...acc.classes },
    control: control.grade,
    controlBeforeHypoglycemiaCheck: control.baseGrade,
    lowEpisodes: episodes,
    readingsWithoutLocalTime: acc.withoutLocalTime,
    fasting: {
      readings: acc.fasting.n,
      meanMgDl: acc.fasting.n ? round1(acc.fasting.mean) : null,
      window: '06:00-09:59',
      assessed: acc.fasting.n >= FASTING_MIN_READINGS,
    },
    overnight: {
      readings: acc.overnight.n,
      meanMgDl: acc.overnight.n ? round1(acc.overnight.mean) : null,
      minMgDl: acc.overnight.n ? round1(acc.overnight.min) : null,
      window: '22:00-05:59',
      assessed: acc.overnight.n >= OVERNIGHT_MIN_READINGS,
    },
    estimatedA1cPercent: round1(estimatedA1c(mean)),
    gmiPercent: round1(gmi(mean)),
    a1cIndicativeOnly: spanMinutes < 14 * 24 * 60,
    trend: halvesTrend(values, order, 5),
  };
}

function narrate(ins: GlucoseInsights): string {
  const parts: string[] = [];
  const origins = Object.entries(ins.origins);
  if (origins.length > 1) {
    parts.push(
      `This export holds glucose readings from ${origins.length} sources (${joinList(origins.map(([o]) => o))}); each is described separately and their readings are not pooled.`,
    );
  }
  for (const [origin, g] of origins) {
    const zone = describeZone(g.zone);
    const lines: string[] = [];
    lines.push(
      `Continuous glucose monitoring from ${origin}: ${int(g.readings)} readings from ${g.firstReading} to ${g.lastReading} (${zone}), covering ${hoursMinutes(g.spanHours * 60)} with ${fmt1(g.dataSufficiencyPercent)} % of the expected 5-minute readings.`,
    );
    if (g.readingsWithoutLocalTime > 0)
      lines.push(
        'The sensor records its times in UTC and the export carries no local time zone, so times are shown in UTC as recorded and no fasting or overnight window is assessed from them.',
      );
    lines.push(
      `Average glucose was ${fmt1(g.meanMgDl)} mg/dL (standard deviation ${fmt1(g.sdMgDl)}, coefficient of variation ${fmt1(g.cvPercent)} %), ranging from ${fmt1(g.minMgDl)} to ${fmt1(g.maxMgDl)} mg/dL.`,
    );
    lines.push(
      `Time in range (70-180 mg/dL) was ${fmt1(g.timeInRangePercent)} %, below range ${fmt1(g.timeBelowRangePercent)} % (below 54: ${fmt1(g.timeBelow54Percent)} %) and above range ${fmt1(g.timeAboveRangePercent)} %.`,
    );
    const classes = (Object.entries(g.classes) as [GlucoseClass, number][])
      .filter(([, c]) => c > 0)
      .map(([k, c]) => `${CLASS_LABEL[k]}: ${c}`);
    lines.push(`Readings by band (mg/dL): ${classes.join('; ')}.`);
    const gradeWhy =
      g.control === 'excellent'
        ? 'variability below 36 % and at least 70 % time in range'
        : g.control === 'good'
          ? 'variability below 36 % and at least 50 % time in range'
          : g.control === 'fair'
            ? g.controlBeforeHypoglycemiaCheck !== 'fair'
              ? `would be ${g.controlBeforeHypoglycemiaCheck}, but time below 70 mg/dL exceeds the 4 % target (or below 54 mg/dL the 1 % target)`
              : 'at least 50 % time in range but high variability'
            : 'less than half of the time in range';
    lines.push(`Overall glycemic control: ${g.control} (${gradeWhy}).`);
    if (g.lowEpisodes > 0) {
      lines.push(
        `There ${g.lowEpisodes === 1 ? 'was 1 low episode' : `were ${g.lowEpisodes} low episodes`} (at least 15 minutes below 70 mg/dL).`,
      );
    }
    if (g.fasting.assessed && g.fasting.meanMgDl !== null) {
      lines.push(
        `In the fasting window (06:00-09:59) the average was ${fmt1(g.fasting.meanMgDl)} mg/dL over ${g.fasting.readings} readings${g.fasting.meanMgDl > 100 ? ', above the 100 mg/dL fasting reference' : ''}.`,
      );
    }
    if (g.overnight.assessed && g.overnight.meanMgDl !== null && g.overnight.minMgDl !== null) {
      lines.push(
        `Overnight (22:00-06:00) the average was ${fmt1(g.overnight.meanMgDl)} mg/dL with a lowest reading of ${fmt1(g.overnight.minMgDl)} mg/dL${g.overnight.minMgDl < 70 ? ', a nocturnal low' : ''}.`,
      );
    }
    lines.push(
      `Trend: ${g.trend.direction} (first half ${fmt1(g.trend.firstHalf)} vs second half ${fmt1(g.trend.secondHalf)} mg/dL, ${g.trend.changePercent >= 0 ? '+' : ''}${fmt1(g.trend.changePercent)} %).`,
    );
    lines.push(
      `Estimated A1c (ADAG) ${fmt1(g.estimatedA1cPercent)} % and glucose management indicator ${fmt1(g.gmiPercent)} %${g.a1cIndicativeOnly ? ', indicative only because both are defined on at least 14 days of data' : ''}.`,
    );
    const recs: string[] = [];
    if (g.timeBelowRangePercent >= 4 || g.timeBelow54Percent >= 1) {
      recs.push(
        'review the low readings with a clinician, since time below range exceeds the consensus target',
      );
    } else if (
      g.lowEpisodes > 0 ||
      (g.overnight.assessed && g.overnight.minMgDl !== null && g.overnight.minMgDl < 70)
    ) {
      recs.push('note when the low readings happened and what preceded them');
    }
    if (g.timeAboveRangePercent > 25) recs.push('look at meals or activity around the high readings');
    if (g.cvPercent >= 36) recs.push('aim for steadier levels: variability is above the 36 % target');
    if (g.dataSufficiencyPercent < 70)
      recs.push('wear the sensor more continuously so that summaries are reliable');
    if (recs.length === 0)
      recs.push('keep the current routine; the readings are within the consensus targets');
    lines.push(`Recommendation: ${joinList(recs)}.`);
    parts.push(lines.join(' '));
  }
  return parts.join('\n\n');
}

/**
 * Hourly (or, beyond two days, daily) means in local time: the compact view of the data a narrative
 * is written from. Bucketed numerically so a million readings cost one pass, not a million Dates.
 */
function describeInput(origins: Map<string, OriginAcc>): string {
  const out: string[] = [];
  for (const [origin, acc] of origins) {
    const zone = [...acc.zones.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
    const times = acc.times.view();
    const values = acc.values.view();
    const daily = acc.stats.n > 0 && (maxOf(times) - minOf(times)) / 3_600_000 > 48;
    const width = daily ? 24 : 1;
    const buckets = new Map<number, { sum: number; n: number }>();
    for (let i = 0; i < times.length; i++) {
      const key = Math.floor(localHourIndex(times[i] as number, zone) / width);
      const b = getOrCreate(buckets, key, () => ({ sum: 0, n: 0 }));
      b.sum += values[i] as number;
      b.n++;
    }
    const rows = [...buckets.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([k, b]) => {
        const label = new Date(k * width * 3_600_000).toISOString();
        return `${daily ? label.slice(0, 10) : `${label.slice(5, 13).replace('T', ' ')}h`} ${Math.round(b.sum / b.n)} (${b.n})`;
      });
    out.push(
      `Blood glucose export, origin ${origin}, zone ${zone || 'none'}, ${acc.values.length} readings. ${daily ? 'Daily' : 'Hourly'} mean mg/dL (readings), local time: ${rows.join(', ')}.`,
    );
  }
  return out.join('\n');
}

function minOf(xs: Float64Array): number {
  let m = Number.POSITIVE_INFINITY;
  for (const x of xs) if (x < m) m = x;
  return m;
}

function maxOf(xs: Float64Array): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of xs) if (x > m) m = x;
  return m;
}
