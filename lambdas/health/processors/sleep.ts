/**
 * Sleep sessions per data origin, main sleep and naps apart.
 *
 * Rules kept: duration classes <6, 6-7, 7-9 optimal, 9-10, >10 h; efficiency = (LIGHT + DEEP + REM +
 * SLEEPING) / staged time; targets deep 15-25 %, REM 20-25 %, awake <= 5 %; naps separate.
 *
 * Improvements:
 * - Stages are clipped to their session and overlaps counted once, so staged time never exceeds
 *   the session; stage coverage is reported (efficiency over a half-staged night means little).
 * - Deep and REM shares are of the time asleep (as sleep staging defines them), awake (AWAKE +
 *   OUT_OF_BED) of the staged time; apps that only write SLEEPING/AWAKE get no deep/REM figures
 *   instead of a misleading 0 %.
 * - The duration class uses the time asleep when stages exist (7.4 h in bed with 1.2 h awake is
 *   not "optimal" sleep); time in bed is reported beside it.
 * - Two apps reporting the same night are never added: each is described, one is chosen (the one
 *   with sleep-stage detail, then the longer) and the difference is stated.
 * - A nap is a session shorter than 3 h whose midpoint falls between 09:00 and 20:00 local, or one
 *   titled as a nap.
 */
import { localClock, localTime } from '../time';
import type { SleepSessionRecord, SleepStageType } from '../types';
import { fmt1, hoursMinutes, joinList, type Processor, type ProcessorResult, pctOf, round1 } from './common';

const ASLEEP: ReadonlySet<SleepStageType> = new Set(['LIGHT', 'DEEP', 'REM', 'SLEEPING']);
const AWAKE: ReadonlySet<SleepStageType> = new Set(['AWAKE', 'OUT_OF_BED']);
const DETAILED: ReadonlySet<SleepStageType> = new Set(['LIGHT', 'DEEP', 'REM']);

export type SleepDurationClass = 'short' | 'below_optimal' | 'optimal' | 'long' | 'very_long';

export function sleepDurationClass(hours: number): SleepDurationClass {
  if (hours < 6) return 'short';
  if (hours < 7) return 'below_optimal';
  if (hours <= 9) return 'optimal';
  if (hours <= 10) return 'long';
  return 'very_long';
}

const CLASS_LABEL: Record<SleepDurationClass, string> = {
  short: 'short (under 6 h)',
  below_optimal: 'below the optimal range (6-7 h)',
  optimal: 'in the optimal 7-9 h range',
  long: 'long (9-10 h)',
  very_long: 'very long (over 10 h)',
};

export interface SleepSessionInsights {
  origin: string;
  kind: 'main' | 'nap';
  /** Local date of the evening the night began (naps: the local date). */
  nightOf: string;
  start: string;
  end: string;
  zone: string | null;
  timeInBedHours: number;
  asleepHours: number | null;
  timeInBedMinutes: number;
  asleepMinutes: number | null;
  durationClass: SleepDurationClass;
  stages: number;
  stageMinutes: Partial<Record<SleepStageType, number>>;
  stageCoveragePercent: number;
  efficiencyPercent: number | null;
  deepPercentOfSleep: number | null;
  remPercentOfSleep: number | null;
  awakePercent: number | null;
  latencyMinutes: number | null;
  awakenings: number;
  detailedStages: boolean;
  findings: string[];
}

export interface SleepNightInsights {
  nightOf: string;
  origins: string[];
  chosenOrigin: string;
  reconciliation: string;
}

export interface SleepInsights {
  recordType: 'SleepSessionRecord';
  sessions: SleepSessionInsights[];
  nights: SleepNightInsights[];
  naps: number;
}

/**
 * Whether a session is a nap or a main sleep, and the date it belongs to: a main sleep belongs to
 * the night it began (a start before local noon is the previous evening's night), a nap to its own
 * local date. Also the training subject of a sleep export (training.ts `createSubjectTracker`).
 */
export function sessionPeriod(r: SleepSessionRecord): { kind: 'main' | 'nap'; nightOf: string } {
  const start = r.startTimeEpochMillis;
  const end = r.endTimeEpochMillis;
  const zone = r.startZoneOffsetId;
  const sessionMin = Math.max(0, (end - start) / 60_000);
  const midpoint = localTime(start + (end - start) / 2, zone);
  const startLocal = localTime(start, zone);
  const isNap =
    /\bnap\b/i.test(r.title ?? '') || (sessionMin < 180 && midpoint.hour >= 9 && midpoint.hour < 20);
  return {
    kind: isNap ? 'nap' : 'main',
    nightOf: isNap || startLocal.hour >= 12 ? startLocal.date : previousDate(startLocal.date),
  };
}

/** A sleep session as a time span, kept for later heart-rate exports (sleep-spans.ts). */
export interface SleepSpan {
  readonly origin: string;
  /** The session record's metadata.id. */
  readonly sessionId: string;
  readonly start: number;
  readonly end: number;
  readonly zone: string | null;
  readonly kind: 'main' | 'nap';
  /** Local date of the evening the night began (naps: their own date). */
  readonly nightOf: string;
  readonly lastModified: number;
}

/**
 * The span of a session record, or null for one that cannot bound sleep: no id, no valid times,
 * or a length outside the physiological range (0.5-16 h; the range gate drops those before the
 * processor, this keeps the rule where spans are made).
 */
export function sleepSpanOf(r: SleepSessionRecord): SleepSpan | null {
  const start = r.startTimeEpochMillis;
  const end = r.endTimeEpochMillis;
  const hours = (end - start) / 3_600_000;
  if (!r.metadata.id || !Number.isFinite(start) || !Number.isFinite(end) || !(hours >= 0.5 && hours <= 16))
    return null;
  const { kind, nightOf } = sessionPeriod(r);
  return {
    origin: r.metadata.dataOriginPackageName,
    sessionId: r.metadata.id,
    start,
    end,
    zone: r.startZoneOffsetId,
    kind,
    nightOf,
    lastModified: r.metadata.lastModifiedTimeEpochMillis,
  };
}

export function analyseSession(r: SleepSessionRecord): SleepSessionInsights {
  const start = r.startTimeEpochMillis;
  const end = r.endTimeEpochMillis;
  const zone = r.startZoneOffsetId;
  const sessionMin = Math.max(0, (end - start) / 60_000);
  const stages = [...r.stages].sort((a, b) => a.startTimeEpochMillis - b.startTimeEpochMillis);
  const minutes: Partial<Record<SleepStageType, number>> = {};
  let cursor = start;
  let staged = 0;
  let firstAsleep: number | null = null;
  let lastAsleepEnd: number | null = null;
  const awakeSegments: number[] = [];
  for (const s of stages) {
    const from = Math.max(s.startTimeEpochMillis, cursor, start);
    const to = Math.min(s.endTimeEpochMillis, end);
    if (to <= from) continue;
    const m = (to - from) / 60_000;
    minutes[s.stage] = (minutes[s.stage] ?? 0) + m;
    staged += m;
    cursor = to;
    if (ASLEEP.has(s.stage)) {
      if (firstAsleep === null) firstAsleep = from;
      lastAsleepEnd = to;
    } else if (AWAKE.has(s.stage)) awakeSegments.push(from);
  }
  const asleep = [...ASLEEP].reduce((a, k) => a + (minutes[k] ?? 0), 0);
  const awake = [...AWAKE].reduce((a, k) => a + (minutes[k] ?? 0), 0);
  const detailed = [...DETAILED].some((k) => (minutes[k] ?? 0) > 0);
  const hasStages = staged > 0;
  const sleepHours = hasStages ? asleep / 60 : sessionMin / 60;
  const { kind, nightOf } = sessionPeriod(r);
  const isNap = kind === 'nap';
  const awakenings =
    firstAsleep === null || lastAsleepEnd === null
      ? 0
      : awakeSegments.filter((t) => t > (firstAsleep as number) && t < (lastAsleepEnd as number)).length;

  const insights: SleepSessionInsights = {
    origin: r.metadata.dataOriginPackageName,
    kind: isNap ? 'nap' : 'main',
    nightOf,
    start: localClock(start, zone),
    end: localClock(end, zone),
    zone,
    timeInBedHours: round1(sessionMin / 60),
    asleepHours: hasStages ? round1(asleep / 60) : null,
    timeInBedMinutes: Math.round(sessionMin),
    asleepMinutes: hasStages ? Math.round(asleep) : null,
    durationClass: sleepDurationClass(sleepHours),
    stages: r.stages.length,
    stageMinutes: Object.fromEntries(Object.entries(minutes).map(([k, v]) => [k, Math.round(v)])),
    stageCoveragePercent: pctOf(staged, sessionMin),
    efficiencyPercent: hasStages ? pctOf(asleep, staged) : null,
    deepPercentOfSleep: detailed && asleep > 0 ? pctOf(minutes.DEEP ?? 0, asleep) : null,
    remPercentOfSleep: detailed && asleep > 0 ? pctOf(minutes.REM ?? 0, asleep) : null,
    awakePercent: hasStages ? pctOf(awake, staged) : null,
    latencyMinutes: firstAsleep === null ? null : Math.round((firstAsleep - start) / 60_000),
    awakenings,
    detailedStages: detailed,
    findings: [],
  };
  insights.findings = findings(insights);
  return insights;
}

function previousDate(date: string): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

function findings(s: SleepSessionInsights): string[] {
  const out: string[] = [];
  if (s.kind === 'nap') return out;
  if (s.deepPercentOfSleep !== null) {
    if (s.deepPercentOfSleep < 15)
      out.push(`deep sleep ${fmt1(s.deepPercentOfSleep)} % of sleep, below the 15-25 % target`);
    else if (s.deepPercentOfSleep > 25)
      out.push(`deep sleep ${fmt1(s.deepPercentOfSleep)} % of sleep, above the 15-25 % range`);
  }
  if (s.remPercentOfSleep !== null) {
    if (s.remPercentOfSleep < 20)
      out.push(`REM ${fmt1(s.remPercentOfSleep)} % of sleep, below the 20-25 % target`);
    else if (s.remPercentOfSleep > 25)
      out.push(`REM ${fmt1(s.remPercentOfSleep)} % of sleep, above the 20-25 % range`);
  }
  if (s.awakePercent !== null && s.awakePercent > 5)
    out.push(`awake ${fmt1(s.awakePercent)} % of the night, above the 5 % target`);
  if (s.efficiencyPercent !== null && s.efficiencyPercent < 85) {
    out.push(`sleep efficiency ${fmt1(s.efficiencyPercent)} %, below the usual 85 % benchmark`);
  }
  if (s.stageCoveragePercent < 90 && s.stages > 0)
    out.push(`stages cover only ${fmt1(s.stageCoveragePercent)} % of the session`);
  return out;
}

export function createSleepProcessor(): Processor<SleepSessionRecord> {
  const sessions: SleepSessionInsights[] = [];
  const spans = new Map<string, SleepSpan>();
  return {
    add(r) {
      // Sessions are few (1-2 per export); each is analysed as it arrives and only its summary kept.
      sessions.push(analyseSession(r));
      const span = sleepSpanOf(r);
      const key = span ? `${span.origin}\0${span.sessionId}` : '';
      const had = spans.get(key);
      if (span && (!had || span.lastModified > had.lastModified)) spans.set(key, span);
    },
    finish(): ProcessorResult {
      sessions.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      const byNight = new Map<string, SleepSessionInsights[]>();
      for (const s of sessions.filter((x) => x.kind === 'main')) {
        byNight.set(s.nightOf, [...(byNight.get(s.nightOf) ?? []), s]);
      }
      const nights: SleepNightInsights[] = [...byNight.entries()].map(([nightOf, list]) =>
        reconcile(nightOf, list),
      );
      const insights: SleepInsights = {
        recordType: 'SleepSessionRecord',
        sessions,
        nights,
        naps: sessions.filter((s) => s.kind === 'nap').length,
      };
      return {
        insights: insights as unknown as Record<string, unknown>,
        narrative: narrate(insights),
        input: sessions
          .map(
            (s) =>
              `Sleep session, origin ${s.origin}, ${s.start} to ${s.end} (zone ${s.zone ?? 'none'}), ${s.stages} stages; minutes by stage: ${Object.entries(
                s.stageMinutes,
              )
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')}.`,
          )
          .join('\n'),
        sleepSpans: [...spans.values()].sort((a, b) => a.start - b.start),
      };
    },
  };
}

function reconcile(nightOf: string, list: SleepSessionInsights[]): SleepNightInsights {
  const origins = [...new Set(list.map((s) => s.origin))];
  const ranked = [...list].sort(
    (a, b) => Number(b.detailedStages) - Number(a.detailedStages) || b.timeInBedHours - a.timeInBedHours,
  );
  const chosen = ranked[0] as SleepSessionInsights;
  if (origins.length === 1) {
    return { nightOf, origins, chosenOrigin: chosen.origin, reconciliation: 'single source' };
  }
  const others = ranked.slice(1).map((s) => {
    const diff = round1((s.timeInBedHours - chosen.timeInBedHours) * 60);
    return `${s.origin} reports ${fmt1(s.timeInBedHours)} h in bed (${diff >= 0 ? '+' : ''}${Math.round(diff)} min)`;
  });
  return {
    nightOf,
    origins,
    chosenOrigin: chosen.origin,
    reconciliation: `${origins.length} apps reported this night; using ${chosen.origin} (${chosen.detailedStages ? 'it has sleep-stage detail' : 'longest session'}, ${fmt1(chosen.timeInBedHours)} h in bed); ${joinList(others)}; the sessions describe the same night and are not added together`,
  };
}

function describeSession(s: SleepSessionInsights): string {
  const lines: string[] = [];
  const asleep = s.asleepMinutes === null ? '' : `, ${hoursMinutes(s.asleepMinutes)} asleep`;
  lines.push(
    `${s.origin}: from ${s.start} to ${s.end}, ${hoursMinutes(s.timeInBedMinutes)} in bed${asleep}, ${CLASS_LABEL[s.durationClass]}.`,
  );
  if (s.efficiencyPercent !== null) {
    const detail =
      s.deepPercentOfSleep !== null && s.remPercentOfSleep !== null
        ? ` Deep sleep was ${fmt1(s.deepPercentOfSleep)} % and REM ${fmt1(s.remPercentOfSleep)} % of the time asleep.`
        : ' This app records no deep/REM detail.';
    lines.push(
      `Efficiency ${fmt1(s.efficiencyPercent)} % over ${s.stages} stages (awake ${fmt1(s.awakePercent ?? 0)} %, ${s.awakenings} awakening${s.awakenings === 1 ? '' : 's'}${s.latencyMinutes ? `, asleep after ${s.latencyMinutes} min` : ''}).${detail}`,
    );
  } else lines.push('The session has no stages, so efficiency cannot be computed.');
  if (s.findings.length) lines.push(`Notable: ${joinList(s.findings)}.`);
  return lines.join(' ');
}

function narrate(ins: SleepInsights): string {
  const parts: string[] = [];
  for (const night of ins.nights) {
    const list = ins.sessions.filter((s) => s.kind === 'main' && s.nightOf === night.nightOf);
    const chosen = list.find((s) => s.origin === night.chosenOrigin) as SleepSessionInsights;
    const head = `Night of ${night.nightOf}${list.length > 1 ? ` (${list.length} sources)` : ''}:`;
    parts.push([head, ...list.map(describeSession)].join(' '));
    if (night.origins.length > 1) parts.push(`Reconciliation: ${night.reconciliation}.`);
    const recs: string[] = [];
    const hours = chosen.asleepHours ?? chosen.timeInBedHours;
    if (hours < 7) recs.push('aim for at least 7 hours of sleep with a consistent bedtime');
    if (hours > 9.5) recs.push('if long sleep persists while still feeling tired, mention it to a clinician');
    if (chosen.awakePercent !== null && chosen.awakePercent > 5) {
      recs.push(
        'limit night-time wakefulness (a cool, dark room and no screens or caffeine late in the day)',
      );
    }
    if (chosen.deepPercentOfSleep !== null && chosen.deepPercentOfSleep < 15)
      recs.push('regular exercise earlier in the day can deepen sleep');
    if (recs.length === 0) recs.push('keep the current sleep schedule');
    parts.push(`Recommendation: ${joinList(recs)}.`);
  }
  for (const nap of ins.sessions.filter((s) => s.kind === 'nap')) {
    parts.push(
      `Nap on ${nap.nightOf} (${nap.origin}): ${nap.start.slice(11)}-${nap.end.slice(11)}, ${hoursMinutes(nap.timeInBedMinutes)}${nap.asleepMinutes !== null ? `, ${hoursMinutes(nap.asleepMinutes)} asleep` : ''}; counted apart from the night's sleep.${nap.timeInBedHours > 1.5 ? ' Naps longer than about 90 minutes or late in the afternoon can make it harder to fall asleep at night.' : ''}`,
    );
  }
  return parts.join('\n\n');
}
