/**
 * `npm run pipeline -- router replay <feed.jsonl> --out <dir> [--speed <x>|max]`
 * `npm run pipeline -- router up|down|status`
 *
 * up: starts the local provider feed (localstack/feed, :4581) and the router process
 * (lambdas/realtime-router, client WebSocket ws://127.0.0.1:4590/stream, /health), down stops both
 * (the router drains first), status prints the router's health.
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
import { parseArgs } from 'node:util';
import { type ReplaySummary, replayFeed } from '../../lambdas/market/realtime/replay';
import { writeReport } from '../../lib/cli/report';
import { REPO_ROOT } from '../../lib/paths';
import { logFile, runningPid, startBackground, stopBackground, tail } from '../../localstack/processes';
import { routerReport } from '../reports/router';

export const summary =
  'router replay <feed.jsonl> --out DIR [--speed X|max] [--report F.html] | up | down | status: the real-time router (offline replay or the live process)';

const USAGE = `usage:
  npm run pipeline -- router replay <feed.jsonl> --out <dir> [--speed <x>|max] [--report FILE.html]
  npm run pipeline -- router up | down | status`;

const FEED_PORT = Number(process.env.REALTIME_FEED_PORT ?? 4581);
const ROUTER_PORT = Number(process.env.ROUTER_PORT ?? 4590);

async function health(): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${ROUTER_PORT}/health`, { signal: AbortSignal.timeout(2_000) });
    return res.ok ? ((await res.json()) as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

async function up(): Promise<number> {
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
      [...tsx, join(REPO_ROOT, 'lambdas', 'realtime-router', 'main.ts')],
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
      console.log(`router up: ws://127.0.0.1:${ROUTER_PORT}/stream, feed ws://127.0.0.1:${FEED_PORT}/stocks`);
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

async function down(): Promise<number> {
  const router = await stopBackground('realtime-router', 15_000);
  const feed = await stopBackground('realtime-feed');
  console.log(
    `router ${router ? 'stopped' : 'was not running'}; feed ${feed ? 'stopped' : 'was not running'}`,
  );
  return 0;
}

async function status(): Promise<number> {
  const h = await health();
  if (!h) {
    console.log(`router: not answering on :${ROUTER_PORT}`);
    return 1;
  }
  console.log(JSON.stringify(h, null, 2));
  return 0;
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
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, speed: { type: 'string' }, report: { type: 'string' } },
  });
  const speed = parseSpeed(values.speed);
  const feed = positionals[0];
  if (!feed || positionals.length !== 1 || !values.out || speed === null) {
    console.error(USAGE);
    return 2;
  }
  if (values.report !== undefined && !values.report.endsWith('.html')) {
    console.error(`usage error: --report ${values.report}: expected an .html file name\n${USAGE}`);
    return 2;
  }
  const result = await replayFile(feed, values.out, speed);
  if (values.report) {
    await writeReport(values.report, routerReport(result, `${feed}, speed ${speed}`));
    console.error(`report: ${values.report}`);
  }
  const line = (c: keyof ReplaySummary['channels']): string => {
    const s = result.channels[c];
    const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0);
    return `  ${c.padEnd(6)} received ${s.received}, delivered ${s.delivered}, duplicates ${s.duplicates}, corrections ${s.corrections}, conflated ${s.conflated}, rejected ${rejected}, p99 ${result.latencyMs[c].p99} ms`;
  };
  console.log(
    [
      `router replay ${feed} -> ${values.out}`,
      line('tick'),
      line('event'),
      line('fmv'),
      line('ohlcv'),
      `  malformed lines ${result.malformed}, peak RSS ${result.peakRssMb} MB`,
    ].join('\n'),
  );
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'replay') return replay(rest);
  if (action === 'up' && rest.length === 0) return up();
  if (action === 'down' && rest.length === 0) return down();
  if (action === 'status' && rest.length === 0) return status();
  console.error(USAGE);
  return 2;
}
