/** Shared pieces of the clinical processors: the contract, number formatting, small statistics. */
import type { HealthRecord } from '../types';
import type { SleepSpan } from './sleep';

export const PROCESSOR_VERSION = 'health-processors/1.0.0';

export interface ProcessorConfig {
  /** Maximum heart rate for zones (default 180, the fact sheet's; 220 - age when known). */
  readonly maxHeartRate: number;
  readonly stepsTarget: number;
  readonly activeCaloriesTarget: number;
}

export const DEFAULT_PROCESSOR_CONFIG: ProcessorConfig = {
  maxHeartRate: 180,
  stepsTarget: 10_000,
  activeCaloriesTarget: 500,
};

export interface ProcessorResult<I = Record<string, unknown>> {
  /** Structured findings (JSON): what the training metadata and summaries carry. */
  readonly insights: I;
  /** Plain English: what, when, how much, notable findings, recommendations. */
  readonly narrative: string;
  /** Compact description of the data the narrative was written from (the training `input`). */
  readonly input: string;
  /** Sleep exports: the sessions to keep for later heart-rate exports (sleep-spans.ts). */
  readonly sleepSpans?: readonly SleepSpan[];
}

/** What a processor may know beyond its own file (read by the pipeline before `finish`). */
export interface ProcessorContext {
  /** The person's known sleep sessions around the file's time range (sleep-spans.ts). */
  readonly sleepSpans?: readonly SleepSpan[];
}

/** Streaming processor: records in, one result per file out. */
export interface Processor<R = HealthRecord> {
  add(record: R): void;
  finish(context?: ProcessorContext): ProcessorResult;
}

export const round1 = (x: number): number => Math.round(x * 10) / 10;
export const round2 = (x: number): number => Math.round(x * 100) / 100;
export const fmt1 = (x: number): string => round1(x).toFixed(1);
export const int = (x: number): string => Math.round(x).toLocaleString('en-US');
export const pctOf = (part: number, whole: number): number => (whole > 0 ? round1((part / whole) * 100) : 0);

export function hoursMinutes(minutes: number): string {
  const m = Math.round(minutes);
  const h = Math.floor(m / 60);
  const rest = m % 60;
  if (h === 0) return `${rest} min`;
  return rest === 0 ? `${h} h` : `${h} h ${rest} min`;
}

export function joinList(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Growable Float64 column: large exports keep one number per reading, not one object. */
export class Column {
  private data: Float64Array;
  length = 0;
  constructor(capacity = 256) {
    this.data = new Float64Array(capacity);
  }
  push(x: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = x;
  }
  get(i: number): number {
    return this.data[i] as number;
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/** Welford running mean / sample variance. */
export class Running {
  n = 0;
  mean = 0;
  private m2 = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  add(x: number): void {
    this.n++;
    const d = x - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (x - this.mean);
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }
  /** Sample standard deviation (n - 1). */
  get sd(): number {
    return this.n > 1 ? Math.sqrt(this.m2 / (this.n - 1)) : 0;
  }
}

export function median(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Indices that sort `times` ascending; identity when already sorted (the common case). */
export function timeOrder(times: Float64Array): Uint32Array | undefined {
  for (let i = 1; i < times.length; i++) {
    if ((times[i] as number) < (times[i - 1] as number)) {
      const idx = Uint32Array.from({ length: times.length }, (_, k) => k);
      return idx.sort((a, b) => (times[a] as number) - (times[b] as number));
    }
  }
  return undefined;
}

/** Map with insertion order by key, created on demand. */
export function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = create();
    map.set(key, v);
  }
  return v;
}

/** Classification trend of a series split into halves by time. */
export function halvesTrend(
  values: Float64Array,
  order: Uint32Array | undefined,
  threshold: number,
): {
  firstHalf: number;
  secondHalf: number;
  changePercent: number;
  direction: 'rising' | 'falling' | 'stable';
} {
  const n = values.length;
  const at = (i: number) => (order ? (values[order[i] as number] as number) : (values[i] as number));
  const half = Math.floor(n / 2);
  let a = 0;
  let b = 0;
  for (let i = 0; i < half; i++) a += at(i);
  for (let i = half; i < n; i++) b += at(i);
  const first = half ? a / half : Number.NaN;
  const second = n - half ? b / (n - half) : Number.NaN;
  const change = first ? ((second - first) / first) * 100 : 0;
  return {
    firstHalf: round1(first),
    secondHalf: round1(second),
    changePercent: round1(change),
    direction: change > threshold ? 'rising' : change < -threshold ? 'falling' : 'stable',
  };
}
