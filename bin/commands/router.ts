/**
 * `npm run pipeline -- router replay <feed.jsonl> --out <dir> [--speed <x>|max]`
 * `npm run pipeline -- router up|down|status`
 *
 * up: starts the local provider feed (localstack/feed, :4581) and the router process
 * (lambdas/realtime-router, client WebSocket ws://127.0.0.1:4590/stream, /health), down stops both
 * (the router drains first), status prints the router's figures per channel (received, delivered,
 * duplicates, rejected, conflated, buffer depth, last-event age, breaker, p99) and its provider and
 * egress (`--json`: the whole /health answer); exit 1 when it is not running or not healthy.
 *
 * Runs the real-time router core offline over a recorded feed (one `{"source","receivedAt","frame"}`
 * per line) and writes `<dir>/delivered.jsonl` (what a client subscribed to everything receives, in
 * delivery order) and `<dir>/summary.json` (per-channel accounting, malformed lines, latency, peak
 * RSS). Exit 0 unless the run itself could not happen (unreadable feed, unwritable output).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { type ReplaySummary, replayFeed } from '../../lambdas/market/realtime/replay';
import { CHANNELS } from '../../lambdas/market/realtime/types';
import { s3, sqs } from '../../lambdas/platform/aws';
import { queueUrl } from '../../lambdas/platform/queues';
import { DEFAULT_ARCHIVE_PREFIX, frameArchive } from '../../lambdas/realtime-router/archive';
import { barQueueSink } from '../../lambdas/realtime-router/egress';
import {
  channelTable,
  routerFigures,
  routerHealthy,
  routerLine,
} from '../../lambdas/realtime-router/figures';
import type { ServiceHealth } from '../../lambdas/realtime-router/service';
import { ROUTER_NODE_ARGS, RouterService } from '../../lambdas/realtime-router/service';
import { WireCounter, type WireMessage } from '../../lambdas/realtime-router/wire-count';
import { parseCommandArgs, UsageError } from '../../lib/cli/args';
import { emit, table } from '../../lib/cli/output';
import { writeReport } from '../../lib/cli/report';
import { REPO_ROOT } from '../../lib/paths';
import { startFeed } from '../../localstack/feed/server';
import { logFile, runningPid, startBackground, stopBackground, tail } from '../../localstack/processes';
import { routerReport } from '../reports/router';

export const summary =
  'router replay <feed.jsonl> --out DIR [--speed X|max] [--report F.html] | up | down | status: the real-time router (offline replay or the live process)';

const USAGE = `usage:
  npm run pipeline -- router replay <feed.jsonl> --out <dir> [--speed <x>|max] [--report FILE.html] [--json]
  npm run pipeline -- router up | down | status [--json]`;

const FEED_PORT = Number(process.env.REALTIME_FEED_PORT ?? 4581);
const ROUTER_PORT = Number(process.env.ROUTER_PORT ?? 4590);

async function health(port = ROUTER_PORT): Promise<ServiceHealth | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? ((await res.json()) as ServiceHealth) : null;
  } catch {
    return null;
  }
}

/** The pipeline health report's router row: its figures, or skipped when no router is running. */
export async function routerCheck(port = ROUTER_PORT): Promise<{
  healthy: boolean;
  skipped?: boolean;
  detail: Record<string, unknown>;
}> {
  const h = await health(port);
  if (!h) {
    return {
      healthy: true,
      skipped: true,
      detail: { running: false, hint: `no router on :${port} (npm run pipeline -- router up)` },
    };
  }
  const f = routerFigures(h);
  return { healthy: routerHealthy(f), detail: f as unknown as Record<string, unknown> };
}

/** The figures as `router status` prints them (also `npm start`'s burst). */
export function printFigures(h: ServiceHealth): void {
  const f = routerFigures(h);
  const { header, rows } = channelTable(f);
  console.log(table(header, rows));
  console.log(routerLine(f));
}

async function up(json: boolean): Promise<number> {
  const tsx = ['--import', 'tsx'];
  if (runningPid('realtime-feed') === undefined) {
    startBackground(
      'realtime-feed',
      process.execPath,
      [...tsx, join(REPO_ROOT, 'localstack', 'feed', 'main.ts')],
      {
        ...process.env,
        REALTIME_FEED_PORT: String(FEED_PORT),
      },
    );
  }
  if (runningPid('realtime-router') === undefined) {
    startBackground(
      'realtime-router',
      process.execPath,
      [...ROUTER_NODE_ARGS, ...tsx, join(REPO_ROOT, 'lambdas', 'realtime-router', 'main.ts')],
      {
        ...process.env,
        REALTIME_FEED_URL: process.env.REALTIME_FEED_URL ?? `ws://127.0.0.1:${FEED_PORT}/stocks`,
        MARKET_API_BASE_URL: process.env.REALTIME_REST_URL ?? `http://127.0.0.1:${FEED_PORT}`,
        ROUTER_PORT: String(ROUTER_PORT),
      },
    );
  }
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await health()) {
      const result = {
        router: `ws://127.0.0.1:${ROUTER_PORT}/stream`,
        health: `http://127.0.0.1:${ROUTER_PORT}/health`,
        feed: `ws://127.0.0.1:${FEED_PORT}/stocks`,
      };
      emit(json, result, (r) => console.log(`router up: ${r.router}, feed ${r.feed}`));
      return 0;
    }
    if (runningPid('realtime-router') === undefined) {
      console.error(`the router exited during start-up:\n${tail(logFile('realtime-router'))}`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  console.error(`the router did not answer within 60 s; see ${logFile('realtime-router')}`);
  return 1;
}

async function down(json: boolean): Promise<number> {
  const router = await stopBackground('realtime-router', 15_000);
  const feed = await stopBackground('realtime-feed');
  emit(json, { router: router ? 'stopped' : 'not running', feed: feed ? 'stopped' : 'not running' }, (r) =>
    console.log(
      `router ${r.router === 'stopped' ? 'stopped' : 'was not running'}; feed ${r.feed === 'stopped' ? 'stopped' : 'was not running'}`,
    ),
  );
  return 0;
}

async function status(json: boolean): Promise<number> {
  const h = await health();
  if (!h) {
    emit(json, { running: false, port: ROUTER_PORT }, () =>
      console.log(`router: not answering on :${ROUTER_PORT}`),
    );
    return 1;
  }
  if (json) console.log(JSON.stringify(h, null, 2));
  else printFigures(h);
  return routerHealthy(routerFigures(h)) ? 0 : 1;
}

/**
 * `npm start`'s live burst, in seconds: a provider feed (ephemeral port, duplicate frames, a
 * disconnect mid-burst) -> the router (minute bars to the stage's RouterBars queue, raw frames to its
 * bucket) -> one WebSocket client subscribed to everything; then the drain and the figures.
 */
export async function liveBurst(seconds = 4): Promise<number> {
  const now = Date.now();
  const feed = await startFeed({
    profile: {
      ohlcvSymbols: 500,
      tickSymbols: 50,
      fmvSymbols: 50,
      eventsPerMinute: 6_000,
      frameSize: 20,
      barFrameSize: 100,
      seed: 9,
    },
    // Two market minutes a second: a few seconds show several minute bursts.
    speed: 120,
    startAt: now - (now % 60_000),
    faults: { duplicateEvery: 10 },
    // The burst's market minutes only; then the feed stays connected and silent.
    minutes: seconds + 1,
  });
  const epoch = `e${now.toString(36)}-burst`;
  const bucket = process.env.DATA_BUCKET;
  const service = new RouterService({
    provider: {
      wsUrl: feed.wsUrl,
      restUrl: feed.restUrl,
      apiKey: 'local-key',
      subscriptions: 'T.*,Q.*,AM.*,FMV.*',
      minBackoffMs: 50,
    },
    router: { epoch },
    bars: barQueueSink(sqs, () => queueUrl(sqs, 'RouterBars')),
    ...(bucket
      ? { archive: frameArchive(s3, { bucket, prefix: DEFAULT_ARCHIVE_PREFIX, epoch, lingerMs: 1_000 }) }
      : {}),
  });
  await service.start();
  // Counted as the router counts: live messages apart from snapshot values, control messages and
  // the router's replies (a `subscribed` reply names its channel but is not one of its messages).
  const received = new WireCounter();
  const client = new WebSocket(`ws://127.0.0.1:${service.port}/stream`);
  client.on('message', (data) => {
    received.add(JSON.parse(String(data)) as WireMessage);
  });
  await new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  client.send(JSON.stringify({ action: 'subscribe', channel: '*', symbols: '*' }));
  await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
  feed.dropConnections(); // the provider drops us mid-burst: reconnect, resubscribe, REST gap fill
  const until = Date.now() + (seconds * 1000) / 2;
  while (Date.now() < until || (service.health().provider.gapFillsDone < 1 && Date.now() < until + 10_000))
    await new Promise((r) => setTimeout(r, 100));
  const closed = new Promise((resolve) => client.once('close', resolve));
  const { drained, clients } = await service.stop(15_000);
  // Everything the router sent arrives before its close frame.
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000))]);
  client.terminate();
  await feed.close();
  const h = service.health();
  const sent = clients[0]?.sent;
  const consistent = sent !== undefined && CHANNELS.every((c) => sent[c] === received.live[c]);
  console.log(
    `${feed.stats.eventsSent} events in ${feed.stats.framesSent} frames from the feed in ${seconds} s; the client got ${received.describe()}; ${consistent ? 'the same as the router sent it' : `the router counted ${sent ? CHANNELS.map((c) => `${sent[c]} ${c}`).join(', ') : 'no client'}`}; ${drained ? 'drained' : 'DRAIN TIMED OUT'}`,
  );
  printFigures(h);
  console.log(
    `minute bars -> RouterBars queue -> PostgreSQL realtime_minute_bars; raw frames -> ${bucket ? `s3://${bucket}/${DEFAULT_ARCHIVE_PREFIX}${epoch}/ (replay: npm run pipeline -- router replay)` : 'not archived (no DATA_BUCKET)'}`,
  );
  const dropped = (h.egress.bars?.dropped ?? 0) + (h.egress.archive?.dropped ?? 0);
  return drained && dropped === 0 ? 0 : 1;
}

export function parseSpeed(value: string | undefined): number | 'max' | null {
  if (value === undefined || value === 'max') return 'max';
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : null;
}

export async function replayFile(feed: string, out: string, speed: number | 'max'): Promise<ReplaySummary> {
  await access(feed);
  await mkdir(out, { recursive: true });
  const delivered = createWriteStream(join(out, 'delivered.jsonl'));
  const lines = createInterface({
    input: createReadStream(feed, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const result = await replayFeed(lines, (line) => delivered.write(`${JSON.stringify(line)}\n`), { speed });
  await new Promise<void>((resolve, reject) => {
    delivered.once('error', reject);
    delivered.end(resolve);
  });
  await writeFile(join(out, 'summary.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

async function replay(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    allowPositionals: true,
    usage: USAGE,
    options: { out: { type: 'string' }, speed: { type: 'string' }, report: { type: 'string' } },
  });
  const speed = parseSpeed(values.speed);
  const feed = positionals[0];
  if (!feed) throw new UsageError('router replay needs a feed file: <feed.jsonl>', USAGE);
  if (positionals.length > 1)
    throw new UsageError(`one feed file, not ${positionals.length}: ${positionals.join(' ')}`, USAGE);
  if (!values.out)
    throw new UsageError('--out <dir> is required: where delivered.jsonl and summary.json go', USAGE);
  if (speed === null)
    throw new UsageError(`--speed ${values.speed}: expected a positive number or max`, USAGE);
  if (values.report !== undefined && !values.report.endsWith('.html'))
    throw new UsageError(`--report ${values.report}: expected an .html file name`, USAGE);
  try {
    await access(feed);
  } catch {
    throw new UsageError(`${feed}: no such feed file`, USAGE);
  }
  const result = await replayFile(feed, values.out, speed);
  if (values.report) {
    await writeReport(values.report, routerReport(result, `${feed}, speed ${speed}`));
    console.error(`report: ${values.report}`);
  }
  emit(values.json, result, (r) => {
    const channels = ['tick', 'event', 'fmv', 'ohlcv'] as const;
    console.log(`router replay ${feed} -> ${values.out}`);
    console.log(
      table(
        ['channel', 'received', 'delivered', 'duplicates', 'corrections', 'conflated', 'rejected', 'p99 ms'],
        channels.map((c) => {
          const ch = r.channels[c];
          const rejected = Object.values(ch.rejected).reduce((a, b) => a + b, 0);
          return [
            c,
            ch.received,
            ch.delivered,
            ch.duplicates,
            ch.corrections,
            ch.conflated,
            rejected,
            r.latencyMs[c].p99,
          ];
        }),
        { indent: 2 },
      ),
    );
    console.log(`  malformed lines ${r.malformed}, peak RSS ${r.peakRssMb} MB`);
  });
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'replay') return replay(rest);
  const actions = { up, down, status } as const;
  if (action === undefined || !(action in actions))
    throw new UsageError(
      `${action === undefined ? 'no router action' : `unknown router action '${action}'`}; valid: replay, up, down, status`,
      USAGE,
    );
  const { values } = parseCommandArgs(rest, { options: {}, usage: USAGE });
  return actions[action as keyof typeof actions](values.json);
}
