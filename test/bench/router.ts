/**
 * Real-time router benchmark (in process): the replaced system's profiles through the router core
 * with a client subscribed to everything. Prints bars/min capacity for 8,000 OHLCV symbols, tick p99
 * from frame receipt to client send, memory, duplicates delivered, and the ratio of the router's
 * throughput to a bare parse-and-dispatch loop over the same frames (same run, same machine); and
 * the memory of a trading hour of minute bars for 8,000 symbols (the correction window full).
 * Targets (print only): >= 80,000 bars/min, tick p99 < 5 ms, < 300 MB for 8,000 symbols, 0 duplicates.
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ClientSession } from '../../lambdas/market/realtime/client';
import { LatencyRecorder } from '../../lambdas/market/realtime/latency';
import { Router } from '../../lambdas/market/realtime/router';
import { type SequencedMessage, wireText } from '../../lambdas/market/realtime/types';
import { PROFILES, RealtimeMarket, type RealtimeProfile } from '../../localstack/feed/scenario';

const T0 = Date.UTC(2026, 2, 2, 14, 30, 0);

interface Wire {
  readonly receivedAt: number;
  readonly text: string;
  readonly bars: boolean;
}

/**
 * The profile as the socket would deliver it, with the provider's defects: 2 % of frames delivered
 * twice, and the last minute's bars again from a REST backfill.
 */
function wireFrames(profile: RealtimeProfile, minutes: number): { frames: Wire[]; events: number } {
  const market = new RealtimeMarket(profile);
  const frames: Wire[] = [];
  let events = 0;
  let lastBars: string[] = [];
  for (let m = 0; m < minutes; m += 1) {
    const start = T0 + m * 60_000;
    const bars: string[] = [];
    for (const f of market.minute(start)) {
      const text = JSON.stringify(f.frame);
      const isBars = f.frame[0]?.ev === 'AM';
      frames.push({ receivedAt: start + f.at, text, bars: isBars });
      events += f.frame.length;
      if (isBars) bars.push(text);
      else if (frames.length % 50 === 0) {
        frames.push({ receivedAt: start + f.at, text, bars: false });
        events += f.frame.length;
      }
    }
    lastBars = bars;
  }
  for (const text of lastBars) {
    frames.push({ receivedAt: T0 + minutes * 60_000 + 1_000, text, bars: true });
    events += (JSON.parse(text) as unknown[]).length;
  }
  frames.sort((a, b) => a.receivedAt - b.receivedAt);
  return { frames, events };
}

/**
 * A full garbage collection on demand (the bench runs without --expose-gc): the router's own memory is
 * the live set it adds, measured after a full collection, not the process's RSS.
 */
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

/** Live JavaScript heap plus typed-array memory (the dedup windows' KeySets live in typed arrays). */
function liveMb(): { heap: number; arrays: number } {
  fullGc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed / 1_048_576, arrays: m.arrayBuffers / 1_048_576 };
}

/** CPU time of this process (ms): on a shared machine wall time mostly measures the other processes. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The floor: parse each frame and hand each event to its channel's list, nothing else. */
function bareLoop(frames: readonly Wire[]): { ms: number; cpu: number } {
  const sinks: Record<string, unknown[]> = { T: [], Q: [], AM: [], A: [], FMV: [] };
  let n = 0;
  const c = cpuMs();
  const t = performance.now();
  for (const f of frames) {
    for (const e of JSON.parse(f.text) as { ev: string }[]) {
      const sink = sinks[e.ev];
      if (sink) {
        sink.push(e);
        if (sink.length > 4096) sink.length = 0;
      }
      n += 1;
    }
  }
  void n;
  return { ms: performance.now() - t, cpu: cpuMs() - c };
}

interface RouterRun {
  readonly ms: number;
  readonly cpu: number;
  readonly barMs: number;
  readonly bars: number;
  readonly latency: LatencyRecorder;
  readonly duplicatesDelivered: number;
  readonly delivered: number;
  readonly rssMb: number;
  /** What the router holds after the run (live heap and typed arrays it added, after a full GC). */
  readonly routerHeapMb: number;
  readonly routerArraysMb: number;
  readonly router: Router;
}

/**
 * One pass of the router over the frames with one client subscribed to everything. The client's
 * transport serialises each message as the live process does (`wireText`). With `checkDuplicates` the
 * pass is the correctness check (every delivered key remembered): its time is not reported, so the
 * check's own memory and work never count against the router.
 */
function routerRun(frames: readonly Wire[], checkDuplicates: boolean): RouterRun {
  // The baseline: the frames (held by the caller through every run) and the bench's own state.
  const before = checkDuplicates ? { heap: 0, arrays: 0 } : liveMb();
  const router = new Router({ epoch: 'bench' });
  const latency = new LatencyRecorder();
  const seen = new Set<string>();
  let duplicatesDelivered = 0;
  let delivered = 0;
  let wireBytes = 0;
  const client = new ClientSession(
    'bench',
    {
      send: (m: SequencedMessage) => {
        wireBytes += wireText(m).length;
      },
      bufferedAmount: () => 0,
    },
    undefined,
    (m: SequencedMessage) => {
      delivered += 1;
      if (!checkDuplicates) {
        latency.record(m.channel, performance.now() - m.receivedAtMono);
        return;
      }
      if (m.kind === 'control') return;
      const d = m.data;
      const key =
        m.kind === 'trade'
          ? `T|${m.sym}|${d.x}|${d.i}`
          : m.kind === 'bar'
            ? `${d.ev}|${m.sym}|${d.s}|${d.correction === true ? `${d.c}|${d.v}` : ''}`
            : m.kind === 'quote'
              ? `Q|${m.sym}|${d.t}|${d.bp}|${d.bs}|${d.ap}|${d.as}|${d.q}`
              : m.kind === 'fmv'
                ? `F|${m.sym}|${d.t}`
                : `E|${m.sym}|${d.type}|${d.s}`;
      if (seen.has(key)) duplicatesDelivered += 1;
      else seen.add(key);
    },
  );
  router.hub.attach(client);
  for (const c of ['tick', 'event', 'fmv', 'ohlcv'] as const) router.hub.subscribe(client, c, '*');
  let barMs = 0;
  let bars = 0;
  const c = cpuMs();
  const t = performance.now();
  for (const f of frames) {
    const mono = performance.now();
    const frame = JSON.parse(f.text) as unknown[];
    router.ingest('ws', f.receivedAt, frame, mono);
    router.drain();
    if (f.bars) {
      barMs += performance.now() - mono;
      bars += frame.length;
    }
  }
  router.closeMinutes();
  router.drain();
  const ms = performance.now() - t;
  const cpu = cpuMs() - c;
  void wireBytes;
  const mem = process.memoryUsage();
  const after = checkDuplicates ? { heap: 0, arrays: 0 } : liveMb();
  return {
    ms,
    cpu,
    barMs,
    bars,
    latency,
    duplicatesDelivered,
    delivered,
    rssMb: mem.rss / 1_048_576,
    routerHeapMb: after.heap - before.heap,
    routerArraysMb: after.arrays - before.arrays,
    router,
  };
}

function report(name: string, profile: RealtimeProfile, minutes: number): void {
  const { frames, events } = wireFrames(profile, minutes);
  // Warm both paths once (JIT), then measure each on the same frames.
  bareLoop(frames.slice(0, 2000));
  routerRun(frames.slice(0, 2000), false);
  const bare = bareLoop(frames);
  const bareMs = bare.ms;
  global.gc?.();
  const run = routerRun(frames, false);
  const s = run.router.stats;
  global.gc?.();
  const check = routerRun(frames, true);
  const tick = run.latency.summary('tick');
  const ohlcv = run.latency.summary('ohlcv');
  console.log(
    [
      `${name}: ${minutes} min, ${profile.ohlcvSymbols} OHLCV symbols, ${profile.tickSymbols} tick, ${profile.fmvSymbols} FMV, ${profile.eventsPerMinute.toLocaleString('en-US')} stream events/min + bars; ${frames.length} frames, ${events} events (with the injected duplicates)`,
      `  router: ${(events / (run.ms / 1000)).toFixed(0)} events/s in process (${run.ms.toFixed(0)} ms); bare parse+dispatch: ${(events / (bareMs / 1000)).toFixed(0)} events/s (${bareMs.toFixed(0)} ms); ratio router/bare = ${(bareMs / run.ms).toFixed(3)} wall, ${(bare.cpu / run.cpu).toFixed(3)} CPU time (${run.cpu.toFixed(0)} vs ${bare.cpu.toFixed(0)} ms)`,
      `  bars: ${run.bars} in ${run.barMs.toFixed(0)} ms of bar frames = ${((run.bars / run.barMs) * 60_000).toFixed(0)} bars/min capacity (target >= 80,000)`,
      `  tick latency frame receipt -> client send: p50 ${tick.p50} ms, p99 ${tick.p99} ms, max ${tick.max} ms (target p99 < 5 ms); ohlcv p99 ${ohlcv.p99} ms`,
      `  router memory after the run (what the router holds: live heap and typed arrays it added, after a full GC; the frames and the bench excluded): ${(run.routerHeapMb + run.routerArraysMb).toFixed(0)} MB = heap ${run.routerHeapMb.toFixed(0)} + typed arrays ${run.routerArraysMb.toFixed(0)} MB (target < 300 MB for 8,000 symbols); dedup keys held ${run.router.health().dedupKeys}. The whole bench process (router + every frame as text + the bare loop's garbage): RSS ${run.rssMb.toFixed(0)} MB. The router process's own peak RSS is the live surge's figure (router-surge)`,
      `  delivered ${run.delivered}; duplicates removed: tick ${s.tick.duplicates}, ohlcv ${s.ohlcv.duplicates}, fmv ${s.fmv.duplicates}, event ${s.event.duplicates}; duplicates delivered: ${check.duplicatesDelivered} (target 0; a second, untimed pass remembers every delivered key)`,
    ].join('\n'),
  );
}

/**
 * The memory of a full trading hour: the minute-bar window keeps each bar's values for 60 minutes
 * (for corrections), so what the router holds for 8,000 symbols is only known once that window is
 * full. Minute bars for 8,000 symbols, minute after minute for 61 minutes, nothing else.
 */
function barHour(): void {
  const symbols = Array.from({ length: 8_000 }, (_, k) => `S${k}`);
  const before = liveMb();
  const router = new Router({ epoch: 'bench-hour' });
  const c = cpuMs();
  for (let m = 0; m < 61; m += 1) {
    const s = T0 + m * 60_000;
    for (let k = 0; k < symbols.length; k += 500) {
      const frame = symbols.slice(k, k + 500).map((sym, i) => {
        const p = 20 + ((i * 7 + m) % 400) + 0.37;
        return {
          ev: 'AM',
          sym,
          v: 1_000 + i + m,
          av: 100_000 + i,
          op: p,
          vw: p + 0.01,
          o: p,
          c: p + 0.02,
          h: p + 0.05,
          l: p - 0.04,
          a: p,
          z: 12,
          s,
          e: s + 60_000,
        };
      });
      router.ingest('ws', s + 60_500, frame);
      router.drain();
    }
  }
  const cpu = cpuMs() - c;
  // The heap it added (after a full GC) and its windows' typed arrays as the router counts them (the
  // process's ArrayBuffer total still holds the earlier runs' arrays, freed lazily).
  const heap = liveMb().heap - before.heap;
  const { dedupKeys, dedupBytes } = router.health();
  const arrays = dedupBytes / 1_048_576;
  console.log(
    `an hour of minute bars: 8,000 symbols x 61 minutes (${(8_000 * 61).toLocaleString('en-US')} bars, the 60-minute correction window full; ${cpu.toFixed(0)} ms of CPU): router memory ${(heap + arrays).toFixed(0)} MB = heap ${heap.toFixed(0)} + dedup windows' typed arrays ${arrays.toFixed(0)} MB (target < 300 MB for 8,000 symbols); dedup keys held ${dedupKeys}`,
  );
}

export async function bench(): Promise<void> {
  report('steady', PROFILES.steady, 5);
  report('surge x10', PROFILES.surge10x, 1);
  barHour();
}
