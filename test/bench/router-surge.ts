/**
 * The 10x surge through the live stage (issue 12's target): the provider feed process
 * (localstack/feed/main.ts, profile `surge10x`: 500,000 stream events a minute plus 8,000 minute bars,
 * every 50th frame sent twice) -> the router process (lambdas/realtime-router/main.ts, its Redis
 * Streams on the stage's Redis under a namespace of this run) -> one client WebSocket subscribed to
 * everything, in this process. Both processes are started on free ports (never the stage's 4581/4590)
 * and stopped at the end.
 *
 * Prints, per channel, what the feed sent, what the router received, removed as duplicates, rejected
 * and delivered, and what the client received (live, and repeats by exact key: target 0); tick
 * latency from the router's own histogram (frame receipt -> client send) and the client's end to end
 * (feed frame written -> client receipt, across processes); the router's peak RSS, event-loop delay,
 * GC pauses and CPU share; the load average through the run (2 shared cores: a latency spike while the
 * router got little CPU is descheduling, not the router). Target: tick p99 < 5 ms, 0 duplicates.
 *
 * The router runs as the container runs it: this checkout's bundles built by
 * lambdas/realtime-router/build.mjs (the Dockerfile's build) into a temporary directory, started with
 * ROUTER_CONTAINER_NODE_ARGS (the Dockerfile's CMD flags).
 *
 * ROUTER_SURGE_MINUTES: market minutes at full rate (default 1; the issue's surge is 5).
 * ROUTER_SURGE_COMPARE=1: the surge twice, back to back, before and after, then the ratios. Before: the
 * Redis sinks on the router's event loop (ROUTER_REDIS_SINK_THREAD=main), or, with
 * ROUTER_SURGE_BEFORE_ROOT=<another checkout> (e.g. a clone of main with node_modules), that checkout's
 * router from its sources under tsx, or with ROUTER_SURGE_BEFORE_BUNDLE=<dir> the bundles in that
 * directory (main.mjs and redis-sink-worker.mjs, e.g. built with other options), or with
 * ROUTER_SURGE_BEFORE_NODE_ARGS='<flags>' the shipped router with those node flags instead of the
 * container's; after: this checkout's router as shipped (sinks on their worker thread).
 * ROUTER_SURGE_EGRESS=1: also minute bars to the stage's RouterBars queue and frames to S3 (off by
 * default: a benchmark should not fill the shared stage's tables and bucket).
 * Diagnosis: ROUTER_SURGE_NODE_ARGS='<flags>' adds node flags to the router (e.g. --cpu-prof,
 * --trace-gc); ROUTER_SURGE_OUT=<file> keeps the router's stdout and stderr there (the --trace-gc
 * lines); ROUTER_SURGE_NICE=<n> runs the router's event loop at that scheduling priority (-10: the
 * feed, the client and Redis, which in AWS run on other machines, no longer preempt it on these 2
 * shared cores; a negative value needs root). The figures as shipped are measured without them.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { LatencyRecorder } from '../../lambdas/market/realtime/latency';
import { CHANNELS } from '../../lambdas/market/realtime/types';
import { CHANNELS as CHANNELS_BUS, EventBus } from '../../lambdas/platform/event-bus';
import { createRedisClient } from '../../lambdas/platform/redis';
import {
  ROUTER_CONTAINER_NODE_ARGS,
  ROUTER_NODE_ARGS,
  type ServiceHealth,
} from '../../lambdas/realtime-router/service';
import { WireCounter, type WireMessage } from '../../lambdas/realtime-router/wire-count';
import { REPO_ROOT } from '../../lib/paths';

interface FeedStats {
  framesSent: number;
  eventsSent: number;
  eventsByEv: Record<string, number>;
  duplicateEvents: number;
  done: boolean;
}

interface Proc {
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
}

/** Starts `script` (under tsx unless it is a bundle, `.mjs`) and waits for the line announcing its port. */
async function startProcess(
  script: string,
  env: NodeJS.ProcessEnv,
  portLine: RegExp,
  nodeArgs: readonly string[] = [],
): Promise<Proc> {
  const loader = script.endsWith('.mjs') ? [] : ['--import', 'tsx'];
  const child = spawn(process.execPath, [...nodeArgs, ...loader, resolve(REPO_ROOT, script)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  child.stderr?.on('data', (d) => {
    out += String(d);
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = portLine.exec(out);
    if (m) return { child, port: Number(m[1]), output: () => out };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${script} did not start:\n${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopProcess(p: Proc, timeoutMs = 20_000): Promise<void> {
  if (p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, timeoutMs))]);
  if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

async function getJson<T>(url: string, timeoutMs = 5_000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return (await res.json()) as T;
}

/** Peak resident set (VmHWM) of a process, MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Number.NaN;
}

const wall = (): number => performance.timeOrigin + performance.now();
const fmt = (n: number): string => n.toLocaleString('en-US');

interface SurgeConfig {
  readonly label: string;
  readonly clientWriteBatching: boolean;
  readonly nodeArgs: readonly string[];
  /** Where the Redis sinks run (ROUTER_REDIS_SINK_THREAD). */
  readonly sinkThread: 'worker' | 'main';
  /** The checkout whose router process runs from its TypeScript sources under tsx. */
  readonly root?: string;
  /** Else the directory of the router's bundles (build.mjs: what the container runs). */
  readonly bundle?: string;
}

/** CPU time (ms) of one thread of a process: utime + stime of /proc/<pid>/task/<tid>/stat. */
function threadCpuMs(pid: number, tid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

interface SurgeResult {
  readonly tick: { p50: number; p95: number; p99: number; max: number };
  readonly e2e: { p50: number; p95: number; p99: number; max: number };
  readonly cpuUsPerEvent: number;
  readonly gcMs: number;
  readonly loopP99: number;
  readonly peakRssMb: number;
  readonly loadMean: number;
  readonly lossless: boolean;
  /** Share of one core the event loop's thread got over the run; `cpuShare` the whole process's. */
  readonly loopShare: number;
  readonly cpuShare: number;
}

async function surgeRun(config: SurgeConfig): Promise<SurgeResult> {
  const minutes = Number(process.env.ROUTER_SURGE_MINUTES ?? 1);
  const egress = process.env.ROUTER_SURGE_EGRESS === '1';
  const nice = process.env.ROUTER_SURGE_NICE;
  const namespace = `bench-surge-${randomUUID().slice(0, 8)}`;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const base: NodeJS.ProcessEnv = { ...process.env };
  if (!egress) {
    // No queue, no bucket: main.ts then sends no bars and archives nothing.
    delete base.AWS_ENDPOINT_URL;
    delete base.DATA_BUCKET;
    delete base.QUEUE_URL_ROUTER_BARS;
  }
  const feed = await startProcess(
    'localstack/feed/main.ts',
    {
      ...base,
      REALTIME_FEED_PORT: '0',
      REALTIME_FEED_PROFILE: 'surge10x',
      REALTIME_FEED_SPEED: '1',
      REALTIME_FEED_MINUTES: String(minutes),
      REALTIME_FEED_START: 'request',
      REALTIME_FEED_STAMP: '1',
      REALTIME_FEED_DUPLICATE_EVERY: '50',
    },
    /provider feed on ws:\/\/127\.0\.0\.1:(\d+)\//,
  );
  let router: Proc | null = null;
  const redis = createRedisClient({ url: redisUrl });
  try {
    router = await startProcess(
      config.root
        ? join(config.root, 'lambdas/realtime-router/main.ts')
        : config.bundle
          ? join(config.bundle, 'main.mjs')
          : 'lambdas/realtime-router/main.ts',
      {
        ...base,
        REALTIME_FEED_URL: `ws://127.0.0.1:${feed.port}/stocks`,
        MARKET_API_BASE_URL: `http://127.0.0.1:${feed.port}`,
        POLYGON_API_KEY: 'local-key',
        ROUTER_PORT: '0',
        REDIS_URL: redisUrl,
        EVENT_BUS_NAMESPACE: namespace,
        ROUTER_METRICS_INTERVAL_MS: '0',
        ROUTER_CLIENT_WRITE_BATCHING: config.clientWriteBatching ? '1' : '0',
        ROUTER_REDIS_SINK_THREAD: config.sinkThread,
      },
      /on ws:\/\/127\.0\.0\.1:(\d+)\/stream/,
      [...config.nodeArgs, ...(process.env.ROUTER_SURGE_NODE_ARGS ?? '').split(' ').filter(Boolean)],
    );
    // The process's main thread (Linux priorities are per thread): the sinks' worker keeps its own.
    if (nice) setPriority(router.child.pid as number, Number(nice));
    const routerUrl = `http://127.0.0.1:${router.port}`;
    // The router is streaming once its provider subscriptions are acknowledged.
    for (let k = 0; k < 200; k += 1) {
      const h = await getJson<ServiceHealth>(`${routerUrl}/health`);
      if (h.provider.state === 'streaming') break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const counter = new WireCounter(true);
    const e2e = new LatencyRecorder();
    const client = new WebSocket(`ws://127.0.0.1:${router.port}/stream`);
    client.on('message', (data) => {
      const at = wall();
      const m = JSON.parse(String(data)) as WireMessage;
      const channel = counter.add(m);
      const sentAt = m.data?.bench_sent_at;
      if (channel !== null && typeof sentAt === 'number') e2e.record(channel, at - sentAt);
    });
    await new Promise((resolve, reject) => {
      client.once('open', resolve);
      client.once('error', reject);
    });
    client.send(JSON.stringify({ action: 'subscribe', channel: '*', symbols: '*' }));
    while (counter.replies < CHANNELS.length) await new Promise((r) => setTimeout(r, 20));

    const loads: number[] = [];
    const loadTimer = setInterval(() => loads.push(loadavg()[0] as number), 1_000);
    const started = Date.now();
    await fetch(`http://127.0.0.1:${feed.port}/start`, { method: 'POST' });
    let stats = await getJson<FeedStats & { started: boolean }>(`http://127.0.0.1:${feed.port}/stats`);
    while (!stats.done && Date.now() - started < (minutes + 2) * 60_000) {
      await new Promise((r) => setTimeout(r, 1_000));
      // A poll the busy feed process answers too late is skipped (a 5-minute run on the loaded
      // machine failed on one), not the run.
      stats = await getJson<FeedStats & { started: boolean }>(`http://127.0.0.1:${feed.port}/stats`).catch(
        () => stats,
      );
    }
    const feedSeconds = (Date.now() - started) / 1000;
    // Until the client has everything the router delivered (or nothing moved for 5 s).
    let health = await getJson<ServiceHealth>(`${routerUrl}/health`, 60_000);
    let last = -1;
    let still = Date.now();
    for (;;) {
      // The router may still be working through a backlog on the loaded machine: a late answer is a
      // poll skipped, not a failed run.
      health = await getJson<ServiceHealth>(`${routerUrl}/health`).catch(() => health);
      const sent = health.clients[0]?.sent;
      const got = CHANNELS.reduce((n, c) => n + counter.live[c], 0);
      if (sent && CHANNELS.every((c) => sent[c] === counter.live[c])) break;
      if (got !== last) {
        last = got;
        still = Date.now();
      } else if (Date.now() - still > 5_000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    clearInterval(loadTimer);
    const routerPeak = router.child.pid ? peakRssMb(router.child.pid) : Number.NaN;
    // The event loop's own thread (tid = pid): the CPU the routing got, apart from the sink worker and
    // V8's helper threads.
    const loopCpuMs = router.child.pid ? threadCpuMs(router.child.pid, router.child.pid) : Number.NaN;
    client.terminate();

    const ch = health.router.channels;
    const sentTick = (stats.eventsByEv.T ?? 0) + (stats.eventsByEv.Q ?? 0);
    const feedSent: Record<string, number> = {
      tick: sentTick,
      fmv: stats.eventsByEv.FMV ?? 0,
      ohlcv: (stats.eventsByEv.AM ?? 0) + (stats.eventsByEv.A ?? 0),
      event: 0,
    };
    const rows = CHANNELS.map((c) => {
      const rejected = Object.values(ch[c].rejected).reduce((a, b) => a + b, 0);
      const lost = ch[c].delivered - counter.live[c] - counter.control[c];
      return `  ${c.padEnd(6)} feed sent ${fmt(feedSent[c] ?? 0).padStart(9)} | router received ${fmt(ch[c].received).padStart(9)}, duplicates removed ${fmt(ch[c].duplicates).padStart(6)}, rejected ${fmt(rejected).padStart(6)}, conflated ${ch[c].conflated}, delivered ${fmt(ch[c].delivered).padStart(9)} | client got ${fmt(counter.live[c]).padStart(9)} live + ${counter.control[c]} control, ${lost} missing, ${counter.duplicates[c]} repeats`;
    });
    const tick = health.latencyMs.tick;
    const client99 = e2e.summary('tick');
    const proc = health.process;
    const cpuShare = proc ? proc.cpuMs / (feedSeconds * 1000) : Number.NaN;
    const loopShare = loopCpuMs / (feedSeconds * 1000);
    const loadMin = Math.min(...loads);
    const loadMax = Math.max(...loads);
    const loadMean = loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length);
    const events = stats.eventsSent;
    const lossless = CHANNELS.every(
      (c) => counter.duplicates[c] === 0 && ch[c].delivered === counter.live[c] + counter.control[c],
    );
    console.log(
      [
        `${config.label}: ${config.root ? `router of ${config.root} (tsx)` : config.bundle ? `bundles in ${config.bundle}` : 'this checkout (tsx)'}, Redis sinks on ${config.sinkThread === 'main' ? "the router's event loop" : 'their worker thread'}, client writes ${config.clientWriteBatching ? 'batched (corked, 16 per write)' : 'one per message'}, node ${config.nodeArgs.join(' ') || '(default flags)'}${nice ? `, event loop at nice ${nice} (ROUTER_SURGE_NICE)` : ''}`,
        `live surge x10: ${minutes} market minute(s) of surge10x (500,000 stream events/min + 8,000 bars/min; issue: 5 min, ROUTER_SURGE_MINUTES) through feed process :${feed.port} -> router process :${router.port} (Redis Streams ${namespace}:*${egress ? ', bars to SQS, frames to S3' : '; SQS/S3 egress off, ROUTER_SURGE_EGRESS=1'}) -> 1 client WebSocket subscribed to everything`,
        `  feed: ${fmt(events)} events in ${fmt(stats.framesSent)} frames (+ ${fmt(stats.duplicateEvents)} events in duplicated frames) over ${feedSeconds.toFixed(1)} s = ${fmt(Math.round((events / feedSeconds) * 60))} events/min`,
        ...rows,
        `  tick latency, router histogram (frame receipt -> client send): p50 ${tick.p50} ms, p95 ${tick.p95} ms, p99 ${tick.p99} ms, max ${tick.max} ms (target p99 < 5 ms)`,
        `  tick end to end, client (feed frame written -> client receipt, across processes): p50 ${client99.p50} ms, p95 ${client99.p95} ms, p99 ${client99.p99} ms, max ${client99.max} ms`,
        `  router process: peak RSS ${routerPeak} MB (at the end: RSS ${proc?.rssMb} MB, JavaScript heap ${proc?.memoryMb.heapUsed} MB used of ${proc?.memoryMb.heapTotal}, outside the heap ${proc?.memoryMb.external} MB of which ArrayBuffers ${proc?.memoryMb.arrayBuffers}); event-loop delay p50 ${proc?.eventLoopDelayMs.p50} ms, p99 ${proc?.eventLoopDelayMs.p99} ms, max ${proc?.eventLoopDelayMs.max} ms; GC ${proc?.gc.count} pauses, ${proc?.gc.totalMs.toFixed(0)} ms total, max ${proc?.gc.maxMs.toFixed(1)} ms; CPU ${fmt(proc?.cpuMs ?? 0)} ms = ${(cpuShare * 100).toFixed(0)} % of one core over the run, of which the event loop's thread ${fmt(Math.round(loopCpuMs))} ms = ${(loopShare * 100).toFixed(0)} % (the rest: the sink worker, GC and libuv threads)`,
        `  Redis sinks: ${CHANNELS.map((c) => `${c} ${fmt(health.sinks[c]?.published ?? 0)} published (${health.sinks[c]?.depth ?? 0} buffered, deepest ${fmt(health.sinks[c]?.peakDepth ?? 0)}, ${health.sinks[c]?.dropped ?? 0} dropped in ${health.sinks[c]?.gaps ?? 0} gap entries, ${health.sinks[c]?.failures ?? 0} failed batches)`).join('; ')}`,
        `  load average (1 min) during the run: min ${loadMin.toFixed(2)}, mean ${loadMean.toFixed(2)}, max ${loadMax.toFixed(2)} on 2 cores`,
      ].join('\n'),
    );
    return {
      tick,
      e2e: client99,
      cpuUsPerEvent: ((proc?.cpuMs ?? 0) * 1000) / Math.max(1, events),
      gcMs: proc?.gc.totalMs ?? 0,
      loopP99: proc?.eventLoopDelayMs.p99 ?? 0,
      peakRssMb: routerPeak,
      loadMean,
      lossless,
      loopShare,
      cpuShare,
    };
  } finally {
    if (router) await stopProcess(router);
    if (router && process.env.ROUTER_SURGE_OUT) writeFileSync(process.env.ROUTER_SURGE_OUT, router.output());
    await stopProcess(feed);
    try {
      await redis.connect();
      const keys = await redis.keys(`${namespace}:*`);
      if (keys.length > 0) await redis.del(keys);
      await redis.close();
    } catch {
      // The streams are capped (MAXLEN ~) and namespaced: left over, they cost memory only.
    }
  }
}

/**
 * The Redis sink's own CPU per message on the stage's Redis, alternated in one process: one MULTI
 * per message (the sink before) against one MULTI per batch of 512 (EventBus.publishBatch, the sink now).
 */
async function redisSinkCost(redisUrl: string): Promise<void> {
  const client = createRedisClient({ url: redisUrl });
  await client.connect();
  const bus = new EventBus({
    client,
    service: 'realtime-router',
    namespace: `bench-sink-${randomUUID().slice(0, 8)}`,
  });
  const message = (k: number) => ({
    message_id: `6f1c1c3e-2b7a-5d7e-a953-${k.toString(16).padStart(12, '0')}`,
    event_type: 'trade',
    data: {
      sym: 'AAPL',
      epoch: 'e1',
      offset: k,
      ev: 'T',
      x: 4,
      i: String(k),
      z: 3,
      p: 101.23,
      s: 50,
      c: [12],
      t: 1_764_500_000_000 + k,
      q: k,
    },
  });
  const us = { single: [] as number[], batch: [] as number[] };
  try {
    for (let round = 0; round < 6; round += 1) {
      const single = round % 2 === 0;
      const cpu = process.cpuUsage();
      for (let b = 0; b < 40; b += 1) {
        const batch = Array.from({ length: 512 }, (_, j) => message(b * 512 + j));
        if (single) await Promise.all(batch.map((m) => bus.publish(CHANNELS_BUS.realtimeTick, m)));
        else await bus.publishBatch(CHANNELS_BUS.realtimeTick, batch);
      }
      const used = process.cpuUsage(cpu);
      (single ? us.single : us.batch).push((used.user + used.system) / (40 * 512));
    }
  } finally {
    await client.del(bus.streamKey(CHANNELS_BUS.realtimeTick));
    await client.close();
  }
  const median = (xs: number[]): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const single = median(us.single);
  const batch = median(us.batch);
  console.log(
    `Redis sink CPU per message (this process, 3 alternated rounds of 20,480 each, median): one MULTI per message ${single.toFixed(1)} us, one MULTI per batch of 512 ${batch.toFixed(1)} us; ratio ${(batch / single).toFixed(2)}`,
  );
}

/** The router's container bundles of this checkout (build.mjs, as the Dockerfile builds them), in `dir`. */
function buildBundles(dir: string): void {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'lambdas/realtime-router/build.mjs'), dir], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`build.mjs failed: ${r.stderr}`);
}

export async function bench(): Promise<void> {
  await redisSinkCost(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const bundle = mkdtempSync(join(tmpdir(), 'router-bundle-'));
  try {
    buildBundles(bundle);
    // What the container runs: the bundles with the Dockerfile's flags.
    const after: SurgeConfig = {
      label: 'shipped',
      clientWriteBatching: true,
      nodeArgs: ROUTER_CONTAINER_NODE_ARGS,
      sinkThread: 'worker',
      bundle,
    };
    if (process.env.ROUTER_SURGE_COMPARE !== '1') {
      await surgeRun(after);
      return;
    }
    await compare(after);
  } finally {
    rmSync(bundle, { recursive: true, force: true });
  }
}

/** Before and after in one run, back to back on the same machine state: the ratios are the figures. */
async function compare(after: SurgeConfig): Promise<void> {
  const root = process.env.ROUTER_SURGE_BEFORE_ROOT;
  const beforeBundle = process.env.ROUTER_SURGE_BEFORE_BUNDLE;
  const beforeArgs = process.env.ROUTER_SURGE_BEFORE_NODE_ARGS;
  const b = await surgeRun({
    ...after,
    label: 'before',
    ...(root
      ? { root, bundle: undefined, nodeArgs: ROUTER_NODE_ARGS }
      : beforeBundle
        ? { bundle: beforeBundle }
        : beforeArgs
          ? { nodeArgs: beforeArgs.split(' ').filter(Boolean) }
          : { sinkThread: 'main' as const }),
  });
  const a = await surgeRun(after);
  const r = (x: number, y: number): string => (y > 0 ? (x / y).toFixed(2) : 'n/a');
  console.log(
    [
      'after / before (same run):',
      `  tick p50 ${r(a.tick.p50, b.tick.p50)}, p95 ${r(a.tick.p95, b.tick.p95)}, p99 ${r(a.tick.p99, b.tick.p99)}, max ${r(a.tick.max, b.tick.max)} (router histogram)`,
      `  client end to end p50 ${r(a.e2e.p50, b.e2e.p50)}, p99 ${r(a.e2e.p99, b.e2e.p99)}`,
      `  router CPU per event ${r(a.cpuUsPerEvent, b.cpuUsPerEvent)} (${b.cpuUsPerEvent.toFixed(1)} -> ${a.cpuUsPerEvent.toFixed(1)} us), GC time ${r(a.gcMs, b.gcMs)}, event-loop delay p99 ${r(a.loopP99, b.loopP99)}, peak RSS ${r(a.peakRssMb, b.peakRssMb)}`,
      `  CPU share of one core, event loop's thread / whole process: before ${(b.loopShare * 100).toFixed(0)} / ${(b.cpuShare * 100).toFixed(0)} %, after ${(a.loopShare * 100).toFixed(0)} / ${(a.cpuShare * 100).toFixed(0)} %`,
      `  load average mean ${b.loadMean.toFixed(2)} (before) and ${a.loadMean.toFixed(2)} (after); lossless and no repeats: before ${b.lossless}, after ${a.lossless}`,
    ].join('\n'),
  );
}
